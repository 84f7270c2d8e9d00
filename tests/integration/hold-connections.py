#!/usr/bin/python3
# Holds connections open against a ferryd as an attacker would, then lets go by itself.
#
#   hold-connections.py HOST PORT IDLE SLOW SECONDS
#       IDLE plain TCP connections that never send a byte and SLOW TLS connections that send a
#       request's headers one byte a second, all from HOST's side of 127.0.0.1; after SECONDS
#       (or when the daemon has closed every one) it closes what is left and prints
#       "held N closed-by-server M", N being how many were open after the first second.
import socket
import ssl
import sys
import time

host, port = sys.argv[1], int(sys.argv[2])
idle_count, slow_count, seconds = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
sockets, slow = [], []
for _ in range(idle_count):
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((host, port))
        sockets.append(s)
    except OSError:
        s.close()
for _ in range(slow_count):
    raw = socket.socket()
    raw.settimeout(2)
    try:
        raw.connect((host, port))
        tls = context.wrap_socket(raw)
        tls.settimeout(0.05)
        slow.append(tls)
    except OSError:
        raw.close()
print("ready", flush=True)
header = b"GET /v1/volumes HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4096
until, position, held, closed = time.monotonic() + seconds, 0, None, 0
while time.monotonic() < until and (sockets or slow):
    for s in list(slow):
        try:
            s.send(header[position % len(header):position % len(header) + 1])
        except OSError:
            slow.remove(s)
            closed += 1
    for s in list(sockets):
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                sockets.remove(s)
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            sockets.remove(s)
            closed += 1
    if held is None:
        held = len(sockets) + len(slow)
    position += 1
    time.sleep(1)
for s in sockets + slow:
    s.close()
print(f"held {held or 0} closed-by-server {closed}", flush=True)
