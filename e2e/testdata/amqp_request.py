"""Request/reply with Debian's Qpid Proton: a dynamic receiver has the
broker make a temporary node, whose address each request to ADDRESS
carries as reply_to. Prints "reply-to ADDRESS", then "reply BODY
CORRELATION-ID" per answer, waiting for each before the next request.
Usage: HOST PORT ADDRESS BODY..."""
import sys

from proton import Message
from proton.utils import BlockingConnection

from say import say

host, port, address, bodies = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
conn = BlockingConnection("%s:%s" % (host, port), timeout=30)
replies = conn.create_receiver(None, dynamic=True, credit=10)
reply_to = replies.remote_source.address
say("reply-to", reply_to)
snd = conn.create_sender(address)
for i, b in enumerate(bodies):
    snd.send(Message(body=b, id="req-%d" % i, reply_to=reply_to))
    m = replies.receive(timeout=10)
    say("reply", m.body, m.correlation_id)
    replies.accept()
conn.close()
