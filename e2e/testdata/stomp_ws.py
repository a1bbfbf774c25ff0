"""STOMP over WebSocket with stomp.py: subscribe to DEST, send BODY to it,
print "got BODY" when it comes back, and end. With --subprotocol P the
client asks for subprotocol P, with --origin O it sends Origin O; by
default it asks for none, as stomp.py's WebSocket transport does. A
refused upgrade prints "refused STATUS".

stomp.py 8.1 and later have stomp.WSConnection (websocket-client under
stomp.py's STOMP 1.2 protocol), which this uses when it is there. Debian
12's python3-stomp is 8.0, without it: then the same pairing is made here
from Debian's python3-websocket, the way 8.1's WSTransport makes it (one
STOMP frame per text message, no subprotocol, the Origin websocket-client
sends by default).
Usage: HOST PORT DEST BODY [--subprotocol P] [--origin O]"""
import argparse
import sys
import threading

import stomp
import websocket

from say import say

ap = argparse.ArgumentParser()
ap.add_argument("host")
ap.add_argument("port", type=int)
ap.add_argument("dest")
ap.add_argument("body")
ap.add_argument("--subprotocol")
ap.add_argument("--origin")
a = ap.parse_args()

ws_options = {}
if a.subprotocol:
    ws_options["subprotocols"] = [a.subprotocol]
if a.origin:
    ws_options["origin"] = a.origin

if hasattr(stomp, "WSConnection") and not ws_options:
    conn = stomp.WSConnection([(a.host, a.port)], heartbeats=(0, 0))
else:
    from stomp.connect import BaseConnection
    from stomp.protocol import Protocol12
    from stomp.transport import BaseTransport

    class WSTransport(BaseTransport):
        def __init__(self, host, port):
            BaseTransport.__init__(self)
            self.host_and_port, self.socket, self.vhost = (host, port), None, None

        def attempt_connection(self):
            self.socket = websocket.create_connection("ws://%s:%d/" % self.host_and_port, **ws_options)
            self.current_host_and_port = self.host_and_port

        def is_connected(self):
            return self.socket is not None and BaseTransport.is_connected(self)

        def send(self, encoded_frame):
            self.socket.send(encoded_frame)  # a text message, as websocket-client sends by default

        def receive(self):
            try:
                return self.socket.recv().encode()
            except websocket.WebSocketConnectionClosedException:
                return b""

        def cleanup(self):
            if self.socket is not None:
                self.socket.close()
            self.socket = None

        def disconnect_socket(self):
            self.running = False
            self.cleanup()
            if not self.notified_on_disconnect:
                self.notify("disconnected")

    class WSConnection(BaseConnection, Protocol12):
        def __init__(self, host, port):
            transport = WSTransport(host, port)
            BaseConnection.__init__(self, transport)
            Protocol12.__init__(self, transport, (0, 0))

        def connect(self, *args, **kwargs):
            self.transport.start()
            Protocol12.connect(self, *args, **kwargs)

    conn = WSConnection(a.host, a.port)

got = threading.Event()


class Listener(stomp.ConnectionListener):
    def on_message(self, frame):
        say("got", frame.body)
        got.set()


conn.set_listener("", Listener())
try:
    conn.connect(wait=True)
except websocket.WebSocketBadStatusException as e:
    say("refused", e.status_code)
    sys.exit(0)
say("connected")
conn.subscribe(destination=a.dest, id="1", ack="auto", headers={"receipt": "sub"})
conn.send(destination=a.dest, body=a.body)
if not got.wait(10):
    say("nothing")
conn.disconnect()
