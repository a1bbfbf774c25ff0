"""Send one persistent message with stomp.py and extra headers, wait for its
receipt and print "sent BODY MS" (MS: unix milliseconds at the receipt).
Usage: HOST PORT DEST BODY [HEADER=VALUE]..."""
import sys
import threading
import time

import stomp

from say import say

host, port, dest, body = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
headers = dict(kv.split("=", 1) for kv in sys.argv[5:])
receipt = threading.Event()


class Listener(stomp.ConnectionListener):
    def on_receipt(self, frame):
        receipt.set()

    def on_error(self, frame):
        sys.exit("error: %s" % frame.headers.get("message"))


conn = stomp.Connection12([(host, port)])
conn.set_listener("", Listener())
conn.connect(wait=True)
conn.send(dest, body, headers=dict(headers, persistent="true", receipt="r1"))
if not receipt.wait(30):
    sys.exit("no receipt within 30s")
say("sent", body, int(time.time() * 1000))
conn.disconnect()
