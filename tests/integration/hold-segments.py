#!/usr/bin/python3
# Holds kept-alive connections that each sent one segment, as many clients of one ferryd would.
#
#   hold-segments.py URL TOKEN_FILE VOLUME TRANSFER_ID SEGMENT_SIZE COUNT SECONDS
#       COUNT TLS connections, from 127.0.0.2, .3, ... (20 each, under the per-address cap),
#       each PUTs segment i (zeros, zstd-framed) of the transfer and keeps the connection open;
#       prints "sent N" once every answer is in, then holds them for SECONDS and closes them.
import socket
import ssl
import subprocess
import sys
import time

url, token_file, volume, transfer = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
segment_size, count, seconds = int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7])
host, port = url.split("//")[1].rsplit(":", 1)
token = open(token_file).read().strip()
body = subprocess.run(["zstd", "-q", "-c", f"--stream-size={segment_size}"], input=bytes(segment_size), capture_output=True,
                      check=True).stdout
digest = subprocess.run(["xxh128sum"], input=bytes(segment_size), capture_output=True,
                        check=True).stdout.split()[0].decode()
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
held, sent = [], 0
for i in range(count):
    raw = socket.create_connection((host, int(port)), timeout=30,
                                   source_address=(f"127.0.0.{2 + i // 20}", 0))
    tls = context.wrap_socket(raw)
    request = (f"PUT /v1/volumes/{volume}/segments/{i} HTTP/1.1\r\nHost: x\r\n"
               f"Authorization: Bearer {token}\r\nX-Ferry-Transfer: {transfer}\r\n"
               f"X-Ferry-Length: {segment_size}\r\nX-Ferry-Encoding: zstd\r\n"
               f"X-Ferry-Checksum: {digest}\r\nContent-Type: application/octet-stream\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    tls.sendall(request)
    answer = tls.recv(4096)
    if b" 200 " in answer.split(b"\r\n")[0]:
        sent += 1
    held.append(tls)
print(f"sent {sent}", flush=True)
time.sleep(seconds)
for tls in held:
    tls.close()
