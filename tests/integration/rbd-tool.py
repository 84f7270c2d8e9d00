#!/usr/bin/python3
# Test helper that reads and writes RBD images through python3-rbd, independently of ferry's
# own code: checksums of a point (a user snapshot or an image's part of a group snapshot, which
# the rbd CLI cannot export by name) and ordered writes across two images for group consistency.
#
#   rbd-tool.py sha CONF POOL/IMAGE SNAPSHOT      SHA-256 of the image's bytes at SNAPSHOT
#   rbd-tool.py size CONF POOL/IMAGE SNAPSHOT     its size in bytes at SNAPSHOT
#   rbd-tool.py write CONF POOL/IMAGE OFFSET FILE  writes FILE's bytes at OFFSET
#   rbd-tool.py write-rate CONF POOL/IMAGE MB_PER_S SECONDS
#       random 4 KiB writes of random data at random 4 KiB-aligned offsets, paced to MB_PER_S
#       (10^6 bytes) for SECONDS, 64 in flight; prints the rate reached
#   rbd-tool.py write-ordered CONF POOL IMG_A IMG_B SECONDS
#       for i = 1, 2, ...: write record i into slot i % SLOTS of IMG_A, then (once acknowledged)
#       into the same slot of IMG_B; prints "started" once the first record is in both, then
#       the number of records written
#   rbd-tool.py check-ordered CONF POOL IMG_A IMG_B SNAPSHOT
#       exit 0 when the two images at SNAPSHOT form one instant of write-ordered: no record of B
#       without the same record in A, and A at most one record ahead; prints the newest records
import hashlib
import os
import struct
import sys
import time

import rados
import rbd

SLOTS = 64
BLOCK = 4096


def open_image(ioctx, name, snapshot):
    image = rbd.Image(ioctx, name, read_only=snapshot is not None)
    if snapshot is None:
        return image
    for snap in image.list_snaps():
        if snap["name"] == snapshot and snap.get("namespace", 0) == rbd.RBD_SNAP_NAMESPACE_TYPE_USER:
            image.set_snap_by_id(snap["id"])
            return image
    for snap in image.list_snaps():
        group = snap.get("group")
        if group and group.get("snap_name") == snapshot:
            image.set_snap_by_id(snap["id"])
            return image
    image.close()
    # Exit at once: unwinding with the cluster still connected crashes python3-rbd.
    print(f"{name} has no snapshot {snapshot}", file=sys.stderr, flush=True)
    os._exit(2)


def record(sequence):
    return struct.pack("<Q", sequence) * (BLOCK // 8)


def sequences(image):
    out = []
    for slot in range(SLOTS):
        data = image.read(slot * BLOCK, 8)
        out.append(struct.unpack("<Q", data)[0])
    return out


def main():
    command, conf = sys.argv[1], sys.argv[2]
    cluster = rados.Rados(conffile=conf)
    cluster.connect(timeout=30)
    try:
        if command == "write":
            pool, name = sys.argv[3].split("/", 1)
            ioctx = cluster.open_ioctx(pool)
            with rbd.Image(ioctx, name) as image, open(sys.argv[5], "rb") as source:
                image.write(source.read(), int(sys.argv[4]))
            return 0
        if command == "write-rate":
            import random
            pool, name = sys.argv[3].split("/", 1)
            rate, seconds = float(sys.argv[4]) * 1e6, float(sys.argv[5])
            ioctx = cluster.open_ioctx(pool)
            image = rbd.Image(ioctx, name)
            blocks = image.size() // BLOCK
            pool_of_data = os.urandom(BLOCK * 256)
            start = time.monotonic()
            written = 0
            pending = []
            while time.monotonic() - start < seconds:
                ahead = written - rate * (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(min(ahead / rate, 0.05))
                    continue
                pending = [c for c in pending if not c.is_complete()]
                while len(pending) >= 64:
                    pending[0].wait_for_complete_and_cb()
                    pending = [c for c in pending if not c.is_complete()]
                k = random.randrange(256)
                data = pool_of_data[k * BLOCK:(k + 1) * BLOCK]
                pending.append(image.aio_write(data, random.randrange(blocks) * BLOCK, lambda c: None))
                written += BLOCK
            for c in pending:
                c.wait_for_complete_and_cb()
            elapsed = time.monotonic() - start
            image.close()
            ioctx.close()
            print(f"{written / elapsed / 1e6:.1f}")
            return 0
        if command in ("sha", "size"):
            pool, name = sys.argv[3].split("/", 1)
            ioctx = cluster.open_ioctx(pool)
            image = open_image(ioctx, name, sys.argv[4])
            size = image.size()
            digest = hashlib.sha256()
            for offset in range(0, size if command == "sha" else 0, 4 << 20):
                digest.update(image.read(offset, min(4 << 20, size - offset)))
            image.close()  # an image left open at shutdown hangs the interpreter's exit
            ioctx.close()
            print(digest.hexdigest() if command == "sha" else size)
            return 0
        pool, name_a, name_b = sys.argv[3], sys.argv[4], sys.argv[5]
        ioctx = cluster.open_ioctx(pool)
        if command == "write-ordered":
            until = time.monotonic() + float(sys.argv[6])
            a, b = rbd.Image(ioctx, name_a), rbd.Image(ioctx, name_b)
            sequence = 0
            while time.monotonic() < until:
                sequence += 1
                offset = (sequence % SLOTS) * BLOCK
                a.write(record(sequence), offset)
                b.write(record(sequence), offset)
                if sequence == 1:
                    print("started", flush=True)
            a.close()
            b.close()
            ioctx.close()
            print(sequence)
            return 0
        if command == "check-ordered":
            a = open_image(ioctx, name_a, sys.argv[6])
            b = open_image(ioctx, name_b, sys.argv[6])
            seq_a, seq_b = sequences(a), sequences(b)
            a.close()
            b.close()
            ioctx.close()
            print(f"newest record: A {max(seq_a)}, B {max(seq_b)}")
            for slot in range(SLOTS):
                if seq_b[slot] > seq_a[slot]:
                    print(f"slot {slot}: B has record {seq_b[slot]}, A only {seq_a[slot]}")
                    return 1
            if max(seq_a) > max(seq_b) + 1:
                print("A is more than one record ahead of B")
                return 1
            return 0
    finally:
        cluster.shutdown()
    sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    sys.exit(main())
