"""A durable topic subscriber with Debian's stomp.py, named as ActiveMQ
names them (the CONNECT's client-id and activemq.subscriptionName),
acknowledging each message; prints "subscribed" once the RECEIPT of its
SUBSCRIBE is in and "got BODY REDELIVERED" per message, and leaves (without
unsubscribing) once none came for QUIET seconds.
Usage: HOST PORT CLIENT_ID DEST NAME QUIET"""
import sys
import threading
import time

import stomp

from say import say

host, port, cid, dest, name, quiet = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], float(sys.argv[6])
last = [time.time()]
subscribed = threading.Event()


class Listener(stomp.ConnectionListener):
    def __init__(self, conn):
        self.conn = conn

    def on_receipt(self, frame):
        subscribed.set()

    def on_message(self, frame):
        last[0] = time.time()
        say("got", frame.body, frame.headers.get("redelivered", "false"))
        self.conn.ack(frame.headers["message-id"], frame.headers["subscription"])


conn = stomp.Connection([(host, port)], heartbeats=(0, 0))
conn.set_listener("", Listener(conn))
conn.connect(wait=True, headers={"client-id": cid})
conn.subscribe(destination=dest, id="1", ack="client-individual",
               headers={"activemq.subscriptionName": name, "receipt": "sub"})
subscribed.wait(10)
say("subscribed")
last[0] = time.time()
while time.time() - last[0] < quiet:
    time.sleep(0.05)
conn.disconnect()
