"""Send the same message twice, each time confirmed, with the protocol's
own way of naming it for the broker's duplicate window, and print
"confirmed N" per send.
Usage: PROTOCOL HOST PORT DEST ID
  stomp: stomp.py, header dedup-id, receipts awaited
  mqtt:  paho MQTT 5, user property dedup-id, QoS 1
  amqp:  Qpid Proton, message-id (the broker's rule says it is the name)"""
import sys
import threading

from say import say

proto, host, port, dest, ident = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]

if proto == "stomp":
    import stomp

    receipts = threading.Semaphore(0)

    class L(stomp.ConnectionListener):
        def on_receipt(self, frame):
            receipts.release()

    conn = stomp.Connection12([(host, port)])
    conn.set_listener("", L())
    conn.connect(wait=True)
    for i in range(2):
        conn.send(dest, "once", headers={"persistent": "true", "dedup-id": ident, "receipt": "r%d" % i})
        if not receipts.acquire(timeout=30):
            sys.exit("no receipt")
        say("confirmed", i)
    conn.disconnect()
elif proto == "mqtt":
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    c = mqtt.Client(client_id="dedup-mqtt", protocol=mqtt.MQTTv5)
    c.connect(host, port)
    c.loop_start()
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = ("dedup-id", ident)
    for i in range(2):
        c.publish(dest, "once", qos=1, properties=props).wait_for_publish(30)
        say("confirmed", i)
    c.disconnect()
    c.loop_stop()
elif proto == "amqp":
    from proton import Message
    from proton.utils import BlockingConnection

    conn = BlockingConnection("%s:%d" % (host, port), timeout=30)
    snd = conn.create_sender(dest)
    for i in range(2):
        snd.send(Message(id=ident, body="once", durable=True))
        say("confirmed", i)
    conn.close()
