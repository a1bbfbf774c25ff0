"""Receive from DEST with stomp.py, acknowledging each message, until none
came for QUIET seconds; print "got BODY REDELIVERED" per message.
Usage: HOST PORT DEST QUIET"""
import sys
import threading
import time

import stomp

from say import say

host, port, dest, quiet = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
last = [time.time()]


class Listener(stomp.ConnectionListener):
    def __init__(self, conn):
        self.conn = conn

    def on_message(self, frame):
        last[0] = time.time()
        say("got", frame.body, frame.headers.get("redelivered", "false"))
        self.conn.ack(frame.headers["message-id"], frame.headers["subscription"])


conn = stomp.Connection([(host, port)], heartbeats=(0, 0))
conn.set_listener("", Listener(conn))
conn.connect(wait=True)
conn.subscribe(destination=dest, id="1", ack="client-individual")
while time.time() - last[0] < quiet:
    time.sleep(0.1)
conn.disconnect()
