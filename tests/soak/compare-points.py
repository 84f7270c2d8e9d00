#!/usr/bin/python3
# The soak's judge, a reader independent of ferry (python3-rbd): every point ferry-N that both the
# source (the image's part of group snapshot ferry-N) and the replica (user snapshot ferry-N) still
# hold is read at both sides and compared byte for byte, 4 MiB at a time; then the replica's newest
# point is compared with the source image as it is now (writes stopped, so it must be the same).
#
#   compare-points.py SOURCE_CONF REPLICA_CONF POOL IMAGE...
#
# One JSON line per comparison on stdout ({image, point, against, equal, size, sha256, first_diff,
# chunks_differing}), then a summary line {points_compared, mismatches, newest: [...]}.
# Exit 0 when everything compared is equal, 1 on a mismatch, 2 when something could not be read.
import hashlib
import json
import os
import re
import sys

import rados
import rbd

CHUNK = 4 << 20
POINT = re.compile(r"^ferry-(\d+)$")


def source_points(image):
    """N -> snapshot id of the image's part of group snapshot ferry-N."""
    out = {}
    for snap in image.list_snaps():
        group = snap.get("group")
        if group:
            m = POINT.match(group.get("snap_name", ""))
            if m:
                out[int(m.group(1))] = snap["id"]
    return out


def replica_points(image):
    out = {}
    for snap in image.list_snaps():
        if snap.get("namespace", 0) != rbd.RBD_SNAP_NAMESPACE_TYPE_USER:
            continue
        m = POINT.match(snap["name"])
        if m:
            out[int(m.group(1))] = snap["id"]
    return out


def compare(a, b):
    """Reads two open images (each set to its snapshot) side by side."""
    size_a, size_b = a.size(), b.size()
    result = {"size": size_a, "equal": size_a == size_b, "first_diff": None, "chunks_differing": 0}
    if size_a != size_b:
        result["size_replica"] = size_b
    digest = hashlib.sha256()
    for offset in range(0, min(size_a, size_b), CHUNK):
        length = min(CHUNK, size_a - offset)
        da, db = a.read(offset, length), b.read(offset, length)
        digest.update(da)
        if da != db:
            result["equal"] = False
            result["chunks_differing"] += 1
            if result["first_diff"] is None:
                at = next(i for i in range(length) if da[i] != db[i])
                result["first_diff"] = offset + at
    result["sha256"] = digest.hexdigest()
    return result


def main():
    source_conf, replica_conf, pool = sys.argv[1], sys.argv[2], sys.argv[3]
    names = sys.argv[4:]
    clusters, ioctxs = [], []
    for conf in (source_conf, replica_conf):
        cluster = rados.Rados(conffile=conf)
        cluster.connect(timeout=30)
        clusters.append(cluster)
        ioctxs.append(cluster.open_ioctx(pool))
    compared = mismatches = unreadable = 0
    newest = []
    try:
        for name in names:
            src = rbd.Image(ioctxs[0], name, read_only=True)
            dst = rbd.Image(ioctxs[1], name, read_only=True)
            at_source, at_replica = source_points(src), replica_points(dst)
            common = sorted(set(at_source) & set(at_replica))
            for n in common:
                src.set_snap_by_id(at_source[n])
                dst.set_snap_by_id(at_replica[n])
                r = compare(src, dst)
                r.update({"image": name, "point": n, "against": f"source group snapshot ferry-{n}"})
                print(json.dumps(r), flush=True)
                compared += 1
                mismatches += 0 if r["equal"] else 1
            if at_replica:
                n = max(at_replica)
                src.close()
                src = rbd.Image(ioctxs[0], name, read_only=True)  # the image as it is now
                dst.set_snap_by_id(at_replica[n])
                r = compare(src, dst)
                r.update({"image": name, "point": n, "against": "source image now"})
                print(json.dumps(r), flush=True)
                mismatches += 0 if r["equal"] else 1
                newest.append({"image": name, "point": n, "equal": r["equal"],
                               "source_points": sorted(at_source), "replica_points": sorted(at_replica)})
            else:
                unreadable += 1
                newest.append({"image": name, "point": None, "equal": False,
                               "source_points": sorted(at_source), "replica_points": []})
            src.close()
            dst.close()
    except Exception as e:  # noqa: BLE001: named, and the exit status says so
        print(f"compare-points: {e}", file=sys.stderr, flush=True)
        unreadable += 1
    for ioctx in ioctxs:
        ioctx.close()
    summary = {"points_compared": compared, "mismatches": mismatches, "unreadable": unreadable,
               "newest": newest}
    print(json.dumps(summary), flush=True)
    for cluster in clusters:
        cluster.shutdown()
    # Exit at once: python3-rbd can hang in the interpreter's teardown.
    os._exit(2 if unreadable else (1 if mismatches else 0))


if __name__ == "__main__":
    main()
