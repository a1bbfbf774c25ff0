"""Receive from ADDRESS with Debian's Qpid Proton, accepting each message,
until COUNT arrived or none came for QUIET seconds. Prints "ready" once the
broker has attached the link, then "got KIND BODY" per message, KIND being
str (an amqp-value string) or bytes (a data section); a body over 100
bytes is printed as "LENGTH sha256:HEX".
--container ID --durable NAME subscribe durably (source durability
unsettled-state, never expiring), the subscription named by both; at the
end the link is detached, so the subscription lives on, or closed with
--unsubscribe, which deletes it. --selector applies a JMS selector.
--reply answers each message to its reply_to, with "re: BODY" and the
request's message-id as correlation-id. --cafile connects over TLS
(amqps), verifying the broker's certificate against CAFILE and its name
against --tls-name (default HOST; Proton matches DNS names, not IP
addresses, so with an IP HOST give the certificate's DNS name).
Usage: HOST PORT ADDRESS QUIET [--count N] [--container ID --durable NAME
[--unsubscribe]] [--selector SQL] [--reply] [--cafile CAFILE [--tls-name NAME]]"""
import argparse
import hashlib

from proton import Message, SSLDomain, Timeout
from proton.reactor import Container, DurableSubscription, Selector
from proton.utils import BlockingConnection

from say import say

p = argparse.ArgumentParser()
p.add_argument("host")
p.add_argument("port")
p.add_argument("address")
p.add_argument("quiet", type=float)
p.add_argument("--count", type=int, default=0)
p.add_argument("--container")
p.add_argument("--durable")
p.add_argument("--unsubscribe", action="store_true")
p.add_argument("--selector")
p.add_argument("--reply", action="store_true")
p.add_argument("--cafile")
p.add_argument("--tls-name")
a = p.parse_args()

container = Container()
if a.container:
    container.container_id = a.container
url, tls = "%s:%s" % (a.host, a.port), {}
if a.cafile:
    url = "amqps://" + url
    domain = SSLDomain(SSLDomain.MODE_CLIENT)
    domain.set_trusted_ca_db(a.cafile)
    domain.set_peer_authentication(SSLDomain.VERIFY_PEER_NAME)
    # sni is also the name Proton verifies the certificate for.
    tls = {"ssl_domain": domain, "sni": a.tls_name or a.host}
conn = BlockingConnection(url, timeout=30, container=container, **tls)
options = []
if a.durable:
    options.append(DurableSubscription())
if a.selector:
    options.append(Selector(a.selector))
rcv = conn.create_receiver(a.address, name=a.durable, credit=a.count or 100, options=options)
say("ready")
repliers = {}
received = 0
while not a.count or received < a.count:
    try:
        m = rcv.receive(timeout=a.quiet)
    except Timeout:
        break
    received += 1
    body = m.body
    kind = "str" if isinstance(body, str) else "bytes"
    raw = body.encode() if isinstance(body, str) else bytes(body)
    shown = raw.decode(errors="replace") if len(raw) <= 100 else "%d sha256:%s" % (len(raw), hashlib.sha256(raw).hexdigest())
    say("got", kind, shown)
    if a.reply and m.reply_to:
        if m.reply_to not in repliers:
            repliers[m.reply_to] = conn.create_sender(m.reply_to)
        repliers[m.reply_to].send(Message(body="re: " + shown, correlation_id=m.id))
    rcv.accept()
if a.unsubscribe:
    rcv.close()
else:
    # A detach that is not a close keeps a durable subscription.
    rcv.link.detach()
conn.close()
