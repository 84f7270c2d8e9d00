#!/bin/bash
# Builds the test guest's disk: a raw image whose first sector is tick.S (a boot sector that prints
# "tick N" on COM1 once a second), the rest zeros (a sparse file).
#
#   build.sh OUT.img [SIZE_MIB [DIRTY_PAGES]]
#       SIZE_MIB default 16; DIRTY_PAGES (default 0) pages of guest memory changed per timer
#       tick (18.2 Hz): a guest with a steady dirty rate. Prints nothing, exit 0 on success.
#
# Needs only binutils (as, ld, objcopy). The image is written under a temporary name and renamed,
# so a reader never sees half of it.
set -eu
[ $# -ge 1 ] && [ $# -le 3 ] || { echo "usage: $0 OUT.img [SIZE_MIB [DIRTY_PAGES]]" >&2; exit 2; }
out=$1 size=${2:-16} dirty=${3:-0}
case "$dirty" in ''|*[!0-9]*) echo "$0: DIRTY_PAGES must be a number" >&2; exit 2 ;; esac
case "$size" in ''|*[!0-9]*|0) echo "$0: SIZE_MIB must be a positive number of MiB" >&2; exit 2 ;; esac
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ferry-guest.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# 32-bit objects: ld relocates the 16-bit addresses (R_386_16) to the BIOS's load address.
cpp -P -DDIRTY_PAGES="$dirty" "$here/tick.S" > "$tmp/tick.s"
as --32 -o "$tmp/tick.o" "$tmp/tick.s"
ld -m elf_i386 -Ttext=0x7c00 -e start -o "$tmp/tick.elf" "$tmp/tick.o"
objcopy -O binary -j .text "$tmp/tick.elf" "$tmp/tick.bin"
bytes=$(stat -c %s "$tmp/tick.bin")
[ "$bytes" = 512 ] || { echo "$0: the boot sector has $bytes bytes, not 512" >&2; exit 1; }

cp "$tmp/tick.bin" "$out.tmp"
truncate -s $((size * 1048576)) "$out.tmp"
mv -f "$out.tmp" "$out"
