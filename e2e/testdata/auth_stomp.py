"""Authorization as stomp.py sees it (e2e/auth_test.go): a refused login,
an allowed send and receive, a refused SEND (an ERROR, and the end of that
connection, as STOMP does) and a refused SUBSCRIBE, while another
client's connection goes on. Prints one line per outcome.
Usage: HOST PORT"""
import sys
import threading
import time

import stomp
from stomp.exception import ConnectFailedException

from say import say

host, port = sys.argv[1], int(sys.argv[2])


class Listener(stomp.ConnectionListener):
    def __init__(self, name):
        self.name = name
        self.errors = []
        self.receipts = set()
        self.messages = []
        self.gone = threading.Event()
        self.cond = threading.Condition()

    def on_error(self, frame):
        with self.cond:
            self.errors.append(frame.headers.get("message", ""))
            self.cond.notify_all()

    def on_receipt(self, frame):
        with self.cond:
            self.receipts.add(frame.headers["receipt-id"])
            self.cond.notify_all()

    def on_message(self, frame):
        with self.cond:
            self.messages.append(frame.body)
            self.cond.notify_all()

    def on_disconnected(self):
        self.gone.set()
        with self.cond:
            self.cond.notify_all()

    def wait(self, pred, timeout=10):
        with self.cond:
            return self.cond.wait_for(pred, timeout)


def connect(user, password):
    c = stomp.Connection([(host, port)], heartbeats=(0, 0))
    l = Listener(user)
    c.set_listener("", l)
    c.connect(user, password, wait=True)
    return c, l


# A wrong password: the CONNECT is answered with an ERROR.
c = stomp.Connection([(host, port)], heartbeats=(0, 0))
bad = Listener("bad")
c.set_listener("", bad)
try:
    c.connect("alice", "wrong", wait=True)
    say("login-accepted")
except ConnectFailedException:
    bad.wait(lambda: bad.errors, 5)
    say("login-refused", bad.errors[0] if bad.errors else "")

alice, al = connect("alice", "alice-pw")
bob, bl = connect("bob", "bob-pw")
say("connected")

bob.subscribe("/queue/orders.eu", id="1", ack="auto", headers={"receipt": "sub-1"})
bl.wait(lambda: "sub-1" in bl.receipts or bl.errors)
alice.send("/queue/orders.eu", "order-1", headers={"persistent": "true"}, receipt="s-1")
al.wait(lambda: "s-1" in al.receipts or al.errors)
say("alice-sent" if "s-1" in al.receipts else "alice-send-failed " + repr(al.errors))
bl.wait(lambda: bl.messages)
say("bob-got", bl.messages[0] if bl.messages else "nothing")

# bob may read orders but not write them: ERROR, and his connection ends.
bob.send("/queue/orders.eu", "forged", headers={"persistent": "true"}, receipt="s-2")
bl.wait(lambda: bl.errors)
say("bob-send-refused", bl.errors[0] if bl.errors else "no error")
bl.gone.wait(5)
say("bob-disconnected" if bl.gone.is_set() else "bob-still-connected")

# alice's connection is unaffected.
alice.send("/queue/orders.eu", "order-2", headers={"persistent": "true"}, receipt="s-3")
al.wait(lambda: "s-3" in al.receipts or al.errors)
say("alice-sent-again" if "s-3" in al.receipts else "alice-failed " + repr(al.errors))

# alice may not read payroll.
alice.subscribe("/queue/payroll", id="2", ack="auto", headers={"receipt": "sub-2"})
al.wait(lambda: al.errors or "sub-2" in al.receipts)
say("alice-subscribe-refused", al.errors[0] if al.errors else "no error")
try:
    alice.disconnect()
except Exception:
    pass
