#!/bin/sh
# Installs the Debian 12 packages that ferry needs to build, test and benchmark.
# Idempotent: does nothing when everything is present. Must run as root when something is missing.
set -e
packages="build-essential pkg-config libcurl4-openssl-dev libmicrohttpd-dev libjansson-dev
libxxhash-dev libzstd-dev libsqlite3-dev libcmocka-dev libinih-dev libgnutls28-dev gnutls-bin
openssl rsync zstd curl sqlite3 perl util-linux procps time jq xxd xxhash iproute2
ceph-mon ceph-osd ceph-common librbd-dev librados-dev python3-rbd python3-rados iptables
libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev libxml2-dev
qemu-system-x86 qemu-utils qemu-block-extra tini clang-format clang libsystemd-dev libnbd-dev
debhelper dpkg-dev fakeroot lintian scdoc systemd adduser man-db bash-completion python3-seccomp
prometheus python3-yaml chromium chromium-driver python3-selenium"
missing=""
for p in $packages; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
if [ "$(id -u)" != 0 ]; then
	echo "missing Debian packages:$missing; run as root (or: sudo apt-get install$missing)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
