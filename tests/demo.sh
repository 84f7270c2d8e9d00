#!/bin/bash
# The embedded default of `make demo`: two ferryd sites on loopback in a temporary folder, a
# sample disk image copied from site A to site B, interrupted on purpose, resumed and verified.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
FERRY="$here/bin/ferry"
FERRYD="$here/bin/ferryd"
SIZE_MIB=${FERRY_DEMO_SIZE_MIB:-256}
demo=$(mktemp -d /tmp/ferry-demo.XXXXXX)
export FERRY_STATE_DIR="$demo/cli"
pids=""
finish() {
	for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ "${FERRY_DEMO_KEEP:-0}" = 1 ]; then echo "kept $demo"; else rm -rf "$demo"; fi
}
trap finish EXIT
say() { printf '\n== %s\n' "$*"; }

say "two sites in $demo, each a ferryd with its own catalog, token and self-signed certificate"
openssl rand -hex 24 > "$demo/token"
chmod 600 "$demo/token"
for site in site-a site-b; do
	mkdir -p "$demo/$site"
	"$FERRYD" --state-dir "$demo/$site" --listen 127.0.0.1:0 --token-file "$demo/token" \
		2> "$demo/$site.log" &
	pids="$pids $!"
done
for site in site-a site-b; do
	for _ in $(seq 1 100); do [ -s "$demo/$site/ferryd.url" ] && break; sleep 0.1; done
	echo "$site: $(cat "$demo/$site/ferryd.url"), $(grep -o 'fingerprint.*' "$demo/$site.log")"
done
A=$(cat "$demo/site-a/ferryd.url")
B=$(cat "$demo/site-b/ferryd.url")
copy() { # copy URL SITE SOURCE NAME [args]
	url=$1 site=$2 source=$3 name=$4; shift 4
	"$FERRY" copy --to "$url" --token-file "$demo/token" --cacert "$demo/$site/tls/cert.pem" \
		"$@" "$source" "$name"
}

say "a sample ${SIZE_MIB} MiB disk image: a third random, a third text, a third empty"
third=$((SIZE_MIB / 3))
head -c $((third << 20)) /dev/urandom > "$demo/vm1-disk.raw"
for _ in $(seq 1 $((third * 16))); do
	printf '%s\n' "$(date -u) vm1 kernel: eth0 link up, 1000 Mbps full duplex, flow control rx/tx" 
done | head -c 65536 > "$demo/line"
while [ "$(stat -c %s "$demo/vm1-disk.raw")" -lt $(((2 * third) << 20)) ]; do
	cat "$demo/line" "$demo/line" "$demo/line" "$demo/line" >> "$demo/vm1-disk.raw"
done
truncate -s $((SIZE_MIB << 20)) "$demo/vm1-disk.raw"
echo "source sha256 $(sha256sum < "$demo/vm1-disk.raw" | cut -c1-16)…"

say "the disk lands at site A (ferry copy, a cold copy into site A's volumes)"
copy "$A" site-a "$demo/vm1-disk.raw" vm1-disk

# Slow enough that the cut lands mid-copy whatever the image size: about 8 s of data.
rate=$(( (SIZE_MIB / 3 + SIZE_MIB / 12) * 1048576 / 8 ))
say "site A -> site B at $((rate / 1048576)) MiB/s, cut after 3 seconds with kill -9"
(exec "$FERRY" copy --to "$B" --token-file "$demo/token" --cacert "$demo/site-b/tls/cert.pem" \
	--bwlimit "$rate" --no-progress "$demo/site-a/volumes/vm1-disk" vm1-disk) &
sender=$!
sleep 3
kill -9 "$sender" 2>/dev/null || echo "(the copy had already finished)"
wait "$sender" 2>/dev/null || true
"$FERRY" status --daemon "$B" --token-file "$demo/token" --cacert "$demo/site-b/tls/cert.pem"

say "the same command again: it resumes where it stopped, sends only what is missing"
copy "$B" site-b "$demo/site-a/volumes/vm1-disk" vm1-disk --json | tee "$demo/resume.json"

say "verify: both sides re-read and compare digests"
"$FERRY" verify --to "$B" --token-file "$demo/token" --cacert "$demo/site-b/tls/cert.pem" \
	"$demo/vm1-disk.raw" vm1-disk
a=$(sha256sum < "$demo/site-a/volumes/vm1-disk")
b=$(sha256sum < "$demo/site-b/volumes/vm1-disk")
s=$(sha256sum < "$demo/vm1-disk.raw")
if [ "$a" = "$s" ] && [ "$b" = "$s" ]; then
	echo "sha256 equal on source, site A and site B; site B keeps it sparse:" \
		"$(du -h "$demo/site-b/volumes/vm1-disk" | cut -f1) on disk for ${SIZE_MIB} MiB"
else
	echo "MISMATCH: source $s, site A $a, site B $b" >&2
	exit 1
fi
say "site B's status"
"$FERRY" status --daemon "$B" --token-file "$demo/token" --cacert "$demo/site-b/tls/cert.pem"
