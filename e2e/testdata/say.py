"""say prints one whole line: the test scripts print from stomp.py's and
paho's threads and from their own, and print() writes its arguments one
by one, so two threads' lines could interleave ("gotreconnected") and a
message received would read as lost."""
import sys
import threading

_lock = threading.Lock()


def say(*args):
    line = " ".join(str(a) for a in args) + "\n"
    with _lock:
        sys.stdout.write(line)
        sys.stdout.flush()
