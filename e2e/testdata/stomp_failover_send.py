"""Send COUNT persistent messages with stomp.py over a list of hosts, each
with a receipt, as an application using a failover list does: when the
connection drops, connect again (stomp.py tries the hosts in turn) and
send again whatever was not confirmed. Prints "confirmed N" once per
message, "reconnected" after each failover and "done N" at the end. With
DEDUP "dedup", each message carries its name as _HQ_DUPL_ID, so that the
broker drops what is sent again after a failover but was stored before it.
Usage: HOST:PORT,HOST:PORT,... DEST COUNT [PACE_SECONDS [DEDUP]]"""
import sys
import threading
import time

import stomp

from receipts import receipt_number
from say import say

hosts = [(h, int(p)) for h, p in (a.rsplit(":", 1) for a in sys.argv[1].split(","))]
dest, count = sys.argv[2], int(sys.argv[3])
pace = float(sys.argv[4]) if len(sys.argv) > 4 else 0.002
dedup = len(sys.argv) > 5 and sys.argv[5] == "dedup"
lock = threading.Lock()
confirmed = set()
dropped = threading.Event()
finished = threading.Event()


class Listener(stomp.ConnectionListener):
    def on_receipt(self, frame):
        n = receipt_number(frame)
        if n is None:
            return
        with lock:
            if n not in confirmed:
                confirmed.add(n)
                say("confirmed", n)
            if len(confirmed) == count:
                finished.set()

    def on_error(self, frame):
        say("error", frame.headers.get("message"))

    def on_disconnected(self):
        dropped.set()


conn = stomp.Connection(hosts, heartbeats=(0, 0), reconnect_sleep_initial=0.1,
                        reconnect_sleep_increase=0.0, reconnect_sleep_max=0.2, reconnect_attempts_max=200)
conn.set_listener("", Listener())


def connect():
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            conn.connect(wait=True)
            return
        except Exception:
            time.sleep(0.2)
    sys.exit("no broker accepted a connection within 60s")


connect()
while not finished.is_set():
    dropped.clear()
    with lock:
        todo = [i for i in range(count) if i not in confirmed]
    for i in todo:
        if dropped.is_set():
            break
        try:
            headers = {"persistent": "true"}
            if dedup:
                headers["_HQ_DUPL_ID"] = "msg-%04d" % i
            conn.send(destination=dest, body="msg-%04d" % i, headers=headers, receipt="r-%d" % i)
        except Exception:
            break
        time.sleep(pace)  # spread the sends so that failovers land among them
    while not finished.is_set() and not dropped.is_set():
        time.sleep(0.05)
    if not finished.is_set():
        connect()
        say("reconnected")
say("done", len(confirmed))
conn.disconnect()
