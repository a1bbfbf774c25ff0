"""An MQTT client made of Debian's paho-mqtt (1.6, MQTT 3.1.1 or 5) for the
conformance tests. It connects, optionally subscribes and publishes, prints
what it sees one line at a time and ends once no message came for QUIET
seconds:

  connected present=0|1
  subscribed GRANTED
  got TOPIC PAYLOAD qos=Q dup=0|1 retain=0|1 props=JSON
  puback rc=CODE props=N  (a QoS 1 publish of --publish was acknowledged:
                          the PUBACK's reason code and property bytes)
  no-puback               (it was not within 5 s)

Usage: HOST PORT CLIENT_ID [options]; see the argument parser below."""
import argparse
import json
import os
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from say import say

ap = argparse.ArgumentParser()
ap.add_argument("host")
ap.add_argument("port", type=int)
ap.add_argument("cid")
ap.add_argument("--v5", action="store_true", help="speak MQTT 5 (else 3.1.1)")
ap.add_argument("--session", type=int, default=0,
                help="keep the session: 3.1.1 clean session off; 5 clean start off and this session expiry (s)")
ap.add_argument("--subscribe", help="topic filter to subscribe to once connected")
ap.add_argument("--qos", type=int, default=1)
ap.add_argument("--sub-id", type=int, help="MQTT 5 subscription identifier")
ap.add_argument("--rap", action="store_true", help="MQTT 5 retain as published")
ap.add_argument("--receive-max", type=int, help="MQTT 5 Receive Maximum in CONNECT")
ap.add_argument("--max-packet", type=int, help="MQTT 5 Maximum Packet Size in CONNECT")
ap.add_argument("--hold-acks", type=float, default=0,
                help="send no PUBACK for this many seconds after the first message, then all of them")
ap.add_argument("--publish", help="publish one QoS 1 message to this topic (payload 'hello')")
ap.add_argument("--user", action="append", default=[], help="KEY=VALUE user property of --publish (MQTT 5)")
ap.add_argument("--will", help="will topic (payload 'gone', QoS 1)")
ap.add_argument("--will-delay", type=int, default=0, help="MQTT 5 will delay interval (s)")
ap.add_argument("--exit-abruptly", type=float,
                help="after this many seconds connected, end the process without DISCONNECT")
ap.add_argument("--quiet", type=float, default=1.0)
a = ap.parse_args()

last = [time.time()]
version = mqtt.MQTTv5 if a.v5 else mqtt.MQTTv311
if a.v5:
    c = mqtt.Client(client_id=a.cid, protocol=version)
else:
    c = mqtt.Client(client_id=a.cid, clean_session=not a.session, protocol=version)

# Holding acknowledgements back: paho sends a QoS 1 PUBACK right after
# on_message returns, through _send_puback; this stands in for it.
held = []
first_at = [None]
if a.hold_acks:
    real_puback = c._send_puback

    def holding_puback(mid):
        if first_at[0] is not None and time.time() - first_at[0] < a.hold_acks:
            held.append(mid)
            return mqtt.MQTT_ERR_SUCCESS
        return real_puback(mid)

    c._send_puback = holding_puback


# The PUBACK as it came: paho 1.6 checks neither its reason code nor its
# properties before calling the publish done, so they are read here.
puback_seen = []
real_pubackcomp = c._handle_pubackcomp


def seeing_pubackcomp(cmd):
    if cmd == "PUBACK":
        body = c._in_packet["packet"]
        puback_seen.append((body[2] if len(body) > 2 else 0, body[3] if len(body) > 3 else 0))
    return real_pubackcomp(cmd)


c._handle_pubackcomp = seeing_pubackcomp


def props_of(p):
    out = {}
    if p is None:
        return out
    for name in ("PayloadFormatIndicator", "MessageExpiryInterval", "SubscriptionIdentifier", "ContentType",
                 "UserProperty", "ResponseTopic"):
        if hasattr(p, name):
            out[name] = getattr(p, name)
    return out


def on_connect(client, userdata, flags, rc, properties=None):
    if rc != 0:
        say("refused", rc)
        os._exit(1)
    say("connected present=%d" % flags.get("session present", 0))
    if a.subscribe:
        if a.v5:
            sp = None
            if a.sub_id:
                sp = Properties(PacketTypes.SUBSCRIBE)
                sp.SubscriptionIdentifier = a.sub_id
            client.subscribe(a.subscribe, options=SubscribeOptions(qos=a.qos, retainAsPublished=a.rap), properties=sp)
        else:
            client.subscribe(a.subscribe, a.qos)


def on_subscribe(client, userdata, mid, granted, properties=None):
    g = granted[0]
    say("subscribed", getattr(g, "value", g))


def on_message(client, userdata, msg):
    last[0] = time.time()
    if first_at[0] is None:
        first_at[0] = last[0]
    say("got", msg.topic, msg.payload.decode(errors="replace"), "qos=%d" % msg.qos, "dup=%d" % int(msg.dup),
        "retain=%d" % int(msg.retain), "props=" + json.dumps(props_of(getattr(msg, "properties", None))))


c.on_connect, c.on_subscribe, c.on_message = on_connect, on_subscribe, on_message

cp = None
if a.v5:
    cp = Properties(PacketTypes.CONNECT)
    if a.session:
        cp.SessionExpiryInterval = a.session
    if a.receive_max:
        cp.ReceiveMaximum = a.receive_max
    if a.max_packet:
        cp.MaximumPacketSize = a.max_packet
if a.will:
    wp = None
    if a.v5 and a.will_delay:
        wp = Properties(PacketTypes.WILLMESSAGE)
        wp.WillDelayInterval = a.will_delay
    c.will_set(a.will, "gone", qos=1, properties=wp)
if a.v5:
    c.connect(a.host, a.port, keepalive=30, clean_start=not a.session, properties=cp)
else:
    c.connect(a.host, a.port, keepalive=30)
c.loop_start()

if a.exit_abruptly is not None:
    time.sleep(a.exit_abruptly)
    os._exit(0)  # the socket closes without DISCONNECT, as when a client dies

if a.publish:
    pp = None
    if a.v5 and a.user:
        pp = Properties(PacketTypes.PUBLISH)
        pp.UserProperty = [tuple(kv.split("=", 1)) for kv in a.user]
    info = c.publish(a.publish, "hello", qos=1, properties=pp)
    info.wait_for_publish(5)
    if info.is_published() and puback_seen:
        say("puback rc=%d props=%d" % puback_seen[0])
    else:
        say("no-puback", *("rc=%d props=%d" % rp for rp in puback_seen))

while time.time() - last[0] < a.quiet:
    if held and time.time() - first_at[0] >= a.hold_acks:
        say("releasing", len(held))
        for mid in held:
            real_puback(mid)
        held.clear()
        last[0] = time.time()
    time.sleep(0.02)
c.disconnect()
c.loop_stop()
