"""Subscribe with Debian's paho-mqtt and print "got TOPIC PAYLOAD" per
message until none came for QUIET seconds; "subscribed" once the SUBACK is
in. With --session the client keeps a persistent session (clean_session
False) and, given --no-subscribe, only reconnects to it.
Usage: HOST PORT CLIENT_ID TOPIC QOS QUIET [--session] [--no-subscribe]"""
import sys
import time

import paho.mqtt.client as mqtt

from say import say

host, port, cid, topic, qos, quiet = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), float(sys.argv[6])
persistent = "--session" in sys.argv
subscribe = "--no-subscribe" not in sys.argv
last = [time.time()]


def on_connect(client, userdata, flags, rc):
    if rc != 0:
        say("refused", rc)
        sys.exit(1)
    say("connected session_present=%d" % flags.get("session present", 0))
    if subscribe:
        client.subscribe(topic, qos)


def on_subscribe(client, userdata, mid, granted):
    say("subscribed", granted[0])


def on_message(client, userdata, msg):
    last[0] = time.time()
    say("got", msg.topic, msg.payload.decode())


c = mqtt.Client(client_id=cid, clean_session=not persistent)
c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message
c.connect(host, port, keepalive=30)
c.loop_start()
while time.time() - last[0] < quiet:
    time.sleep(0.05)
c.disconnect()
c.loop_stop()
