#!/bin/bash
# Prints the libvirt domain XML of the test guest (see tick.S) on stdout.
#
#   domain.sh NAME DISK SERIAL_LOG
#     DISK: a path to a raw image (a virtio disk vda on that file), or a whole <disk>...</disk>
#           element (anything starting with '<'), e.g. an RBD disk
#     SERIAL_LOG: the file COM1 is appended to ("tick N" lines)
#
# The choices are those of libvirt-testbed.md: type='qemu' (TCG: KVM guests hang in SeaBIOS on
# this kind of machine), a CPU model every host has (qemu64, fallback forbidden, so that source
# and destination agree), cache='none' (libvirt refuses to migrate a local disk with caching),
# no network and no balloon (nothing the guest does not need), and a serial log opened in append
# mode, because source and destination QEMU write the same file one after the other.
set -eu
[ $# = 3 ] || { echo "usage: $0 NAME DISK_IMAGE|DISK_XML SERIAL_LOG" >&2; exit 2; }
name=$1 disk=$2 serial=$3

# xml_escape TEXT: TEXT for an XML attribute value.
xml_escape() {
	local s=$1
	s=${s//&/&amp;} s=${s//</&lt;} s=${s//>/&gt;} s=${s//\"/&quot;} s=${s//\'/&apos;}
	printf '%s' "$s"
}

case "$disk" in
'<'*) ;;
*)
	disk="<disk type='file' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source file='$(xml_escape "$disk")'/>
      <target dev='vda' bus='virtio'/>
    </disk>"
	;;
esac

cat <<XML
<domain type='qemu'>
  <name>$(xml_escape "$name")</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='hd'/>
  </os>
  <cpu mode='custom' match='exact'>
    <model fallback='forbid'>qemu64</model>
  </cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    $disk
    <serial type='file'>
      <source path='$(xml_escape "$serial")' append='on'/>
      <target port='0'/>
    </serial>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
XML
