"""Consume DEST with stomp.py over a list of hosts, acknowledging each
message; on a dropped connection, connect again and resubscribe. Prints
"got BODY MESSAGE-ID REDELIVERED" per message and stops once none came
for QUIET seconds. Usage: HOST:PORT,HOST:PORT,... DEST QUIET"""
import sys
import threading
import time

import stomp

from say import say

hosts = [(h, int(p)) for h, p in (a.rsplit(":", 1) for a in sys.argv[1].split(","))]
dest, quiet = sys.argv[2], float(sys.argv[3])
last = [time.time()]
dropped = threading.Event()


class Listener(stomp.ConnectionListener):
    def __init__(self, conn):
        self.conn = conn

    def on_message(self, frame):
        last[0] = time.time()
        h = frame.headers
        say("got", frame.body, h["message-id"], h.get("redelivered", "false"))
        try:
            self.conn.ack(h["message-id"], h["subscription"])
        except Exception:
            pass  # the connection went; the message comes again

    def on_disconnected(self):
        dropped.set()


conn = stomp.Connection(hosts, heartbeats=(0, 0), reconnect_sleep_initial=0.1,
                        reconnect_sleep_increase=0.0, reconnect_sleep_max=0.2, reconnect_attempts_max=200)
conn.set_listener("", Listener(conn))


def connect():
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            conn.connect(wait=True)
            conn.subscribe(destination=dest, id="1", ack="client-individual")
            return
        except Exception:
            time.sleep(0.2)
    sys.exit("no broker accepted a connection within 60s")


connect()
while time.time() - last[0] < quiet:
    if dropped.is_set():
        dropped.clear()
        connect()
        say("reconnected")
        last[0] = time.time()
    time.sleep(0.1)
conn.disconnect()
