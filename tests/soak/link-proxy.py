#!/usr/bin/python3
# The link between two ferry sites, as a TCP proxy that the soak can break: A's scheduler pushes to
# this proxy, which passes every byte to B's ferryd (TLS goes through as bytes: the certificate's
# name, 127.0.0.1, is the same either way).
#
#   link-proxy.py LISTEN_PORT TARGET_HOST TARGET_PORT STATE_FILE [--rate BYTES_PER_SECOND]
#
# --rate limits the bytes towards the target (the pushes), over all connections together, as a
# link of that bandwidth would (a token bucket with a 64 KiB burst); the answers are not limited.
# It runs one select loop and changes state on a signal, writing the state it is in to STATE_FILE
# once the change is made (the soak waits for that file, not for a guessed delay):
#   SIGUSR1  cut:   every connection is reset (RST, both sides) and the port refuses new ones
#   SIGUSR2  stall: connections stay open, new ones are accepted, but no byte moves in either
#                   direction (packets that vanish without a reset); what was in flight waits
#   SIGHUP   up:    the port listens again; after a stall, the held bytes flow on
#   SIGTERM  exit, printing its counters on stderr
# Counters (connections, bytes each way, resets) are written to STATE_FILE.stats at each change.
import errno
import os
import select
import signal
import socket
import sys
import time

listen_port, target_host, target_port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
state_file = sys.argv[4]
rate = int(sys.argv[6]) if len(sys.argv) > 6 and sys.argv[5] == "--rate" else 0
BURST = 64 << 10
tokens, tokens_at = float(BURST), time.monotonic()
BUFFER = 256 << 10  # per direction: a side is read only while the other's buffer is below this

wanted = "up"
stopping = False
stats = {"connections": 0, "bytes_to_target": 0, "bytes_to_client": 0, "reset": 0, "cuts": 0, "stalls": 0}


def on_signal(number, _frame):
    global wanted, stopping
    if number == signal.SIGUSR1:
        wanted = "cut"
    elif number == signal.SIGUSR2:
        wanted = "stall"
    elif number == signal.SIGHUP:
        wanted = "up"
    else:
        stopping = True


for number in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
    signal.signal(number, on_signal)


def write_state(state):
    with open(state_file + ".tmp", "w") as out:
        out.write(state + "\n")
    os.replace(state_file + ".tmp", state_file)
    with open(state_file + ".stats.tmp", "w") as out:
        out.write(" ".join(f"{k}={v}" for k, v in stats.items()) + "\n")
    os.replace(state_file + ".stats.tmp", state_file + ".stats")


class Pair:
    """One client connection and its connection to the target, with a buffer each way."""

    def __init__(self, client):
        self.client = client
        self.target = None
        self.connected = False
        self.to_target = bytearray()
        self.to_client = bytearray()
        self.client_eof = self.target_eof = False


pairs = []
listener = None


def open_listener():
    global listener
    for _ in range(100):
        try:
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", listen_port))
            s.listen(64)
            s.setblocking(False)
            listener = s
            return
        except OSError as e:
            s.close()
            print(f"link-proxy: bind {listen_port}: {e}; trying again", file=sys.stderr, flush=True)
            time.sleep(0.1)
    sys.exit(f"link-proxy: cannot listen on {listen_port}")


def reset(sock):
    if sock is None:
        return
    try:
        # linger 0: close() sends a reset, as a broken link or a crashed middlebox would
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    sock.close()


def drop(pair, hard):
    if pair in pairs:
        pairs.remove(pair)
    for sock in (pair.client, pair.target):
        if sock is None:
            continue
        if hard:
            reset(sock)
        else:
            sock.close()
    if hard:
        stats["reset"] += 1


def accept():
    while True:
        try:
            client, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        client.setblocking(False)
        pair = Pair(client)
        target = socket.socket()
        target.setblocking(False)
        try:
            target.connect((target_host, target_port))
        except BlockingIOError:
            pass
        except OSError:
            target.close()
            reset(client)
            continue
        pair.target = target
        pairs.append(pair)
        stats["connections"] += 1


def take_tokens():
    """--rate: the bytes that may go towards the target now, taken from the bucket."""
    global tokens, tokens_at
    now = time.monotonic()
    tokens = min(float(BURST), tokens + (now - tokens_at) * rate)
    tokens_at = now
    taken = int(tokens)
    tokens -= taken
    return taken


def give_back(count):
    global tokens
    tokens += count


def pump(pair, readable, writable):
    """Moves bytes for one pair; False when it is finished."""
    if not pair.connected and pair.target in writable:
        err = pair.target.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            drop(pair, True)  # the target refused: the client is reset as it would be
            return False
        pair.connected = True
    if not pair.connected:
        return True
    for src, dst, buf, key in ((pair.client, pair.target, pair.to_target, "bytes_to_target"),
                               (pair.target, pair.client, pair.to_client, "bytes_to_client")):
        if src in readable and len(buf) < BUFFER:
            try:
                data = src.recv(65536)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                drop(pair, True)
                return False
            if data == b"":
                if src is pair.client:
                    pair.client_eof = True
                else:
                    pair.target_eof = True
            elif data:
                buf += data
        if buf and dst in writable:
            allowed = len(buf)
            if rate and dst is pair.target:
                allowed = min(allowed, int(take_tokens()))
                if allowed <= 0:
                    continue
            try:
                sent = dst.send(buf[:allowed])
                if rate and dst is pair.target:
                    give_back(allowed - sent)
                stats[key] += sent
                del buf[:sent]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                drop(pair, True)
                return False
    # A side that has finished is passed on once its bytes are out.
    if pair.client_eof and not pair.to_target:
        try:
            pair.target.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    if pair.target_eof and not pair.to_client:
        try:
            pair.client.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    if pair.client_eof and pair.target_eof and not pair.to_target and not pair.to_client:
        drop(pair, False)
        return False
    return True


def main():
    state = "up"
    open_listener()
    write_state(state)
    while not stopping:
        if wanted != state:
            if wanted == "cut":
                for pair in list(pairs):
                    drop(pair, True)
                if listener is not None:
                    listener.close()
                    globals()["listener"] = None
                stats["cuts"] += 1
            elif wanted == "stall":
                if listener is None:
                    open_listener()
                stats["stalls"] += 1
            else:
                if listener is None:
                    open_listener()
            state = wanted
            write_state(state)
        rlist, wlist = [], []
        if listener is not None:
            rlist.append(listener)
        if state == "up":
            for pair in pairs:
                if not pair.connected:
                    wlist.append(pair.target)
                    continue
                if len(pair.to_target) < BUFFER and not pair.client_eof:
                    rlist.append(pair.client)
                if len(pair.to_client) < BUFFER and not pair.target_eof:
                    rlist.append(pair.target)
                if pair.to_target and not (rate and tokens < 1024 and
                                           time.monotonic() - tokens_at < 1024 / rate):
                    wlist.append(pair.target)
                if pair.to_client:
                    wlist.append(pair.client)
        try:
            readable, writable, _ = select.select(rlist, wlist, [], 0.01 if rate else 0.2)
        except InterruptedError:
            continue
        except OSError as e:
            if e.errno == errno.EBADF:
                continue
            raise
        if listener is not None and listener in readable:
            accept()  # during a stall too: the connection opens, and then nothing moves
        if state != "up":
            continue
        readable, writable = set(readable), set(writable)
        for pair in list(pairs):
            pump(pair, readable, writable)
    print("link-proxy: " + " ".join(f"{k}={v}" for k, v in stats.items()), file=sys.stderr, flush=True)
    write_state("exited")


main()
