#!/bin/bash
# Runs a qemu-io command on a running guest's disk through the guest's own block device in QEMU:
# a write lands exactly as one by the guest would (and with cache='none' it is in the image file
# when this returns). This is how tests write "inside" the tick guest, which has no OS.
#
#   qemu-io.sh URI DOMAIN TARGET_DEV QEMU_IO_COMMAND
#   e.g. qemu-io.sh "$URI" g1 vda 'write -P 0x5a 1048576 4096'
#
# Exit 0 when the monitor took the command without an error; what qemu-io itself prints (such as
# "wrote 4096/4096 bytes", or a failed read -P check) goes to QEMU's stdout, which is the domain's
# log (DAEMON_DIR/log/qemu/DOMAIN.log), not to the monitor: check the data, not this output.
#
# Why the device's QOM path (-d /machine/peripheral/ALIAS/virtio-backend) rather than a node name:
# libvirt builds disks with -blockdev, so the device's block backend has no name, and qemu-io on
# the node (libvirt-1-format) asks for write permission that the guest's device does not share
# ("Permission conflict on node"). Beware: virsh exits 0 even when the monitor reports an error.
set -eu
[ $# = 4 ] || { echo "usage: $0 URI DOMAIN TARGET_DEV QEMU_IO_COMMAND" >&2; exit 2; }
uri=$1 dom=$2 dev=$3 cmd=$4
case "$cmd" in *'"'*) echo "$0: the qemu-io command must not contain double quotes" >&2; exit 2 ;; esac

xml=$(timeout -k 2 60 virsh -q -c "$uri" dumpxml "$dom") || exit 1
# "ALIAS BUS" of the <disk> whose target is DEV (the live XML has <alias name='virtio-disk0'/>)
found=$(printf '%s\n' "$xml" | awk -v dev="$dev" '
	/<disk[ >]/ { in_disk = 1; target = ""; bus = ""; alias = "" }
	in_disk && /<target / {
		if (match($0, /dev=\x27[^\x27]*\x27/)) target = substr($0, RSTART + 5, RLENGTH - 6)
		if (match($0, /bus=\x27[^\x27]*\x27/)) bus = substr($0, RSTART + 5, RLENGTH - 6)
	}
	in_disk && /<alias / { if (match($0, /name=\x27[^\x27]*\x27/)) alias = substr($0, RSTART + 6, RLENGTH - 7) }
	/<\/disk>/ { if (in_disk && target == dev && alias != "") { print alias, bus; exit } in_disk = 0 }')
[ -n "$found" ] || { echo "$0: domain $dom has no running disk $dev" >&2; exit 1; }
alias=${found% *} bus=${found#* }
path="/machine/peripheral/$alias"
[ "$bus" != virtio ] || path="$path/virtio-backend"	# virtio-blk-pci holds its backend in a child

out=$(timeout -k 2 120 virsh -q -c "$uri" qemu-monitor-command --hmp "$dom" "qemu-io -d $path \"$cmd\"") || exit 1
if [ -n "$(printf '%s' "$out" | tr -d '[:space:]')" ]; then
	echo "$0: qemu-io on $dom $dev ($path): $out" >&2
	exit 1
fi
