"""Subscribe to TOPIC at QoS 1 with Debian's paho-mqtt in a persistent
session (clean_session False) over a list of hosts. On a dropped
connection, connect to the next host that accepts and resume the session;
subscribe only when the broker has no session (as applications do).
Prints "subscribed" once, "got PAYLOAD DUP" per message, and stops once
none came for QUIET seconds. Usage: HOST:PORT,... TOPIC CLIENT_ID QUIET"""
import sys
import threading
import time

import paho.mqtt.client as mqtt

from say import say

hosts = [(h, int(p)) for h, p in (a.rsplit(":", 1) for a in sys.argv[1].split(","))]
topic, cid, quiet = sys.argv[2], sys.argv[3], float(sys.argv[4])
last = [time.time()]
down = threading.Event()
up = threading.Event()
next_host = [0]


def on_connect(client, userdata, flags, rc):
    if rc != 0:
        down.set()
        return
    if not flags.get("session present", 0):
        client.subscribe(topic, 1)
    up.set()


def on_subscribe(client, userdata, mid, granted):
    say("subscribed", granted[0])


def on_message(client, userdata, msg):
    last[0] = time.time()
    say("got", msg.payload.decode(), int(msg.dup))


def on_disconnect(client, userdata, rc):
    down.set()


c = mqtt.Client(client_id=cid, clean_session=False)
c.on_connect, c.on_subscribe, c.on_message, c.on_disconnect = on_connect, on_subscribe, on_message, on_disconnect


def connect():
    deadline = time.time() + 60
    while time.time() < deadline:
        host, port = hosts[next_host[0] % len(hosts)]
        next_host[0] += 1
        up.clear()
        down.clear()
        try:
            c.connect(host, port, keepalive=5)
        except OSError:
            time.sleep(0.1)
            continue
        c.loop_start()
        if up.wait(2) and not down.is_set():
            return
        c.loop_stop()
        time.sleep(0.1)
    sys.exit("no broker accepted a connection within 60s")


connect()
while time.time() - last[0] < quiet:
    if down.is_set():
        c.loop_stop()
        connect()
        say("reconnected")
        last[0] = time.time()
    time.sleep(0.05)
c.disconnect()
c.loop_stop()
