#!/bin/bash
# A throw-away privileged libvirtd with the QEMU driver (TCG guests), kept in one folder, for
# ferry's tests of the cutover (migration and failover between two sites). Two of them run side by
# side on one machine and migrate guests between each other. Recipe: libvirt-testbed.md
# (libvirt 9.0, QEMU 7.2, Debian 12, PID 1 not systemd).
#
#   libvirt-daemon.sh start DIR INDEX [SEED_DIR]
#                   starts libvirtd in DIR and prints its URI on stdout when it answers:
#                   qemu+unix:///system?socket=DIR/sock/libvirt-sock
#                   INDEX (1..16) makes the daemon a distinct host: host_uuid ...-0000000000INDEX
#                   and migration ports 49152+32*(INDEX-1) .. +31. SEED_DIR: another daemon's
#                   folder whose QEMU capability cache is copied first (a start takes ~0.15 s
#                   instead of ~1.8 s). Domains defined in an earlier run of DIR are kept.
#   libvirt-daemon.sh stop DIR      destroys the running domains (QEMU outlives libvirtd), SIGTERM
#                   to libvirtd, kill -9 after ~10 s; then nothing of DIR's daemon runs any more
#   libvirt-daemon.sh status DIR    exit 0 when the daemon answers
#   libvirt-daemon.sh uri DIR       prints the URI (whether or not the daemon runs)
#
# Each daemon lives in its own mount namespace, where DIR/etc, run, lib, log and cache are bind
# mounted over /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/log/libvirt, /var/cache/libvirt:
# a privileged libvirtd has those paths built in, and two daemons sharing them fail. Its sockets
# are in DIR/sock, its log is DIR/log/libvirtd.log, the guests' QEMU logs DIR/log/qemu/NAME.log.
# Every process of the daemon (libvirtd, its QEMUs) is found again by that namespace's mount of
# DIR/lib, which is how stop leaves nothing behind even when libvirtd died first.
#
# Env: FERRY_LIBVIRT_TIMEOUT (seconds a start may take, default 60),
#      FERRY_LIBVIRT_SUBREAPER=builtin (use the C wrapper even when tini works),
#      FERRY_LIBVIRT_BIND="SRC:DST ..." (start: more bind mounts in the daemon's namespace, a
#      test's way to give one daemon a different host, such as another QEMU build).
set -eu
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
unset LIBVIRT_DEFAULT_URI VIRSH_DEFAULT_CONNECT_URI

usage() {
	echo "usage: $0 start DIR INDEX [SEED_DIR] | stop DIR | status DIR | uri DIR" >&2
	exit 2
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# The five folders of a privileged libvirtd, and the names of DIR's folders bound over them.
SYSTEM_DIRS="etc:/etc/libvirt run:/run/libvirt lib:/var/lib/libvirt log:/var/log/libvirt cache:/var/cache/libvirt"

set_dir() {
	[ -n "${1:-}" ] || usage
	[ "${2:-}" != create ] || mkdir -p "$1" 2>/dev/null || true
	DIR=$(cd "$1" 2>/dev/null && pwd -P) || { echo "$0: no such folder: $1" >&2; exit 1; }
	SOCK="$DIR/sock/libvirt-sock"
	URI="qemu+unix:///system?socket=$SOCK"
	PROBE_URI="qemu:///system?socket=$SOCK"
}

# virsh_t SECONDS ARGS...: virsh on this daemon, never longer than SECONDS.
virsh_t() {
	local t=$1; shift
	timeout -k 2 "$t" virsh -q -c "$PROBE_URI" "$@"
}

# answers: the daemon answers with its QEMU driver. libvirtd's exit status proves nothing (it exits
# 0 when it fails to start), and neither does virsh's alone: read what it says.
answers() {
	local out
	out=$(virsh_t "${1:-10}" version 2>&1) || return 1
	case "$out" in *"Running hypervisor: QEMU"*) return 0 ;; esac
	return 1
}

# state FILE: the state letter in a /proc stat file (R, S, D, Z...), empty when it is gone.
state() {
	local line=""
	{ read -r line < "$1"; } 2>/dev/null || true
	line=${line##*) }
	printf '%s' "${line%% *}"
}
# running PID: one of the process's threads still runs (a zombie is gone: PID 1 here reaps slowly).
running() {
	local t
	for t in /proc/"$1"/task/*/stat; do
		case "$(state "$t")" in Z|X|'') ;; *) return 0 ;; esac
	done
	return 1
}
# ours PID: the recorded wrapper still runs this daemon, not another process that got the PID again.
ours() {
	local cmd
	running "$1" || return 1
	cmd=$(tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null) || return 1
	case "$cmd" in *"libvirtd -f $DIR/etc/libvirtd.conf "*) return 0 ;; esac
	return 1
}
recorded_pid() { cat "$DIR/pid" 2>/dev/null || true; }

# mount_marker: "MAJ:MIN ROOT" of DIR/lib as /proc/PID/mountinfo shows it where it is bind mounted
# over /var/lib/libvirt (ROOT: the path inside its filesystem, which differs from DIR/lib when DIR
# is on a filesystem mounted below /).
mount_marker() {
	local majmin target fsroot rel
	read -r majmin target fsroot < <(findmnt -n -r -o MAJ:MIN,TARGET,FSROOT -T "$DIR/lib") || return 1
	rel=${DIR#"$target"}
	printf '%s %s/%s/lib' "$majmin" "${fsroot%/}" "${rel#/}" | sed 's#//*#/#g'
}
# members: the PIDs of every process in this daemon's mount namespace (libvirtd, its wrapper, the
# QEMUs it started, whoever their parent is now). A zombie has no mountinfo: it is not listed.
members() {
	local marker
	[ -d "$DIR/lib" ] || return 0
	marker=$(mount_marker) || return 0
	grep -s -l -F " $marker /var/lib/libvirt " /proc/[0-9]*/mountinfo |
		sed -n 's#^/proc/\([0-9]*\)/mountinfo$#\1#p' || true
}

# destroy_domains: QEMU outlives libvirtd, so the running guests go first, through libvirt (which
# then cleans up its own state). Whatever does not answer is killed by the sweep in stop_daemon.
destroy_domains() {
	local dom
	answers 10 || return 0
	virsh_t 30 list --name 2>/dev/null | while IFS= read -r dom; do
		[ -n "$dom" ] || continue
		virsh_t 60 destroy "$dom" > /dev/null 2>&1 < /dev/null || echo "$0: virsh destroy $dom failed" >&2
	done
}

# wait_gone SECONDS PID...: 0 once none of them runs.
wait_gone() {
	local n=$(($1 * 10)) pid left; shift
	while :; do
		left=""
		for pid in "$@"; do running "$pid" && left="$left $pid"; done
		[ -n "$left" ] || return 0
		n=$((n - 1))
		[ "$n" -gt 0 ] || return 1
		sleep 0.1
	done
}

stop_daemon() {
	local pid rest rc=0
	pid=$(recorded_pid)
	destroy_domains
	if [ -n "$pid" ] && ours "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true	# the wrapper passes it on to libvirtd
		if ! wait_gone 10 "$pid"; then
			echo "$0: libvirtd of $DIR still running after 10 s: kill -9" >&2
		fi
	fi
	# Whatever is left of the namespace: libvirtd if the wrapper was killed, a QEMU libvirt could
	# not destroy, a QEMU left by a libvirtd that crashed.
	rest=$(members)
	if [ -n "$rest" ]; then
		# shellcheck disable=SC2086
		kill -KILL $rest 2>/dev/null || true
		# shellcheck disable=SC2086
		wait_gone 10 $rest || { echo "$0: could not stop$(printf ' %s' $rest) of $DIR" >&2; rc=1; }
	fi
	[ "$rc" = 0 ] && rm -f "$DIR/pid" "$DIR/libvirtd.pid"
	return "$rc"
}

# fail MESSAGE: the message and the logs' tails on stderr, the daemon stopped, exit 1.
fail() {
	local f
	{
		echo "$0: libvirtd in $DIR failed to start: $1"
		for f in "$DIR/log/libvirtd.out" "$DIR/log/libvirtd.log"; do
			[ -f "$f" ] && [ -s "$f" ] || continue
			echo "--- tail of $f"
			tail -n 25 "$f"
		done
	} >&2
	stop_daemon > /dev/null 2>&1 || true
	exit 1
}

# libvirt-daemon-system would create these; without them the QEMU driver does not load
# ("Failed to parse user 'libvirt-qemu'") even though qemu.conf says user = "root".
ensure_qemu_user() {
	getent passwd libvirt-qemu > /dev/null && getent group libvirt-qemu > /dev/null && return 0
	(
		flock -w 60 9	# two daemons starting at once: useradd refuses a locked /etc/passwd
		getent group libvirt-qemu > /dev/null || groupadd -r libvirt-qemu
		getent passwd libvirt-qemu > /dev/null ||
			useradd -r -g libvirt-qemu -M -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
	) 9> /tmp/ferry-libvirt-user.lock || fail "could not create the libvirt-qemu user and group"
}

# subreaper: the command that runs libvirtd as the child of a child-subreaper. PID 1 here reaps
# exited children slowly (~1.5 s) and libvirt waits for every QEMU and helper it forks: destroy
# takes ~2 s and the capability probe 8 s without one, 0.2 s and 1.8 s with one. Not a PID
# namespace: libvirtd would be its PID 1. tini -s when it works, else a small C program.
subreaper() {
	if [ "${FERRY_LIBVIRT_SUBREAPER:-}" != builtin ] && command -v tini > /dev/null &&
		tini -s -- true > /dev/null 2>&1; then
		SUBREAPER=(tini -s --)
		return 0
	fi
	command -v cc > /dev/null || fail "neither tini (Debian package tini) nor a C compiler to build a subreaper"
	cat > "$DIR/subreaper.c" <<-'EOF'
	/* Runs a command as the child of a child-subreaper that reaps every orphan at once and passes
	 * SIGTERM, SIGINT and SIGHUP on to the command; exits with the command's status. */
	#include <errno.h>
	#include <signal.h>
	#include <stdio.h>
	#include <sys/prctl.h>
	#include <sys/wait.h>
	#include <unistd.h>

	static volatile pid_t child;

	static void forward(int sig) { if (child > 0) kill(child, sig); }

	int main(int argc, char **argv)
	{
		int status;
		pid_t pid;

		if (argc < 2) { fprintf(stderr, "usage: subreaper COMMAND [ARGS...]\n"); return 2; }
		if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) { perror("prctl"); return 1; }
		signal(SIGTERM, forward);
		signal(SIGINT, forward);
		signal(SIGHUP, forward);
		child = fork();
		if (child < 0) { perror("fork"); return 1; }
		if (child == 0) { execvp(argv[1], argv + 1); perror(argv[1]); _exit(127); }
		for (;;) {
			pid = wait(&status);
			if (pid == child)
				return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
			if (pid < 0 && errno == ECHILD)
				return 1;
		}
	}
	EOF
	cc -O2 -o "$DIR/subreaper" "$DIR/subreaper.c" > "$DIR/log/subreaper-build.log" 2>&1 ||
		{ cat "$DIR/log/subreaper-build.log" >&2; fail "could not build $DIR/subreaper"; }
	SUBREAPER=("$DIR/subreaper")
}

write_conf() {
	local etc=$DIR/etc f
	# The bind mount hides the machine's client configuration: libvirtd reads it too.
	for f in libvirt.conf libvirt-admin.conf; do
		if [ -f "/etc/libvirt/$f" ] && [ ! -e "$etc/$f" ]; then cp "/etc/libvirt/$f" "$etc/$f"; fi
	done
	cat > "$etc/libvirtd.conf.tmp" <<-EOF
	# written by ferry's tests/libvirt-daemon.sh; see libvirt-testbed.md
	unix_sock_dir = "$DIR/sock"
	unix_sock_group = "root"
	unix_sock_ro_perms = "0777"
	unix_sock_rw_perms = "0700"
	auth_unix_ro = "none"
	auth_unix_rw = "none"
	host_uuid = "$HOST_UUID"
	log_level = 3
	log_outputs = "3:file:$DIR/log/libvirtd.log"
	EOF
	mv "$etc/libvirtd.conf.tmp" "$etc/libvirtd.conf"
	# migration_address/migration_host = 127.0.0.1 would make libvirtd refuse to start: callers
	# pass the migration URI and listen address with each migration instead.
	cat > "$etc/qemu.conf.tmp" <<-EOF
	# written by ferry's tests/libvirt-daemon.sh; see libvirt-testbed.md
	user = "root"
	group = "root"
	dynamic_ownership = 0
	remember_owner = 0
	security_driver = "none"
	namespaces = [ ]
	cgroup_controllers = [ ]
	stdio_handler = "file"
	lock_manager = "nop"
	migration_port_min = $PORT_MIN
	migration_port_max = $PORT_MAX
	EOF
	mv "$etc/qemu.conf.tmp" "$etc/qemu.conf"
}

# seed_cache SEED_DIR: the sibling's QEMU capabilities, unless DIR has its own. libvirt checks
# each cached file against the binary, itself and the host, and probes again when one is stale.
seed_cache() {
	local from="$1/cache/qemu/capabilities" to="$DIR/cache/qemu/capabilities"
	[ -d "$from" ] || { echo "$0: $1 has no capability cache to seed from; starting cold" >&2; return 0; }
	[ -z "$(ls -A "$to" 2>/dev/null)" ] || return 0
	mkdir -p "$to"
	cp -p "$from"/*.xml "$to"/ 2>/dev/null || true
}

start_daemon() {
	local t0 deadline pid name sysdir f
	t0=$(now)
	deadline=$(( $(date +%s) + ${FERRY_LIBVIRT_TIMEOUT:-60} ))
	command -v libvirtd > /dev/null && command -v virsh > /dev/null ||
		{ echo "$0: needs libvirtd and virsh (tests/install-deps.sh)" >&2; exit 1; }
	command -v qemu-system-x86_64 > /dev/null ||
		{ echo "$0: needs qemu-system-x86_64 (tests/install-deps.sh)" >&2; exit 1; }
	# mountinfo escapes blanks and backslashes, and a socket path has at most 107 bytes.
	case "$DIR" in *[[:space:]\\]*) echo "$0: DIR must not contain blanks or backslashes: $DIR" >&2; exit 2 ;; esac
	[ ${#DIR} -le 80 ] || { echo "$0: DIR is too long for libvirt's socket paths (at most 80 bytes): $DIR" >&2; exit 2; }
	for f in $SYSTEM_DIRS; do
		sysdir=${f#*:}
		case "$DIR/" in "$sysdir"/*) echo "$0: DIR must not be under $sysdir" >&2; exit 2 ;; esac
	done
	pid=$(recorded_pid)
	if [ -n "$pid" ] && ours "$pid"; then
		echo "$0: a libvirtd is already running in $DIR (pid $pid); stop it first" >&2
		exit 1
	fi
	if [ -n "$(members)" ]; then	# a QEMU left by a daemon that died: it would hold its disk
		echo "$0: processes of an earlier libvirtd in $DIR still run ($(members | tr '\n' ' ')); run stop first" >&2
		exit 1
	fi

	HOST_UUID=$(printf '5a1b2c3d-4e5f-4a6b-8c7d-%012d' "$INDEX")
	PORT_MIN=$((49152 + 32 * (INDEX - 1)))
	PORT_MAX=$((PORT_MIN + 31))
	for f in $SYSTEM_DIRS; do
		name=${f%%:*} sysdir=${f#*:}
		mkdir -p "$DIR/$name" "$sysdir"	# the mount point must exist on this machine too
	done
	mkdir -p "$DIR/sock"
	# Sockets and runtime state of an earlier run are stale: libvirtd would refuse a live pid file.
	rm -rf "$DIR/sock"/* "$DIR/libvirtd.pid" "$DIR/pid"
	for f in "$DIR/log/libvirtd.log" "$DIR/log/libvirtd.out"; do
		if [ -f "$f" ]; then mv -f "$f" "$f.old"; fi
	done
	ensure_qemu_user
	write_conf
	[ -z "$SEED" ] || seed_cache "$SEED"
	subreaper
	printf 'INDEX=%s\nHOST_UUID=%s\nMIGRATION_PORT_MIN=%s\nMIGRATION_PORT_MAX=%s\nURI=%s\n' \
		"$INDEX" "$HOST_UUID" "$PORT_MIN" "$PORT_MAX" "$URI" > "$DIR/daemon.env"

	# unshare does not fork and the shell execs: the recorded PID is the subreaper's, inside the
	# namespace. setsid: a signal to the caller's process group does not reach the daemon. The
	# daemon keeps no descriptor of ours or of our caller's (a pipe a test reads, a lock it holds).
	(
		for fd in /proc/$BASHPID/fd/*; do
			fd=${fd##*/}
			[ "$fd" -gt 2 ] && eval "exec $fd>&-"
		done
		exec setsid unshare --mount --propagation private -- sh -c '
			d=$1; shift
			mount --bind "$d/etc" /etc/libvirt &&
			mount --bind "$d/run" /run/libvirt &&
			mount --bind "$d/lib" /var/lib/libvirt &&
			mount --bind "$d/log" /var/log/libvirt &&
			mount --bind "$d/cache" /var/cache/libvirt || exit 1
			for pair in $FERRY_LIBVIRT_BIND; do
				mount --bind "${pair%%:*}" "${pair#*:}" || exit 1
			done
			exec "$@"' sh "$DIR" "${SUBREAPER[@]}" \
			libvirtd -f "$DIR/etc/libvirtd.conf" -p "$DIR/libvirtd.pid"
	) < /dev/null > "$DIR/log/libvirtd.out" 2>&1 &
	pid=$!
	echo "$pid" > "$DIR/pid"

	until answers 10; do
		running "$pid" || fail "libvirtd exited"
		[ "$(date +%s)" -lt "$deadline" ] ||
			fail "no answer from $PROBE_URI after ${FERRY_LIBVIRT_TIMEOUT:-60} s"
		sleep 0.05
	done
	# stop finds the daemon's processes by this mount: make sure it is what members looks for.
	[ -n "$(members)" ] || fail "its processes cannot be found by their mount of $DIR/lib"
	echo "libvirtd $DIR (index $INDEX, pid $pid) ready in $(elapsed "$t0") s" >&2
	echo "$URI"
}

cmd=${1:-}
case "$cmd" in
start)
	[ $# -ge 3 ] && [ $# -le 4 ] || usage
	set_dir "$2" create
	INDEX=$3 SEED=""
	case "$INDEX" in ''|*[!0-9]*) usage ;; esac
	[ "$INDEX" -ge 1 ] && [ "$INDEX" -le 16 ] || { echo "$0: INDEX must be in 1..16" >&2; exit 2; }
	if [ $# = 4 ]; then
		SEED=$(cd "$4" 2>/dev/null && pwd -P) || { echo "$0: no such folder: $4" >&2; exit 1; }
	fi
	start_daemon
	;;
stop)
	[ $# = 2 ] || usage
	set_dir "$2"
	stop_daemon
	;;
status)
	[ $# = 2 ] || usage
	set_dir "$2"
	pid=$(recorded_pid)
	if [ -n "$pid" ] && ours "$pid" && answers 10; then echo "libvirtd $DIR answers (pid $pid)"
	else echo "libvirtd $DIR is down"; exit 1; fi
	;;
uri)
	[ $# = 2 ] || usage
	set_dir "$2"
	echo "$URI"
	;;
*) usage ;;
esac
