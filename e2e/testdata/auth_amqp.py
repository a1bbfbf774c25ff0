"""Authorization as Qpid Proton sees it (e2e/auth_test.go): a refused SASL
login, and links refused with amqp:unauthorized-access while the
connection's other links go on. Prints one line per outcome.
Usage: HOST PORT"""
import sys

from proton import ConnectionException, Message
from proton.utils import BlockingConnection, LinkDetached

from say import say

url = "%s:%s" % (sys.argv[1], sys.argv[2])


def condition(e):
    """The remote condition of a refused link: its name and description."""
    c = e.link.remote_condition
    return "%s %s" % (c.name, c.description) if c else str(e)


def connect(user, password):
    return BlockingConnection(url, user=user, password=password, allowed_mechs="PLAIN", allow_insecure_mechs=True, timeout=10)


try:
    connect("alice", "wrong")
    say("login-accepted")
except ConnectionException as e:
    say("login-refused", str(e).replace("\n", " "))
except Exception as e:
    say("login-refused", type(e).__name__, str(e).replace("\n", " "))

alice = connect("alice", "alice-pw")
snd = alice.create_sender("queue://orders.amqp")
snd.send(Message(body="order-1", durable=True))
say("alice-sent")
try:
    alice.create_sender("queue://payroll")
    say("payroll-sender-accepted")
except LinkDetached as e:
    say("payroll-sender-refused", condition(e))
# The connection's other link goes on.
snd.send(Message(body="order-2", durable=True))
say("alice-sent-again")

bob = connect("bob", "bob-pw")
try:
    bob.create_receiver("queue://payroll")
    say("payroll-receiver-accepted")
except LinkDetached as e:
    say("payroll-receiver-refused", condition(e))
rcv = bob.create_receiver("queue://orders.amqp")
got = []
for _ in range(2):
    m = rcv.receive(timeout=10)
    got.append(m.body)
    rcv.accept()
say("bob-got", ",".join(got))
alice.close()
bob.close()
