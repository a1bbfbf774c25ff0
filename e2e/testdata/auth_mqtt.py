"""Authorization as paho-mqtt (Debian's 1.6) sees it (e2e/auth_test.go):
CONNACK on a wrong password, PUBACK and SUBACK reason codes in MQTT 5,
and MQTT 3.1.1, which has no reason code for a PUBACK, closing the
connection; another client goes on. Prints one line per outcome.
Usage: HOST PORT"""
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from say import say

host, port = sys.argv[1], int(sys.argv[2])


class Client:
    """A paho client that records CONNACK, SUBACK and PUBACK codes."""

    def __init__(self, cid, user, password, v5=True):
        self.v5 = v5
        self.c = mqtt.Client(client_id=cid, protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)
        self.c.username_pw_set(user, password)
        self.cond = threading.Condition()
        self.connack = None
        self.subacks = []
        self.pubacks = {}
        self.messages = []
        self.closed = False
        self.c.on_connect = self.on_connect
        self.c.on_subscribe = self.on_subscribe
        self.c.on_message = self.on_message
        self.c.on_disconnect = self.on_disconnect
        # paho 1.6 reads a PUBACK's reason code and drops it: read it first.
        real = self.c._handle_pubackcomp

        def handle(cmd):
            pkt = self.c._in_packet
            mid = int.from_bytes(pkt["packet"][:2], "big")
            code = pkt["packet"][2] if pkt["remaining_length"] > 2 else 0
            with self.cond:
                self.pubacks[mid] = code
                self.cond.notify_all()
            return real(cmd)

        self.c._handle_pubackcomp = handle

    def on_connect(self, client, userdata, flags, rc, properties=None):
        with self.cond:
            self.connack = rc.value if hasattr(rc, "value") else rc
            self.cond.notify_all()

    def on_subscribe(self, client, userdata, mid, granted, properties=None):
        with self.cond:
            self.subacks.append(getattr(granted[0], "value", granted[0]))
            self.cond.notify_all()

    def on_message(self, client, userdata, msg):
        with self.cond:
            self.messages.append(msg.payload.decode())
            self.cond.notify_all()

    def on_disconnect(self, client, userdata, rc, properties=None):
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait(self, pred, timeout=10):
        with self.cond:
            return self.cond.wait_for(pred, timeout)

    def start(self):
        self.c.reconnect_delay_set(60, 60)
        self.c.connect(host, port, keepalive=30)
        self.c.loop_start()
        self.wait(lambda: self.connack is not None)
        return self.connack

    def subscribe(self, topic):
        n = len(self.subacks)
        if self.v5:
            self.c.subscribe(topic, options=SubscribeOptions(qos=1))
        else:
            self.c.subscribe(topic, 1)
        self.wait(lambda: len(self.subacks) > n)
        return self.subacks[-1] if len(self.subacks) > n else None

    def publish(self, topic, payload):
        info = self.c.publish(topic, payload, qos=1)
        self.wait(lambda: info.mid in self.pubacks or self.closed)
        return self.pubacks.get(info.mid)

    def stop(self):
        self.c.disconnect()
        self.c.loop_stop()


for v5 in (True, False):
    bad = Client("bad-%d" % v5, "alice", "wrong", v5)
    say("connack-wrong-password", "v5" if v5 else "v3", bad.start())
    bad.c.loop_stop()

alice = Client("alice-5", "alice", "alice-pw")
bob = Client("bob-5", "bob", "bob-pw")
say("connack", alice.start(), bob.start())
say("bob-suback", bob.subscribe("sensors/#"))
say("alice-suback", alice.subscribe("sensors/#"))
say("alice-puback", alice.publish("sensors/kitchen", "21.5"))
bob.wait(lambda: bob.messages)
say("bob-got", bob.messages[0] if bob.messages else "nothing")
say("bob-puback", bob.publish("sensors/kitchen", "forged"))
say("alice-puback-payroll", alice.publish("payroll/june", "x"))
# bob's refused PUBLISH left his connection and subscription alone.
say("alice-puback-again", alice.publish("sensors/hall", "19.0"))
bob.wait(lambda: len(bob.messages) > 1)
say("bob-got-again", bob.messages[1] if len(bob.messages) > 1 else "nothing", "closed=%s" % bob.closed)

# MQTT 3.1.1: a refused SUBSCRIBE is SUBACK 0x80; a refused PUBLISH
# closes the connection.
old = Client("bob-3", "bob", "bob-pw", v5=False)
say("v3-connack", old.start())
say("v3-suback", old.subscribe("payroll/#"))
old.publish("sensors/kitchen", "forged")
old.wait(lambda: old.closed, 5)
say("v3-publish-closed", old.closed)
say("alice-closed", alice.closed)
alice.stop()
bob.stop()
