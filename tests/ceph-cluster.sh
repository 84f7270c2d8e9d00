#!/bin/bash
# A throw-away single-node Ceph cluster (one mon, one osd, cephx on, no mgr) on 127.0.0.1, kept in
# one folder, for ferry's integration tests and benchmarks. Recipe: ceph-testbed.md (Ceph 16.2).
#
#   ceph-cluster.sh start DIR PORT [memstore|bluestore]   mon on 127.0.0.1:PORT, daemons on
#                                 PORT+2..PORT+99 (clusters whose PORTs are >= 100 apart coexist);
#                                 a stopped bluestore cluster in DIR is started again with its data
#   ceph-cluster.sh stop DIR      SIGTERM to the PIDs in DIR/pids, kill -9 after ~10 s
#   ceph-cluster.sh restart DIR   stop, then start keeping the data (bluestore only)
#   ceph-cluster.sh status DIR    exit 0 when the mon answers and osd.0 is up
#
# Clients need only DIR/ceph.conf: it names DIR/keyring, which holds client.admin's key.
# Env: FERRY_CEPH_MEMSTORE_BYTES (default 4 GiB of RAM per cluster),
#      FERRY_CEPH_BLUESTORE_BYTES (default 10 GiB, a sparse file DIR/osd/osd.0/block),
#      FERRY_CEPH_TIMEOUT (seconds a start may take before it gives up, default 90).
set -eu
unset CEPH_ARGS CEPH_CONF
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"	# Debian's ceph tools and python3, not a pyenv shim

usage() {
	echo "usage: $0 start DIR PORT [memstore|bluestore] | stop DIR | restart DIR | status DIR" >&2
	exit 2
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ceph SECONDS ARGS...: the ceph CLI, never longer than SECONDS (without a mgr some commands hang).
ceph_t() {
	local t=$1; shift
	timeout -k 2 "$t" /usr/bin/python3 /usr/bin/ceph -c "$CONF" --connect-timeout "$t" "$@"
}

set_dir() {
	[ -n "${1:-}" ] || usage
	[ "${2:-}" != create ] || mkdir -p "$1" 2>/dev/null || true
	DIR=$(cd "$1" 2>/dev/null && pwd) || { echo "$0: no such folder: $1" >&2; exit 1; }
	CONF="$DIR/ceph.conf"
}

# state FILE: the state letter in a /proc stat file (R, S, D, Z...), empty when it is gone.
state() {
	local line=""
	{ read -r line < "$1"; } 2>/dev/null || true
	line=${line##*) }
	printf '%s' "${line%% *}"
}
# running PID: one of the process's threads still runs. A multi-threaded daemon whose main thread
# has exited shows as a zombie while its other threads still hold its ports and memory; a zombie
# whose threads are all gone (PID 1 here reaps slowly) holds nothing.
running() {
	local t
	for t in /proc/"$1"/task/*/stat; do
		case "$(state "$t")" in Z|X|'') ;; *) return 0 ;; esac
	done
	return 1
}
# ours PID: the process runs and is one of this cluster's daemons, not another process that got a
# recorded PID again (a PID is not reused before its zombie is reaped).
ours() {
	local cmd
	running "$1" || return 1
	cmd=$(tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null) || return 1
	case "$cmd" in
	*"-c $CONF "*) return 0 ;;
	'') [ "$(state "/proc/$1/stat")" = Z ] ;;	# exiting: its main thread is gone
	*) return 1 ;;
	esac
}

recorded_pids() { [ -f "$DIR/pids" ] && cat "$DIR/pids" || true; }

# term PID: SIGTERM, wait until it is gone (a zombie counts as gone), kill -9 after 10 s.
term() {
	local i
	ours "$1" || return 0
	kill -TERM "$1" 2>/dev/null || true
	for i in $(seq 1 150); do
		running "$1" || return 0
		if [ "$i" = 100 ]; then
			echo "$0: $1 still running after 10 s: kill -9" >&2
			kill -KILL "$1" 2>/dev/null || true
		fi
		sleep 0.1
	done
	echo "$0: could not stop $1" >&2
	return 1
}

# The osd goes first: stopping, it tells the mon, and it waits 5 s for a mon that is gone.
stop_cluster() {
	local pid rc=0
	for pid in $(recorded_pids | tac); do term "$pid" || rc=1; done
	[ "$rc" = 0 ] && rm -f "$DIR/pids"
	return "$rc"
}

# fail MESSAGE: the message and the logs' tails on stderr, daemons stopped, exit 1.
fail() {
	local f
	{
		echo "$0: ceph cluster $DIR failed to start: $1"
		for f in "$DIR/log/setup.log" "$DIR/log/mon.a.log" "$DIR/log/mon.a.out" \
			"$DIR/log/osd.0.log" "$DIR/log/osd.0.out"; do
			[ -s "$f" ] || continue
			echo "--- tail of $f"
			case "$f" in	# the daemons' logs, without rocksdb's statistics
			*/mon.a.log|*/osd.0.log) grep -a -E '^[0-9]{4}-' "$f" | grep -a -v ' rocksdb: ' | tail -n 25 || true ;;
			*) tail -n 25 "$f" ;;
			esac
		done
	} >&2
	stop_cluster >/dev/null 2>&1 || true
	exit 1
}

write_conf() {
	cat > "$CONF.tmp" <<-EOF
	# written by ferry's tests/ceph-cluster.sh; see ceph-testbed.md
	[global]
	fsid = $FSID
	mon host = [v2:127.0.0.1:$PORT]
	mon initial members = a
	public addr = 127.0.0.1
	cluster addr = 127.0.0.1
	ms bind ipv4 = true
	ms bind ipv6 = false
	ms bind msgr1 = false
	ms bind msgr2 = true
	ms bind port min = $((PORT + 2))
	ms bind port max = $((PORT + 99))
	auth cluster required = cephx
	auth service required = cephx
	auth client required = cephx
	auth allow insecure global id reclaim = false
	keyring = $DIR/keyring
	run dir = $DIR/run
	crash dir = $DIR/crash
	osd pool default size = 1
	osd pool default min size = 1
	osd pool default pg num = 8
	osd pool default pgp num = 8
	osd pool default pg autoscale mode = off
	osd crush chooseleaf type = 0
	mon allow pool size one = true
	mon allow pool delete = true
	mon warn on pool no redundancy = false
	mon data avail warn = 5
	mon data avail crit = 2
	mon cluster log to file = false
	paxos propose interval = 0.05
	[mon]
	mon data = $DIR/mon/\$name
	admin socket = $DIR/run/\$name.asok
	log file = $DIR/log/\$name.log
	[osd]
	osd data = $DIR/osd/\$name
	admin socket = $DIR/run/\$name.asok
	log file = $DIR/log/\$name.log
	osd objectstore = $STORE
	osd op num shards = 1
	osd op num threads per shard = 2
	EOF
	if [ "$STORE" = memstore ]; then
		echo "memstore device bytes = ${FERRY_CEPH_MEMSTORE_BYTES:-4294967296}" >> "$CONF.tmp"
	else
		cat >> "$CONF.tmp" <<-EOF
		bluestore block create = true
		bluestore block size = ${FERRY_CEPH_BLUESTORE_BYTES:-10737418240}
		bluestore fsck on mkfs = false
		osd memory target = 1073741824
		EOF
	fi
	mv "$CONF.tmp" "$CONF"
}

# daemon NAME COMMAND...: starts a daemon in the foreground of its own session, records its PID.
# It keeps no descriptor of ours or of our caller's (a pipe a test reads, a lock it holds).
daemon() {
	local name=$1; shift
	(
		for fd in /proc/$BASHPID/fd/*; do
			fd=${fd##*/}
			[ "$fd" -gt 2 ] && eval "exec $fd>&-"
		done
		exec setsid "$@"	# not a process group leader: setsid does not fork, $! stays its PID
	) < /dev/null > "$DIR/log/$name.out" 2>&1 &
	echo $! >> "$DIR/pids"
}

osd_up() { ceph_t 10 osd dump 2>/dev/null | grep -q '^osd\.0 up'; }

start_cluster() {
	local t0 deadline fresh=1 old_port="" i pid f
	t0=$(now)
	deadline=$(( $(date +%s) + ${FERRY_CEPH_TIMEOUT:-90} ))
	for pid in $(recorded_pids); do
		if ours "$pid"; then echo "$0: a cluster is already running in $DIR (pid $pid); stop it first" >&2; exit 1; fi
	done
	# Someone else's cluster (or anything) on our ports would answer our clients: refuse early.
	if ss -Hltn | awk -v lo="$PORT" -v hi=$((PORT + 99)) '{ p = $4; sub(/.*:/, "", p)
		if (p + 0 >= lo && p + 0 <= hi) { print "in use: " $4; found = 1 } } END { exit !found }' >&2; then
		echo "$0: ports $PORT..$((PORT + 99)) are not free" >&2
		exit 1
	fi
	if [ -f "$DIR/cluster.env" ]; then
		local want=$STORE
		# shellcheck disable=SC1091
		. "$DIR/cluster.env"	# FSID OSD_UUID STORE PORT of the last start
		old_port=$PORT
		if [ "$STORE" = bluestore ] && [ -e "$DIR/osd/osd.0/block" ] && [ -d "$DIR/mon/mon.a" ]; then
			if [ "$want" != bluestore ]; then
				echo "$0: $DIR holds a bluestore cluster; start it with bluestore, or remove $DIR first" >&2
				exit 1
			fi
			fresh=0
		fi
		STORE=$want
		PORT=$NEW_PORT
	fi
	if [ "$fresh" = 0 ]; then	# the previous run's logs become *.old
		for f in "$DIR"/log/*.log "$DIR"/log/*.out; do
			if [ -f "$f" ]; then mv -f "$f" "$f.old"; fi
		done
	fi
	if [ "$fresh" = 1 ]; then
		rm -rf "$DIR/mon" "$DIR/osd" "$DIR/log" "$DIR/run" "$DIR/crash" "$DIR/keyring" "$DIR/monmap" \
			"$DIR/pids" "$DIR/cluster.env" "$CONF"
		FSID=$(cat /proc/sys/kernel/random/uuid)
		OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
	fi
	mkdir -p "$DIR/mon" "$DIR/osd/osd.0" "$DIR/log" "$DIR/run" "$DIR/crash"
	rm -f "$DIR/pids" "$DIR"/run/*.asok
	: > "$DIR/log/setup.log"
	write_conf
	printf 'FSID=%s\nOSD_UUID=%s\nSTORE=%s\nPORT=%s\n' "$FSID" "$OSD_UUID" "$STORE" "$PORT" > "$DIR/cluster.env"

	local osd_mkfs="" pool_create=""
	exec 3>> "$DIR/log/setup.log"
	step() { echo "--- $(elapsed "$t0")s: $*" >&3; }
	step "start $STORE on $PORT (fresh=$fresh)"
	if [ "$fresh" = 1 ]; then
		(
			umask 077
			ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *'
			ceph-authtool "$DIR/keyring" --gen-key -n client.admin --cap mon 'allow *' \
				--cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *'
			ceph-authtool "$DIR/keyring" --gen-key -n osd.0 --cap mon 'allow profile osd' \
				--cap mgr 'allow profile osd' --cap osd 'allow *'
			chmod 600 "$DIR/keyring"
		) >&3 2>&1 || fail "ceph-authtool"
		# The osd's mkfs needs no mon: it runs while the mon is made and started.
		# (--no-mon-config: else it waits for a mon, or asks whatever mon listens on PORT.)
		ceph-osd -c "$CONF" -i 0 --mkfs --no-mon-config --osd-uuid "$OSD_UUID" > "$DIR/log/osd-mkfs.log" 2>&1 &
		osd_mkfs=$!
		monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$PORT]" "$DIR/monmap" >&3 2>&1 ||
			fail "monmaptool"
		ceph-mon -c "$CONF" -i a --mkfs --monmap "$DIR/monmap" --keyring "$DIR/keyring" >&3 2>&1 ||
			fail "ceph-mon --mkfs"
	elif [ "$old_port" != "$PORT" ]; then
		# The mon's address is in its monmap: move it to the new port.
		{ ceph-mon -c "$CONF" -i a --extract-monmap "$DIR/monmap" &&
			monmaptool --rm a "$DIR/monmap" &&
			monmaptool --addv a "[v2:127.0.0.1:$PORT]" "$DIR/monmap" &&
			ceph-mon -c "$CONF" -i a --inject-monmap "$DIR/monmap"; } >&3 2>&1 ||
			fail "moving the mon from port $old_port to $PORT"
	fi

	step "mon"
	daemon mon.a ceph-mon -f -c "$CONF" -i a
	pid=$(tail -n 1 "$DIR/pids")
	until ss -Hltnp "sport = :$PORT" | grep -q "pid=$pid,"; do
		ours "$pid" || fail "ceph-mon exited"
		[ "$(date +%s)" -lt "$deadline" ] || fail "the mon does not listen on $PORT"
		sleep 0.05
	done
	if [ "$fresh" = 1 ]; then
		step "mon listens"
		ceph_t 30 osd pool create rbd 8 8 >&3 2>&1 &	# meanwhile: it needs no osd
		pool_create=$!
		wait "$osd_mkfs" || { cat "$DIR/log/osd-mkfs.log" >&3; fail "ceph-osd --mkfs"; }
		until ceph_t 10 osd new "$OSD_UUID" 0 >&3 2>&1; do
			ours "$pid" || fail "ceph-mon exited"
			[ "$(date +%s)" -lt "$deadline" ] || fail "ceph osd new"
			sleep 0.2
		done
	fi
	step "osd"
	daemon osd.0 ceph-osd -f -c "$CONF" -i 0
	pid=$(tail -n 1 "$DIR/pids")
	step "wait for osd.0 up"
	# No client I/O before the osd is up in the osdmap: an earlier op is retried only after 5 s.
	# The osd's log says when it has booted; only then ask the mon (each ceph call costs ~0.3 s).
	i=0
	# (When fresh, also ask every 2 s in case the log says it otherwise; a restarted cluster's map
	# may still show the previous osd up, so there only the new log counts.)
	until { grep -qs 'state: booting -> active' "$DIR/log/osd.0.log" ||
		{ [ "$fresh" = 1 ] && [ $((i % 20)) = 19 ]; }; } && osd_up; do
		ours "$pid" || fail "ceph-osd exited"
		[ "$(date +%s)" -lt "$deadline" ] || fail "osd.0 is not up"
		i=$((i + 1))
		sleep 0.1
	done
	step "osd.0 up"
	if [ "$fresh" = 1 ]; then
		wait "$pool_create" || fail "ceph osd pool create rbd"
		timeout -k 2 60 rbd -c "$CONF" pool init rbd >&3 2>&1 || fail "rbd pool init rbd"
	fi
	until timeout -k 2 20 rbd -c "$CONF" ls rbd >&3 2>&1; do
		[ "$(date +%s)" -lt "$deadline" ] || fail "rbd ls rbd"
		sleep 0.2
	done
	step "ready"
	exec 3>&-
	echo "ceph cluster $DIR up on 127.0.0.1:$PORT ($(elapsed "$t0")s)"
}

cmd=${1:-}
case "$cmd" in
start)
	[ $# -ge 3 ] && [ $# -le 4 ] || usage
	set_dir "$2" create
	NEW_PORT=$3 PORT=$3 STORE=${4:-memstore}
	case "$PORT" in ''|*[!0-9]*) usage ;; esac
	[ "$PORT" -ge 1024 ] && [ "$PORT" -le 65435 ] || { echo "$0: PORT must be in 1024..65435" >&2; exit 2; }
	case "$STORE" in memstore|bluestore) ;; *) usage ;; esac
	start_cluster
	;;
stop)
	[ $# = 2 ] || usage
	set_dir "$2"
	stop_cluster
	;;
restart)
	[ $# = 2 ] || usage
	set_dir "$2"
	[ -f "$DIR/cluster.env" ] || { echo "$0: no cluster in $DIR" >&2; exit 1; }
	# shellcheck disable=SC1091
	. "$DIR/cluster.env"
	if [ "$STORE" != bluestore ]; then
		echo "$0: the cluster in $DIR uses $STORE, which keeps its data in RAM: it cannot be restarted (use start for a new, empty one)" >&2
		exit 1
	fi
	stop_cluster
	NEW_PORT=$PORT
	start_cluster
	;;
status)
	[ $# = 2 ] || usage
	set_dir "$2"
	[ -f "$CONF" ] || { echo "no cluster in $DIR"; exit 1; }
	# The mon alone may show osd.0 up long after it died (no peer reports it): check the PIDs too.
	n=0
	for pid in $(recorded_pids); do ours "$pid" && n=$((n + 1)); done
	if [ "$n" = 2 ] && osd_up; then echo "ceph cluster $DIR answers, osd.0 up"
	else echo "ceph cluster $DIR is down ($n of 2 daemons running)"; exit 1; fi
	;;
*) usage ;;
esac
