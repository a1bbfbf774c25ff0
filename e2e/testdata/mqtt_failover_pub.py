"""Publish COUNT QoS 1 messages "m-N" to TOPIC with Debian's paho-mqtt over
a list of hosts, as an application with a failover list does: when the
connection drops, connect to the next host that accepts, with a fresh
client, and publish again whatever was not acknowledged. Prints
"confirmed N" once per PUBACKed message and "done N" at the end.
Usage: HOST:PORT,HOST:PORT,... TOPIC COUNT PACE_SECONDS"""
import sys
import threading
import time

import paho.mqtt.client as mqtt

from say import say

hosts = [(h, int(p)) for h, p in (a.rsplit(":", 1) for a in sys.argv[1].split(","))]
topic, count, pace = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
lock = threading.Lock()
confirmed = set()
next_host = [0]


def confirm(n):
    """Notes message n as PUBACKed; lock is held."""
    if n not in confirmed:
        confirmed.add(n)
        say("confirmed", n)


def connect():
    """A connected client, trying the hosts in turn for up to 60 s."""
    deadline = time.time() + 60
    while time.time() < deadline:
        host, port = hosts[next_host[0] % len(hosts)]
        next_host[0] += 1
        up, down = threading.Event(), threading.Event()
        inflight, early = {}, set()
        c = mqtt.Client(client_id="failover-pub", clean_session=True)
        c.max_inflight_messages_set(100)
        c.on_connect = lambda cl, u, f, rc: up.set() if rc == 0 else down.set()
        c.on_disconnect = lambda cl, u, rc: down.set()

        # paho calls on_publish holding its own lock, which publish()
        # takes too: publish() is never called holding ours, and a PUBACK
        # may come before its message id is noted.
        def on_publish(cl, u, mid, inflight=inflight, early=early):
            with lock:
                n = inflight.pop(mid, None)
                if n is None:
                    early.add(mid)
                else:
                    confirm(n)
        c.on_publish = on_publish
        try:
            c.connect(host, port, keepalive=5)
        except OSError:
            time.sleep(0.1)
            continue
        c.loop_start()
        if up.wait(2) and not down.is_set():
            return c, inflight, early, down
        c.loop_stop()
        time.sleep(0.1)
    sys.exit("no broker accepted a connection within 60s")


while len(confirmed) < count:
    c, inflight, early, down = connect()
    with lock:
        todo = [i for i in range(count) if i not in confirmed]
    for i in todo:
        if down.is_set():
            break
        info = c.publish(topic, "m-%05d" % i, qos=1)
        with lock:
            if info.mid in early:
                early.discard(info.mid)
                confirm(i)
            else:
                inflight[info.mid] = i
        time.sleep(pace)
    while len(confirmed) < count and not down.is_set():
        time.sleep(0.05)
    c.disconnect()
    c.loop_stop()
    if len(confirmed) < count:
        say("reconnected")
say("done", len(confirmed))
