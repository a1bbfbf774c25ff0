"""Send scheduled messages with a real client and receive them back.
Prints "sent NAME MS" when the broker confirmed NAME and "got NAME MS" when
it arrived (MS: unix milliseconds), then exits once every message came.
Usage: PROTOCOL HOST PORT DELAY_MS [--cron EXPR]
  stomp: stomp.py, headers AMQ_SCHEDULED_DELAY (and AMQ_SCHEDULED_CRON with
         AMQ_SCHEDULED_REPEAT 0 for --cron), receipts awaited
  amqp:  Qpid Proton, message annotation x-opt-delivery-delay
  mqtt:  paho MQTT 5, user property AMQ_SCHEDULED_DELAY, QoS 1"""
import argparse
import threading
import time

from say import say

p = argparse.ArgumentParser()
p.add_argument("protocol")
p.add_argument("host")
p.add_argument("port", type=int)
p.add_argument("delay")
p.add_argument("--cron")
a = p.parse_args()

now = lambda: int(time.time() * 1000)
expected = 2 if a.cron else 1
got = []
done = threading.Event()


def arrived(name):
    say("got", name, now())
    got.append(name)
    if len(got) >= expected:
        done.set()


if a.protocol == "stomp":
    import stomp

    class L(stomp.ConnectionListener):
        def on_message(self, frame):
            arrived(frame.body)
            conn.ack(frame.headers["ack"])

    conn = stomp.Connection12([(a.host, a.port)])
    conn.set_listener("", L())
    conn.connect(wait=True)
    conn.subscribe("/queue/scheduled.stomp", id="1", ack="client-individual")
    conn.send("/queue/scheduled.stomp", "delayed", headers={"persistent": "true", "AMQ_SCHEDULED_DELAY": a.delay, "receipt": "r1"})
    say("sent", "delayed", now())
    if a.cron:
        conn.send("/queue/scheduled.stomp", "cron", headers={"persistent": "true", "AMQ_SCHEDULED_CRON": a.cron, "AMQ_SCHEDULED_REPEAT": "0"})
        say("sent", "cron", now())
    done.wait(120)
    conn.disconnect()
elif a.protocol == "amqp":
    from proton import Message, symbol
    from proton.utils import BlockingConnection

    conn = BlockingConnection("%s:%d" % (a.host, a.port), timeout=120)
    rcv = conn.create_receiver("scheduled.amqp")
    snd = conn.create_sender("scheduled.amqp")
    snd.send(Message(body="delayed", durable=True, annotations={symbol("x-opt-delivery-delay"): int(a.delay)}))
    say("sent", "delayed", now())
    m = rcv.receive(timeout=120)
    arrived(m.body)
    rcv.accept()
    conn.close()
elif a.protocol == "mqtt":
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    subscribed = threading.Event()
    c = mqtt.Client(client_id="scheduled-mqtt", protocol=mqtt.MQTTv5)
    c.on_message = lambda cl, ud, msg: arrived(msg.payload.decode())
    c.on_subscribe = lambda *args: subscribed.set()
    c.connect(a.host, a.port)
    c.loop_start()
    c.subscribe("scheduled/mqtt", qos=1)
    subscribed.wait(10)
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = ("AMQ_SCHEDULED_DELAY", a.delay)
    c.publish("scheduled/mqtt", "delayed", qos=1, properties=props).wait_for_publish(10)
    say("sent", "delayed", now())
    done.wait(120)
    c.disconnect()
    c.loop_stop()
