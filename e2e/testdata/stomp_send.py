"""Send COUNT persistent messages with stomp.py, each with a receipt, and
print "confirmed N" as each receipt arrives. With CAFILE it connects over
TLS, verifying the broker's certificate against CAFILE.
Usage: HOST PORT DEST COUNT [CAFILE]"""
import sys
import threading

import stomp

from receipts import receipt_number
from say import say

host, port, dest, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
cafile = sys.argv[5] if len(sys.argv) > 5 else None
done = threading.Event()
confirmed = set()


class Listener(stomp.ConnectionListener):
    def on_receipt(self, frame):
        n = receipt_number(frame)
        if n is None:
            return
        confirmed.add(n)
        say("confirmed", n)
        if len(confirmed) == count:
            done.set()

    def on_error(self, frame):
        say("error", frame.headers.get("message"))

    def on_disconnected(self):
        done.set()


conn = stomp.Connection([(host, port)], heartbeats=(0, 0))
if cafile:
    conn.set_ssl(for_hosts=[(host, port)], ca_certs=cafile)
conn.set_listener("", Listener())
conn.connect(wait=True)
for i in range(count):
    conn.send(destination=dest, body="msg-%04d" % i, headers={"persistent": "true"}, receipt="r-%d" % i)
done.wait(60)
say("done", len(confirmed))
