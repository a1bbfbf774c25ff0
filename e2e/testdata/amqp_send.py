"""Send with Debian's Qpid Proton and print "confirmed N" as each message
is settled: BlockingSender.send returns only once the broker has settled
it, and raises if the outcome is rejected or released. Bodies are strings
(amqp-value); --count N sends msg-0000... instead, --size N one binary
body of N bytes as a data section, printed as "sent N sha256:HEX".
Usage: HOST PORT ADDRESS [BODY...] [--count N] [--size N] [--durable]
[--prop KEY=VALUE]..."""
import argparse
import hashlib

from proton import Message
from proton.utils import BlockingConnection

from say import say

p = argparse.ArgumentParser()
p.add_argument("host")
p.add_argument("port")
p.add_argument("address")
p.add_argument("bodies", nargs="*")
p.add_argument("--count", type=int, default=0)
p.add_argument("--size", type=int, default=0)
p.add_argument("--durable", action="store_true")
p.add_argument("--prop", action="append", default=[])
a = p.parse_intermixed_args()

props = dict(kv.split("=", 1) for kv in a.prop)
messages = [Message(body=b, durable=a.durable, properties=props) for b in a.bodies]
messages += [Message(body="msg-%04d" % i, durable=a.durable, properties=props) for i in range(a.count)]
if a.size:
    big = bytes(i % 251 for i in range(a.size))
    # inferred makes bytes a data section, as other clients send them,
    # rather than an amqp-value of type binary.
    messages.append(Message(body=big, durable=a.durable, properties=props, inferred=True))
    say("sent", len(big), "sha256:" + hashlib.sha256(big).hexdigest())

conn = BlockingConnection("%s:%s" % (a.host, a.port), timeout=30)
snd = conn.create_sender(a.address)
for i, m in enumerate(messages):
    snd.send(m)
    say("confirmed", i)
conn.close()
