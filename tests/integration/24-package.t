#!/bin/bash
# The Debian package, built from this tree (make deb) and installed on this machine: lintian
# finds no error or warning; the unit is hardened ("OK" from systemd-analyze security) and
# verifies; dpkg -i lays down the programs, unit, commented conffiles, man pages and completion,
# makes user ferry, its 0700 state folder and a 0600 bootstrap token; the installed ferryd starts
# from the installed configuration in a sandbox made from the unit's settings (user, seccomp
# filters, read-only system, private /tmp and /dev), tells a notify socket READY=1, reloads on
# SIGHUP, and the installed CLI reaches it with nothing but /etc/ferry/ferry.conf; dpkg -r
# keeps configuration and state, dpkg -P removes both and leaves
# the user (Debian's way with system users); make install/uninstall into a DESTDIR leave no file.
# Needs root and a machine the package may be installed on; it purges the package however it
# ends, and removes the user ferry if it made it.
. "$(dirname "$0")/lib.sh"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
if [ "$(id -u)" != 0 ]; then
	echo "1..0 # SKIP needs root (dpkg -i, user ferry)"
	exit 0
fi
for tool in dpkg-buildpackage dh lintian scdoc systemd-analyze setpriv unshare nsenter man; do
	if ! command -v "$tool" >/dev/null; then
		echo "1..0 # SKIP $tool is missing: sh tests/install-deps.sh"
		exit 0
	fi
done
if ! /usr/bin/python3 -c 'import seccomp' 2>/dev/null; then
	echo "1..0 # SKIP python3-seccomp is missing: sh tests/install-deps.sh"
	exit 0
fi
# Someone's real installation, or state that the package's purge would delete: not ours to touch.
if dpkg-query -W -f='${Status}' ferry 2>/dev/null | grep -q "install\|config-files"; then
	echo "1..0 # SKIP a ferry package is installed here already (dpkg -P ferry first)"
	exit 0
fi
for path in /var/lib/ferry /etc/ferry; do
	if [ -e "$path" ]; then
		echo "1..0 # SKIP $path exists and is not this test's: the package's purge would remove it"
		exit 0
	fi
done

plan 75

VERSION=$(sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' "$ROOT/packaging/debian/changelog")
ARCH=$(dpkg --print-architecture)
DEB="$ROOT/build/deb/ferry_${VERSION}_${ARCH}.deb"
UNIT=/lib/systemd/system/ferryd.service
NOTIFY_DIR=""
user_made=0
getent passwd ferry >/dev/null || user_made=1
PACKAGED_PID=""

package_cleanup() {
	if [ -n "$PACKAGED_PID" ]; then kill -9 "$PACKAGED_PID" 2>/dev/null; wait "$PACKAGED_PID" 2>/dev/null; fi
	if dpkg-query -W -f='${Status}' ferry 2>/dev/null | grep -q "install\|config-files"; then
		dpkg -P ferry > "$TEST_DIR/cleanup-purge.log" 2>&1 || diag "cleanup: dpkg -P ferry failed"
	fi
	[ -z "$NOTIFY_DIR" ] || rm -rf "$NOTIFY_DIR"
	if [ "$user_made" = 1 ] && getent passwd ferry >/dev/null; then
		userdel ferry 2>/dev/null
		getent group ferry >/dev/null && groupdel ferry 2>/dev/null
	fi
	cleanup
}
trap package_cleanup EXIT

# The CLI below must see only the package's configuration: no flags, no environment, no file of
# root's own.
unset FERRY_DAEMON FERRY_TOKEN_FILE FERRY_CACERT FERRY_CONFIG CEPH_CONF XDG_CONFIG_HOME
export HOME="$TEST_DIR/home"
mkdir -p "$HOME"

# --- the package ---
make -C "$ROOT" deb > "$TEST_DIR/deb.log" 2>&1
ok $? "make deb builds the package"
if [ ! -f "$DEB" ]; then
	tail -n 25 "$TEST_DIR/deb.log" | sed 's/^/#   /'
	echo "Bail out! no package to test"
	exit 1
fi
[ -f "$DEB" ] && [ -f "${DEB%.deb}.buildinfo" ] && [ -f "${DEB%.deb}.changes" ]
ok $? "  build/deb/ferry_${VERSION}_${ARCH}.deb with its .buildinfo and .changes"
is "$(dpkg-deb -f "$DEB" Version)" "$VERSION" "  its version is the changelog's"

lintian "${DEB%.deb}.changes" > "$TEST_DIR/lintian.out" 2>&1
grep -E '^[EW]: ' "$TEST_DIR/lintian.out" > "$TEST_DIR/lintian.bad"
ok $(test ! -s "$TEST_DIR/lintian.bad"; echo $?) \
	"lintian reports no error and no warning ($(grep -cE '^[IPX]: ' "$TEST_DIR/lintian.out") info or pedantic tags)"
sed 's/^/#   /' "$TEST_DIR/lintian.bad"

security=$(systemd-analyze security --offline=true "$ROOT/packaging/systemd/ferryd.service" 2>&1 |
	sed -n 's/.*Overall exposure level for ferryd.service: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p')
score=${security% *}
awk -v s="${score:-99}" 'BEGIN { exit !(s <= 3.0) }'
ok $? "systemd-analyze security rates the unit ${security:-(no score)}: 3.0 or lower"

# Runtime dependencies this machine lacks (it builds ferry, so usually none).
missing=""
for dependency in $(dpkg-deb -f "$DEB" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/ //g'); do
	dpkg-query -W -f='${Status}' "$dependency" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $dependency"
done
if [ -n "$missing" ]; then
	diag "installing the package's dependencies:$missing"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing \
		> "$TEST_DIR/apt.log" 2>&1
fi
dpkg -i "$DEB" > "$TEST_DIR/dpkg-i.log" 2>&1
ok $? "dpkg -i installs it (without systemd as PID 1)"
sed 's/^/#   /' "$TEST_DIR/dpkg-i.log" | grep -iv "^#   \(selecting\|(reading\|preparing\|unpacking\|setting up\|processing\)" | head -n 20

# mode owner group of a path, as stat shows them
perms() { stat -c '%a %U %G' "$1" 2>/dev/null || echo missing; }
is "$(perms /usr/sbin/ferryd)" "755 root root" "/usr/sbin/ferryd"
is "$(perms /usr/bin/ferry)" "755 root root" "/usr/bin/ferry"
is "$(perms $UNIT)" "644 root root" "$UNIT"
cmp -s "$UNIT" "$ROOT/packaging/systemd/ferryd.service"
ok $? "  is packaging/systemd/ferryd.service"
is "$(perms /etc/ferry/ferryd.conf)" "644 root root" "/etc/ferry/ferryd.conf"
is "$(perms /etc/ferry/ferry.conf)" "644 root root" "/etc/ferry/ferry.conf"
is "$(dpkg-query -W -f='${Conffiles}' ferry | awk '{print $1}' | sort | tr '\n' ' ')" \
	"/etc/ferry/ferry.conf /etc/ferry/ferryd.conf " "  both are conffiles"
grep -q '^; tls-cert = /etc/ferry/cert.pem' /etc/ferry/ferryd.conf &&
	grep -q '^; conf = /etc/ceph/ceph.conf' /etc/ferry/ferryd.conf &&
	grep -q '^listen = 0.0.0.0:7443' /etc/ferry/ferryd.conf
ok $? "  ferryd.conf is commented: defaults and examples as ; lines"
is "$(sed -n 's/^daemon *= *//p' /etc/ferry/ferry.conf)" "https://localhost:7443" \
	"  ferry.conf names this host's ferryd"
for page in man1/ferry.1 man5/ferry.conf.5 man5/ferryd.conf.5 man8/ferryd.8; do
	is "$(perms /usr/share/man/$page.gz)" "644 root root" "man page /usr/share/man/$page.gz"
done
man -w ferryd.8 > /dev/null 2>&1
ok $? "  man finds ferryd(8)"
is "$(perms /usr/share/bash-completion/completions/ferry)" "644 root root" "bash completion for ferry"
if [ -f "$ROOT/packaging/prometheus/ferry-alerts.yml" ]; then
	cmp -s /usr/share/ferry/ferry-alerts.yml "$ROOT/packaging/prometheus/ferry-alerts.yml"
	ok $? "the Prometheus alert rules: /usr/share/ferry/ferry-alerts.yml"
else
	ok 0 "# SKIP no packaging/prometheus/ferry-alerts.yml to install"
fi
if [ -f /usr/share/bash-completion/bash_completion ]; then
	completed=$(bash -c 'source /usr/share/bash-completion/bash_completion
		source /usr/share/bash-completion/completions/ferry
		COMP_WORDS=(ferry --json token ""); COMP_CWORD=3; COMP_LINE="ferry --json token "
		COMP_POINT=${#COMP_LINE}; _ferry ferry "" token; echo "${COMPREPLY[*]}"' 2>&1)
	is "$completed" "create list revoke" "  it completes ferry --json token <TAB>"
else
	ok 0 "# SKIP bash-completion is not installed"
fi

# --- the user, the state folder, the bootstrap token ---
getent passwd ferry > "$TEST_DIR/passwd"
ok $? "user ferry exists"
IFS=: read -r _ _ ferry_uid ferry_gid _ ferry_home ferry_shell < "$TEST_DIR/passwd"
[ "${ferry_uid:-1000}" -lt 1000 ]
ok $? "  a system user (uid $ferry_uid)"
is "$ferry_home $ferry_shell" "/var/lib/ferry /usr/sbin/nologin" "  home /var/lib/ferry, no login"
is "$(getent group ferry | cut -d: -f3)" "$ferry_gid" "  group ferry is its group"
if getent group libvirt >/dev/null; then
	id -nG ferry | tr ' ' '\n' | grep -qx libvirt
	ok $? "  and it is in group libvirt"
else
	ok 0 "# SKIP there is no group libvirt here to join"
fi
is "$(perms /var/lib/ferry)" "700 ferry ferry" "/var/lib/ferry: 0700, ferry's"
is "$(perms /var/lib/ferry/bootstrap.token)" "600 ferry ferry" "/var/lib/ferry/bootstrap.token: 0600, ferry's"
grep -Eqx '[0-9a-f]{64}' /var/lib/ferry/bootstrap.token
ok $? "  32 random bytes in hex"
token_before=$(cat /var/lib/ferry/bootstrap.token)

# --- the unit against the installed files ---
systemd-analyze verify "$UNIT" > "$TEST_DIR/verify.out" 2>&1
ok $? "systemd-analyze verify $UNIT exits 0"
is "$(cat "$TEST_DIR/verify.out")" "" "  and says nothing"

# --- the installed programs ---
is "$(/usr/sbin/ferryd --version)" "ferryd $VERSION" "ferryd --version"
is "$(/usr/bin/ferry --version)" "ferry $VERSION" "ferry --version"
PORT=$(free_port)
setpriv --reuid ferry --regid ferry --init-groups /usr/sbin/ferryd --config /etc/ferry/ferryd.conf \
	--listen "127.0.0.1:$PORT" --check-config > "$TEST_DIR/check.out" 2>&1
ok $? "ferryd --check-config passes the installed configuration as user ferry ($(tail -n 1 "$TEST_DIR/check.out"))"

# ferryd as its unit runs it, as far as a process can have that without systemd as PID 1: the
# unit's user, limits, capabilities and seccomp filters (unit-sandbox.py reads them from the
# installed unit), in a mount namespace that is ProtectSystem=strict with the state folder
# writable, PrivateTmp=, PrivateDevices=, ProtectHome=, ProtectKernelTunables=, and a UTS
# namespace (ProtectHostname=). systemd's notify socket is played by a datagram socket in /run.
cat > "$TEST_DIR/unit-sandbox.py" <<'EOF'
# unit-sandbox.py UNIT COMMAND...: runs COMMAND with those settings of the systemd unit that a
# process can give itself, made the way systemd 252 makes them: User=, Group= (and the user's
# groups), UMask=, LimitNOFILE=, an empty CapabilityBoundingSet=, NoNewPrivileges=, and as
# seccomp filters SystemCallFilter= (with SystemCallErrorNumber=), RestrictAddressFamilies=,
# MemoryDenyWriteExecute= and RestrictNamespaces=. The caller gives the mount namespace.
import ctypes, errno, grp, os, pwd, resource, socket, subprocess, sys
import seccomp

unit, command = sys.argv[1], sys.argv[2:]
settings = {}
for line in open(unit):
    line = line.strip()
    if line and line[0] not in "#;[" and "=" in line:
        key, value = line.split("=", 1)
        settings.setdefault(key.strip(), []).append(value.strip())

def last(key, default=""):
    return settings.get(key, [default])[-1]

def yes(key):
    return last(key).lower() in ("yes", "true", "1", "on")

# @group -> its members, nested groups expanded.
groups, current = {}, None
listing = subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True, text=True,
                         check=True).stdout
for line in listing.splitlines():
    if line.startswith("@"):
        current = groups.setdefault(line.strip(), [])
    elif line.startswith("    ") and not line.strip().startswith("#") and current is not None:
        current.append(line.strip())

def expand(names):
    out = set()
    for name in names:
        if name.startswith("@"):
            out |= expand(groups[name])
        else:
            out.add(name)
    return out

allowed = None
for value in settings.get("SystemCallFilter", []):
    deny = value.startswith("~")
    names = expand(value.lstrip("~").split())
    if allowed is None:
        if deny:
            sys.exit("unit-sandbox: a deny-list first is not emulated")
        allowed = names | expand(["@default"])  # as systemd adds to an allow-list
    elif deny:
        allowed -= names
    else:
        allowed |= names

user = pwd.getpwnam(last("User", "root"))
gid = grp.getgrnam(last("Group")).gr_gid if last("Group") else user.pw_gid
libc = ctypes.CDLL(None, use_errno=True)
if last("CapabilityBoundingSet", None) == "":
    for cap in range(int(open("/proc/sys/kernel/cap_last_cap").read()) + 1):
        libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP
if last("LimitNOFILE"):
    # at most this machine's hard limit (a container's may be lower than the unit asks)
    limit = min(int(last("LimitNOFILE")), resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
os.initgroups(user.pw_name, gid)
os.setresgid(gid, gid, gid)
os.setresuid(user.pw_uid, user.pw_uid, user.pw_uid)
if last("UMask"):
    os.umask(int(last("UMask"), 8))
if yes("NoNewPrivileges") and libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
    sys.exit("PR_SET_NO_NEW_PRIVS failed")

# Stacked filters: the kernel takes the most restrictive answer of all. The allow-list goes
# last, since seccomp() itself is not in it.
filters = []
families = last("RestrictAddressFamilies").split()
if families:
    keep = {getattr(socket, name) for name in families}
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for family in range(64):
        if family not in keep:
            f.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.EQ, family))
    f.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", seccomp.Arg(0, seccomp.GE, 64))
    filters.append(f)
if yes("MemoryDenyWriteExecute"):
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    write_exec = 0x2 | 0x4  # PROT_WRITE | PROT_EXEC
    f.add_rule(seccomp.ERRNO(errno.EPERM), "mmap", seccomp.Arg(2, seccomp.MASKED_EQ, write_exec, write_exec))
    for call in ("mprotect", "pkey_mprotect"):
        f.add_rule(seccomp.ERRNO(errno.EPERM), call, seccomp.Arg(2, seccomp.MASKED_EQ, 0x4, 0x4))
    f.add_rule(seccomp.ERRNO(errno.EPERM), "shmat", seccomp.Arg(2, seccomp.MASKED_EQ, 0o100000, 0o100000))
    filters.append(f)
if yes("RestrictNamespaces"):
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    f.add_rule(seccomp.ERRNO(errno.EPERM), "setns")
    f.add_rule(seccomp.ERRNO(errno.EPERM), "unshare", seccomp.Arg(0, seccomp.NE, 0))
    # CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWTIME
    for bit in (0x20000, 0x2000000, 0x4000000, 0x8000000, 0x10000000, 0x20000000, 0x40000000, 0x80):
        f.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, bit, bit))
    f.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")  # its flags cannot be inspected
    filters.append(f)
if allowed is not None:
    number = getattr(errno, last("SystemCallErrorNumber", "EPERM"))
    f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(number))
    for name in sorted(allowed):
        try:
            f.add_rule(seccomp.ALLOW, name)
        except (RuntimeError, ValueError, OSError):
            pass  # not a system call of this architecture
    filters.append(f)
for f in filters:
    f.load()
environment = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": user.pw_dir, "USER": user.pw_name, "LOGNAME": user.pw_name,
               "SHELL": user.pw_shell, "LANG": "C.UTF-8"}
if os.environ.get("NOTIFY_SOCKET"):
    environment["NOTIFY_SOCKET"] = os.environ["NOTIFY_SOCKET"]
os.execve(command[0], command, environment)
EOF
cat > "$TEST_DIR/unit-mounts.sh" <<'EOF'
# unit-mounts.sh TEST_DIR UNIT COMMAND...: the unit's file system view, then unit-sandbox.py.
set -e
test_dir=$1
shift
helper=$(cat "$test_dir/unit-sandbox.py")
# PrivateDevices=yes: a /dev of its own, with the pseudo-devices only
dev="$test_dir/dev"
mkdir -p "$dev"
mount -t tmpfs -o mode=0755,nosuid tmpfs "$dev"
for node in null zero full random urandom tty; do
	: > "$dev/$node"
	mount --bind "/dev/$node" "$dev/$node"
done
mkdir "$dev/shm" "$dev/pts"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$dev/shm"
for link in fd:/proc/self/fd stdin:/proc/self/fd/0 stdout:/proc/self/fd/1 stderr:/proc/self/fd/2; do
	ln -s "${link#*:}" "$dev/${link%%:*}"
done
mount --move "$dev" /dev
# ProtectSystem=strict (StateDirectory= stays writable), ProtectKernelTunables=,
# ProtectControlGroups=: every other mount read-only but /dev and /proc (its /proc/sys too)
mount --bind /var/lib/ferry /var/lib/ferry
mount --bind /proc/sys /proc/sys
awk '$6 !~ /^ro(,|$)/ { print $5 }' /proc/self/mountinfo | while read -r point; do
	case $point in /dev | /dev/* | /proc | /var/lib/ferry) continue ;; esac
	mount -o remount,bind,ro "$point" || echo "unit-mounts: $point stays writable" >&2
done
# PrivateTmp=, ProtectHome=
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /var/tmp
for home in /home /root /run/user; do
	[ ! -d "$home" ] || mount -t tmpfs -o ro,mode=0755 tmpfs "$home"
done
exec /usr/bin/python3 -c "$helper" "$@"
EOF
# Outside /tmp, which PrivateTmp= hides; on the read-only root, as /run/systemd/notify is.
NOTIFY_DIR=$(mktemp -d /run/ferry-package-test.XXXXXX)
chmod 755 "$NOTIFY_DIR"
/usr/bin/python3 -c 'import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        log.write(s.recv(4096).decode(errors="replace").replace("\n", " ") + "\n")
' "$NOTIFY_DIR/notify" "$TEST_DIR/notify.log" &
DAEMON_PIDS="$DAEMON_PIDS $!"
wait_until 5 test -S "$NOTIFY_DIR/notify"
# notified TEXT [SECONDS]: until a notify message starting with TEXT arrived after the mark
notify_mark=0
notify_since_mark() { tail -n +$((notify_mark + 1)) "$TEST_DIR/notify.log" 2>/dev/null | grep -q "^$1"; }
notified() { wait_until "${2:-10}" notify_since_mark "$1"; }
NOTIFY_SOCKET="$NOTIFY_DIR/notify" unshare --mount --uts --propagation private \
	/bin/sh "$TEST_DIR/unit-mounts.sh" "$TEST_DIR" "$UNIT" \
	/usr/sbin/ferryd --config /etc/ferry/ferryd.conf --listen "127.0.0.1:$PORT" \
	2> "$TEST_DIR/ferryd.log" &
PACKAGED_PID=$!
notified READY=1
ok $? "the installed ferryd, sandboxed as its unit says, tells systemd READY=1"
[ -s /var/lib/ferry/ferryd.url ] || sed 's/^/#   /' "$TEST_DIR/ferryd.log"
is "$(cat /var/lib/ferry/ferryd.url 2>/dev/null)" "https://127.0.0.1:$PORT" "  having written /var/lib/ferry/ferryd.url"
grep -q "^STATUS=listening on https://127.0.0.1:$PORT" "$TEST_DIR/notify.log"
ok $? "  and a STATUS= line ($(grep -m1 '^STATUS=' "$TEST_DIR/notify.log"))"
is "$(awk '/^(Uid|Gid):/ { print $2 } /^(NoNewPrivs|Seccomp|CapBnd|CapEff):/ { print $2 }' \
	"/proc/$PACKAGED_PID/status" 2>/dev/null | tr '\n' ' ')" \
	"$ferry_uid $ferry_gid 0000000000000000 0000000000000000 1 2 " \
	"  it runs as ferry, without capabilities, no new privileges, under seccomp filters"
nsenter -t "$PACKAGED_PID" -m sh -c '! touch /usr/ferry-test 2>/dev/null && ! touch /etc/ferry/x 2>/dev/null &&
	touch /var/lib/ferry/x && rm /var/lib/ferry/x && [ -z "$(ls -A /tmp)" ] && [ ! -e /dev/vda ] && [ ! -e /dev/kmsg ]' 2>/dev/null
ok $? "  in a mount namespace where only /var/lib/ferry is writable, /tmp is its own, /dev holds no disk"
is "$(perms /var/lib/ferry/tls/key.pem)" "600 ferry ferry" "  its self-signed key is ferry's alone"
is "$(perms /var/lib/ferry/catalog.db)" "600 ferry ferry" "  so is its catalog"

# The CLI: the installed /etc/ferry/ferry.conf names port 7443; this ferryd listens elsewhere.
ferry config > "$TEST_DIR/config.out" 2>&1
grep -Eq '^daemon +=.*https://localhost:7443 +/etc/ferry/ferry.conf$' "$TEST_DIR/config.out"
ok $? "ferry config (no flags): the daemon comes from /etc/ferry/ferry.conf"
grep -Eq '^cacert +=.*/var/lib/ferry/tls/cert.pem +/etc/ferry/ferry.conf$' "$TEST_DIR/config.out" &&
	grep -Eq '^token-file +=.*/var/lib/ferry/bootstrap.token +/etc/ferry/ferry.conf$' "$TEST_DIR/config.out"
ok $? "  and so do the token file and the CA certificate"
sed -i "s|^daemon = https://localhost:7443$|daemon = https://localhost:$PORT|" /etc/ferry/ferry.conf
status_out=$(ferry status 2>&1)
ok $? "ferry status, with no flags and no environment, reaches the installed ferryd"
printf '%s\n' "$status_out" | grep -q '(no volumes)'
ok $? "  and lists no volumes yet"
head -c 3145728 /dev/urandom > "$TEST_DIR/disk.img"
copy_out=$(ferry copy --json "$TEST_DIR/disk.img" disk1 2>&1)
ok $? "ferry copy with no flags sends a volume there"
is "$(perms /var/lib/ferry/volumes/disk1)" "600 ferry ferry" "  ferryd wrote it into /var/lib/ferry/volumes as ferry"
cmp -s "$TEST_DIR/disk.img" /var/lib/ferry/volumes/disk1
ok $? "  byte for byte"
# MemoryDenyWriteExecute=yes refuses a mapping that is writable and executable, or anonymous
# memory made executable (libvirt's GLib asks PCRE2 for a JIT, and falls back): none is held.
awk '($2 ~ /w/ && $2 ~ /x/) || ($2 ~ /x/ && $6 == "")' "/proc/$PACKAGED_PID/maps" > "$TEST_DIR/wx-maps"
ok $(test ! -s "$TEST_DIR/wx-maps"; echo $?) "  it holds no writable-and-executable memory (MemoryDenyWriteExecute=yes)"
sed 's/^/#   /' "$TEST_DIR/wx-maps"
ferry token create viewer1 --role viewer > "$TEST_DIR/viewer1.token" 2>/dev/null
ok $? "the bootstrap token is the admin's: ferry token create works"
notify_mark=$(grep -c '' "$TEST_DIR/notify.log")
kill -HUP "$PACKAGED_PID"
notified RELOADING=1 && notified READY=1
ok $? "SIGHUP (ExecReload): RELOADING=1, then READY=1"
kill -0 "$PACKAGED_PID" 2>/dev/null && ferry status --json > /dev/null 2>&1
ok $? "  and ferryd goes on answering"
kill -TERM "$PACKAGED_PID"
wait "$PACKAGED_PID"
ok $? "SIGTERM stops it cleanly (exit 0)"
PACKAGED_PID=""
grep -q '^STOPPING=1' "$TEST_DIR/notify.log"
ok $? "  saying STOPPING=1"
[ ! -e /var/lib/ferry/ferryd.url ]
ok $? "  and ferryd.url is gone"
if grep -q 'unit-mounts:\|Traceback' "$TEST_DIR/ferryd.log"; then
	diag "the sandbox said:"; grep 'unit-mounts:\|Traceback' -A3 "$TEST_DIR/ferryd.log" | sed 's/^/#   /'
fi

# --- remove, then purge ---
dpkg -r ferry > "$TEST_DIR/dpkg-r.log" 2>&1
ok $? "dpkg -r ferry"
[ ! -e /usr/sbin/ferryd ] && [ ! -e /usr/bin/ferry ] && [ ! -e "$UNIT" ] &&
	[ ! -e /usr/share/man/man8/ferryd.8.gz ]
ok $? "  removes the programs, the unit and the man pages"
[ -f /etc/ferry/ferryd.conf ] && [ -f /etc/ferry/ferry.conf ]
ok $? "  keeps the configuration"
is "$(cat /var/lib/ferry/bootstrap.token 2>/dev/null)" "$token_before" "  keeps the bootstrap token"
[ -f /var/lib/ferry/catalog.db ] && [ -f /var/lib/ferry/volumes/disk1 ]
ok $? "  keeps the catalog and the received volume"
is "$(dpkg-query -W -f='${db:Status-Abbrev}' ferry 2>/dev/null | tr -d ' ')" "rc" "  the package is in state config-files"
dpkg -P ferry > "$TEST_DIR/dpkg-p.log" 2>&1
ok $? "dpkg -P ferry"
[ ! -e /etc/ferry ]
ok $? "  removes /etc/ferry"
[ ! -e /var/lib/ferry ]
ok $? "  removes /var/lib/ferry"
getent passwd ferry >/dev/null
ok $? "  leaves user ferry, as Debian does for system users (this test removes it if it made it)"
! dpkg-query -W -f='${Status}' ferry 2>/dev/null | grep -q "install\|config-files"
ok $? "  the package is gone from dpkg's database"

# --- make install / make uninstall ---
# The programs under test (FERRY_BIN's, built already), not a new build: BUILD is their folder,
# and -o keeps make from relinking them (the layout is what this tests).
build=${FERRY_BIN%/bin}
build=${build#"$ROOT"/}
DEST="$TEST_DIR/root"
install_args=(BUILD="$build" DESTDIR="$DEST" PREFIX=/usr -o "$build/bin/ferryd" -o "$build/bin/ferry")
make -C "$ROOT" install "${install_args[@]}" > "$TEST_DIR/install.log" 2>&1
ok $? "make install DESTDIR=... PREFIX=/usr"
alerts=""
[ ! -f "$ROOT/packaging/prometheus/ferry-alerts.yml" ] || alerts="./usr/share/ferry/ferry-alerts.yml "
is "$(cd "$DEST" && find . -type f | sort | tr '\n' ' ')" \
	"./etc/ferry/ferry.conf ./etc/ferry/ferryd.conf ./usr/bin/ferry ./usr/sbin/ferryd ./usr/share/bash-completion/completions/ferry ${alerts}./usr/share/man/man1/ferry.1 ./usr/share/man/man5/ferry.conf.5 ./usr/share/man/man5/ferryd.conf.5 ./usr/share/man/man8/ferryd.8 " \
	"  installs the programs, configuration, man pages, completion${alerts:+ and the alert rules}"
is "$(perms "$DEST/usr/sbin/ferryd") $(perms "$DEST/etc/ferry/ferry.conf")" "755 root root 644 root root" \
	"  with modes 0755 and 0644"
echo "; edited" >> "$DEST/etc/ferry/ferry.conf"
make -C "$ROOT" install "${install_args[@]}" > "$TEST_DIR/install2.log" 2>&1
tail -n 1 "$DEST/etc/ferry/ferry.conf" | grep -q '^; edited$'
ok $? "  a second install keeps a configuration that is there"
make -C "$ROOT" uninstall DESTDIR="$DEST" PREFIX=/usr > "$TEST_DIR/uninstall.log" 2>&1
ok $? "make uninstall DESTDIR=... PREFIX=/usr"
is "$(cd "$DEST" && find . -type f | tr '\n' ' ')" "./etc/ferry/ferry.conf " \
	"  removes everything but the edited configuration"
rm "$DEST/etc/ferry/ferry.conf"
make -C "$ROOT" uninstall DESTDIR="$DEST" PREFIX=/usr > "$TEST_DIR/uninstall2.log" 2>&1
is "$(cd "$DEST" && find . ! -type d | wc -l) $(test -e "$DEST/etc/ferry" && echo /etc/ferry)" "0 " \
	"  and then leaves no file, and no /etc/ferry"
