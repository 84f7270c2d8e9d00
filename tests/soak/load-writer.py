#!/usr/bin/python3
# The soak's write load on the source images, through python3-rbd (independent of ferry): random
# writes of random data (4-64 KiB), runs of zeros, and discards (64 KiB-1 MiB, which ferry must
# ship as zeroed extents), at random 4 KiB-aligned offsets, paced to a modest rate.
#
#   load-writer.py CONF POOL KB_PER_S IMAGE...
#
# KB_PER_S (1000 bytes) is the rate for each image. Prints "started" once every image has had a
# write, and on SIGTERM (or SIGINT) finishes the write in flight, closes the images and prints
# one line "writes=N zeros=N discards=N bytes_written=N bytes_discarded=N seconds=S"; exit 0. A write that fails is fatal
# (exit 1, the error on stderr): the source cluster is never faulted by the soak.
import os
import random
import signal
import sys
import time

import rados
import rbd

BLOCK = 4096
stopping = False


def on_term(_number, _frame):
    global stopping
    stopping = True


def main():
    conf, pool, rate = sys.argv[1], sys.argv[2], float(sys.argv[3]) * 1000
    names = sys.argv[4:]
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    cluster = rados.Rados(conffile=conf)
    cluster.connect(timeout=30)
    ioctx = cluster.open_ioctx(pool)
    images = [rbd.Image(ioctx, name) for name in names]
    sizes = [image.size() for image in images]
    noise = os.urandom(1 << 20)
    counts = {"writes": 0, "zeros": 0, "discards": 0, "bytes_written": 0, "bytes_discarded": 0}
    done = [0.0] * len(images)
    start = time.monotonic()
    started = False
    status = 0
    try:
        while not stopping:
            elapsed = time.monotonic() - start
            # the image furthest behind its pace goes next; sleep while all are ahead
            i = min(range(len(images)), key=lambda k: done[k])
            ahead = done[i] - rate * elapsed
            if ahead > 0:
                time.sleep(min(ahead / rate, 0.05))
                continue
            image, size = images[i], sizes[i]
            kind = random.random()
            if kind < 0.15:
                length = random.randrange(16, 257) * BLOCK
                offset = random.randrange((size - length) // BLOCK) * BLOCK
                image.discard(offset, length)
                counts["discards"] += 1
            elif kind < 0.30:
                length = random.randrange(1, 17) * BLOCK
                offset = random.randrange((size - length) // BLOCK) * BLOCK
                image.write(bytes(length), offset)
                counts["zeros"] += 1
            else:
                length = random.randrange(1, 17) * BLOCK
                offset = random.randrange((size - length) // BLOCK) * BLOCK
                at = random.randrange(len(noise) - length)
                image.write(noise[at:at + length], offset)
                counts["writes"] += 1
            counts["bytes_discarded" if kind < 0.15 else "bytes_written"] += length
            # paced by bytes written, a discard counted as one block: the rate stays modest
            done[i] += length if kind >= 0.15 else BLOCK
            if not started and all(d > 0 for d in done):
                started = True
                print("started", flush=True)
    except Exception as e:  # noqa: BLE001: any librbd error ends the load, named
        print(f"load-writer: {e}", file=sys.stderr, flush=True)
        status = 1
    seconds = time.monotonic() - start
    for image in images:
        image.close()
    ioctx.close()
    cluster.shutdown()
    print(" ".join(f"{k}={v}" for k, v in counts.items()) + f" seconds={seconds:.0f}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
