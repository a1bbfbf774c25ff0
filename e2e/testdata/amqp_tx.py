"""Work inside one AMQP local transaction with Debian's Qpid Proton, then
discharge it as DISCHARGE (commit or abort), and print "committed" or
"aborted" once the broker answered the discharge.
With BODY... the bodies (strings) are sent to ADDRESS inside the
transaction, durable with --durable. With --receive N, N messages are received from ADDRESS with
no credit beyond N, each printed as "got BODY" and accepted inside the
transaction; after an abort Proton releases them.
A declare or commit the broker refuses, a link or connection it closes
with an error, or no answer within --deadline seconds ends the script
with status 1 and the reason on stderr.
Usage: HOST PORT ADDRESS DISCHARGE [BODY...] [--durable] [--receive N] [--deadline S]"""
import argparse
import sys

from proton import Message
from proton.handlers import MessagingHandler, TransactionHandler
from proton.reactor import Container

from say import say

p = argparse.ArgumentParser()
p.add_argument("host")
p.add_argument("port")
p.add_argument("address")
p.add_argument("discharge", choices=["commit", "abort"])
p.add_argument("bodies", nargs="*")
p.add_argument("--durable", action="store_true")
p.add_argument("--receive", type=int, default=0)
p.add_argument("--deadline", type=float, default=5)
a = p.parse_intermixed_args()
if bool(a.bodies) == bool(a.receive):
    p.error("give either BODY... or --receive N")


def condition(c):
    return "%s: %s" % (c.name, c.description) if c else "no error condition"


class Tx(MessagingHandler, TransactionHandler):
    def __init__(self):
        # No prefetch: the receiver's only credit is the N it wants, so
        # what it takes inside the transaction is exactly what it accepts.
        super().__init__(prefetch=0, auto_accept=False)
        self.txn = None
        self.sent = 0
        self.received = 0
        self.discharging = False
        self.error = None
        self.finished = False
        self.step = "connecting"

    def on_start(self, event):
        self.timer = event.container.schedule(a.deadline, self)
        self.conn = event.container.connect("%s:%s" % (a.host, a.port))
        if a.receive:
            self.receiver = event.container.create_receiver(self.conn, a.address)
        else:
            self.sender = event.container.create_sender(self.conn, a.address)
        self.step = "declaring"
        event.container.declare_transaction(self.conn, handler=self)

    def on_transaction_declared(self, event):
        self.txn = event.transaction
        if a.receive:
            self.step = "receiving"
            self.receiver.flow(a.receive)
        else:
            self.step = "sending"
            self.send()

    def on_sendable(self, event):
        self.send()

    def send(self):
        # Only within credit: a message Proton had to hold back could
        # follow the discharge onto the wire and escape the transaction.
        while self.txn and not self.discharging and self.sender.credit and self.sent < len(a.bodies):
            self.txn.send(self.sender, Message(body=a.bodies[self.sent], durable=a.durable))
            self.sent += 1
        if self.sent == len(a.bodies):
            self.discharge()

    def on_message(self, event):
        self.received += 1
        say("got", event.message.body)
        self.txn.accept(event.delivery)
        if self.received == a.receive:
            self.discharge()

    def discharge(self):
        if self.discharging:
            return
        self.discharging = True
        self.step = "discharging (%s)" % a.discharge
        if a.discharge == "commit":
            self.txn.commit()
        else:
            self.txn.abort()

    def on_transaction_committed(self, event):
        self.done(event, "committed")

    def on_transaction_aborted(self, event):
        self.done(event, "aborted")

    def done(self, event, outcome):
        say(outcome)
        self.finished = True
        self.timer.cancel()
        self.conn.close()

    def on_transaction_declare_failed(self, event):
        self.fail(event, "declare refused (%s)" % condition(event.delivery.remote.condition))

    def on_transaction_commit_failed(self, event):
        self.fail(event, "commit refused (%s)" % condition(event.delivery.remote.condition))

    # A message the broker refused would be missing from what a commit
    # delivers; saying so here names the cause. Whatever the broker says
    # of messages whose transaction aborts is no concern of the test.
    def on_rejected(self, event):
        if a.discharge == "commit":
            self.fail(event, "transfer %s rejected (%s)" % (event.delivery.tag, condition(event.delivery.remote.condition)))

    def on_released(self, event):
        if a.discharge == "commit":
            self.fail(event, "transfer %s released" % event.delivery.tag)

    def on_link_error(self, event):
        self.fail(event, "broker closed link %s (%s)" % (event.link.name, condition(event.link.remote_condition)))

    def on_link_closing(self, event):
        self.fail(event, "broker closed link %s" % event.link.name)

    def on_session_error(self, event):
        self.fail(event, "broker closed the session (%s)" % condition(event.session.remote_condition))

    def on_connection_error(self, event):
        self.fail(event, "broker closed the connection (%s)" % condition(event.connection.remote_condition))

    def on_connection_closing(self, event):
        self.fail(event, "broker closed the connection")

    def on_transport_error(self, event):
        self.fail(event, "transport error (%s)" % condition(event.transport.condition))

    def on_timer_task(self, event):
        self.fail(event, "no answer within %gs (sent %d, received %d)" % (a.deadline, self.sent, self.received))

    def fail(self, event, why):
        # Once the discharge was answered, the broker may end links as it
        # likes; before, the first failure is the cause, and what follows
        # from it noise.
        if self.finished or self.error:
            return
        self.error = "%s while %s" % (why, self.step)
        event.container.stop()


h = Tx()
Container(h).run()
if h.error:
    sys.exit("amqp_tx.py %s %s: %s" % (a.address, a.discharge, h.error))
