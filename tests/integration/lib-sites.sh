# Whole ferry sites on one machine, each as an operator has one: its own Ceph cluster, libvirtd
# and ferryd, with its own catalog, admin token, self-signed certificate and a client
# configuration file that its `ferry` commands read. tests/demo.sh is built on it; a TAP test may
# use it too. Source it after lib.sh and lib-ceph.sh (lib-cutover.sh is optional); everything
# lives under $SITES_DIR (default $TEST_DIR), one folder per site:
#   site-a/ferryd/   ferryd's state (catalog.db, tls/cert.pem made on first start)
#   site-a/ceph/     the site's Ceph cluster, when this file started it
#   site-a/libvirt/  the site's libvirtd
#   site-a/admin.token, viewer.token, ferry.conf (the CLI's configuration), ferryd.log
# and $SITES_DIR/sites.record lists what was started, so that sites_stop finds it again, even
# from another process (`make demo-stop`).
#
#   sites_can_run                 0 when this machine can run whole sites (root, mount
#                                 namespaces, Ceph, libvirt, QEMU's rbd driver), else prints why
#   site_ceph NAME PORT           NAME's cluster: the running one FERRY_TEST_CEPH_<NAME>_CONF names
#                                 (make check's shared clusters), else a new one on PORT (or the
#                                 next free range of 100 above it); sets SITE_CEPH_<NAME>
#   site_libvirt NAME INDEX [SEED_NAME]
#                                 NAME's libvirtd (INDEX: see tests/libvirt-daemon.sh; SEED_NAME:
#                                 a site whose capability cache it copies); sets SITE_URI_<NAME>
#   site_ferryd NAME [ARGS]       starts NAME's ferryd (again on the same port after a stop),
#                                 with --ceph-conf when the site has a cluster, and ARGS; sets
#                                 SITE_URL_<NAME>, SITE_PID_<NAME>, SITE_DIR_<NAME>
#   site_kill NAME                kill -9 of NAME's ferryd (a site that dies)
#   site NAME ARGS...             `ferry ARGS` with NAME's client configuration
#   site_pair NAME1 NAME2         each site issues a peer token for the other, and each adds the
#                                 other as a site named site-<name>
#   site_disk_xml NAME IMAGE DEV  a <disk> element for RBD image rbd/IMAGE on NAME's cluster
#   site_vm NAME DOMAIN IMAGE_FILE
#                                 the tick guest's IMAGE_FILE imported as rbd/DOMAIN-disk at NAME,
#                                 the domain defined and started on NAME's libvirtd; its serial
#                                 log is $SITES_DIR/DOMAIN.serial
#   site_point NAME IMAGE         the last committed point of rbd:rbd/IMAGE where NAME is primary
#   site_wait_point NAME IMAGE N [SECONDS]
#   site_bytes NAME POOL/IMAGE[@SNAP] OFFSET   4 bytes at OFFSET in hex, read with the rbd CLI
#   sites_stop [DIR]              stops every process recorded in DIR/sites.record (default
#                                 $SITES_DIR): ferryd, libvirtd with its guests, Ceph clusters it
#                                 started; a reused cluster is left running
# NAME is a capital letter or word (A, B); its folder is site-<name in lower case>.
: "${SITES_DIR:=$TEST_DIR}"
SITES_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
: "${LIBVIRT_SH:=$SITES_ROOT/tests/libvirt-daemon.sh}"
: "${GUEST:=$SITES_ROOT/tests/guest}"
: "${CEPH_CLUSTER_SH:=$SITES_ROOT/tests/ceph-cluster.sh}"

site_folder() { echo "$SITES_DIR/site-$(echo "$1" | tr '[:upper:]' '[:lower:]')"; }
site_get() { local var="SITE_$2_$1"; printf '%s' "${!var:-}"; }	# site_get NAME FIELD
site_record() { echo "$*" >> "$SITES_DIR/sites.record"; }

sites_can_run() {
	local missing="" tool
	if [ "$(id -u)" != 0 ]; then
		echo "it needs root (libvirtd and its guests, Ceph daemons, mount namespaces)"
		return 1
	fi
	if ! unshare --mount --propagation private true 2>/dev/null; then
		echo "this machine gives no mount namespaces (unshare --mount fails), which two libvirtd side by side need"
		return 1
	fi
	for tool in ceph-mon ceph-osd rbd libvirtd virsh qemu-system-x86_64 jq python3; do
		command -v "$tool" > /dev/null || missing="$missing $tool"
	done
	[ -e /usr/lib/x86_64-linux-gnu/qemu/block-rbd.so ] || missing="$missing qemu-block-extra"
	/usr/bin/python3 -c 'import rbd' 2>/dev/null || missing="$missing python3-rbd"
	if [ -n "$missing" ]; then
		echo "missing:$missing (sh tests/install-deps.sh installs them)"
		return 1
	fi
}

# site_port_range_free PORT: nothing listens on PORT..PORT+99.
site_port_range_free() {
	! ss -Hltn | awk -v lo="$1" -v hi=$(($1 + 99)) \
		'{ p = $4; sub(/.*:/, "", p); if (p + 0 >= lo && p + 0 <= hi) found = 1 } END { exit !found }'
}

site_ceph() {
	local name=$1 port=$2 var conf dir tries
	var="FERRY_TEST_CEPH_${name}_CONF"
	conf=${!var:-}
	if [ -n "$conf" ] && "$CEPH_CLUSTER_SH" status "$(dirname "$conf")" > /dev/null 2>&1; then
		printf -v "SITE_CEPH_$name" '%s' "$conf"
		SITE_CEPH_REUSED=1
		return 0
	fi
	dir="$(site_folder "$name")/ceph"
	mkdir -p "$(dirname "$dir")"
	for tries in 1 2 3 4 5; do
		if ! site_port_range_free "$port"; then port=$((port + 100)); continue; fi
		site_record ceph "$name" "$dir"
		if "$CEPH_CLUSTER_SH" start "$dir" "$port" "${FERRY_CEPH_STORE:-bluestore}" > "$dir.log" 2>&1; then
			printf -v "SITE_CEPH_$name" '%s' "$dir/ceph.conf"
			return 0
		fi
		"$CEPH_CLUSTER_SH" stop "$dir" > /dev/null 2>&1
		port=$((port + 100))
	done
	echo "Ceph cluster of site $name did not start ($tries tries; see $dir.log):" >&2
	tail -n 5 "$dir.log" >&2
	return 1
}

site_libvirt() {
	local name=$1 index=$2 seed="" dir uri
	dir="$(site_folder "$name")/libvirt"
	[ -z "${3:-}" ] || seed="$(site_folder "$3")/libvirt"
	mkdir -p "$dir"
	site_record libvirt "$name" "$dir"
	uri=$("$LIBVIRT_SH" start "$dir" "$index" ${seed:+"$seed"} 2> "$dir.log") ||
		{ echo "libvirtd of site $name did not start:" >&2; tail -n 5 "$dir.log" >&2; return 1; }
	printf -v "SITE_URI_$name" '%s' "$uri"
}

# site_write_config NAME: NAME's ferry.conf, the file `ferry --config` or FERRY_CONFIG reads.
site_write_config() {
	local name=$1 folder ceph
	folder=$(site_folder "$name")
	ceph=$(site_get "$name" CEPH)
	{
		echo "; the ferry CLI's configuration for site $name (see ferry.conf(5)); relative paths"
		echo "; are relative to this file"
		echo "[ferry]"
		echo "daemon = $(site_get "$name" URL)"
		echo "token-file = admin.token"
		echo "cacert = ferryd/tls/cert.pem"
		[ -z "$ceph" ] || echo "ceph-conf = $ceph"
	} > "$folder/ferry.conf"
}

site_ferryd() {
	local name=$1 folder state port ceph pid
	shift
	folder=$(site_folder "$name")
	state="$folder/ferryd"
	mkdir -p "$state"
	[ -s "$folder/admin.token" ] || { (umask 077; openssl rand -hex 24 > "$folder/admin.token"); }
	port=$(site_get "$name" PORT)
	[ -n "$port" ] || port=$(free_port) || { echo "no free port for site $name's ferryd" >&2; return 1; }
	ceph=$(site_get "$name" CEPH)
	rm -f "$state/ferryd.url"
	# Its own session: a Ctrl-C at the terminal reaches the script, which stops it in order.
	setsid "$FERRYD" --state-dir "$state" --listen "127.0.0.1:$port" --token-file "$folder/admin.token" \
		${ceph:+--ceph-conf "$ceph"} "$@" < /dev/null >> "$folder/ferryd.log" 2>&1 &
	pid=$!
	site_record ferryd "$name" "$pid" "$state"
	for _ in $(seq 1 150); do
		[ -s "$state/ferryd.url" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if [ ! -s "$state/ferryd.url" ]; then
		echo "ferryd of site $name did not start:" >&2
		tail -n 5 "$folder/ferryd.log" >&2
		return 1
	fi
	printf -v "SITE_PORT_$name" '%s' "$port"
	printf -v "SITE_PID_$name" '%s' "$pid"
	printf -v "SITE_URL_$name" '%s' "$(cat "$state/ferryd.url")"
	printf -v "SITE_DIR_$name" '%s' "$folder"
	site_write_config "$name"
}

site_kill() {
	local pid
	pid=$(site_get "$1" PID)
	[ -n "$pid" ] || return 0
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	printf -v "SITE_PID_$1" '%s' ""
	return 0
}

site() {
	local name=$1
	shift
	env -u FERRY_DAEMON -u FERRY_TOKEN_FILE -u FERRY_CACERT -u CEPH_CONF \
		FERRY_CONFIG="$(site_folder "$name")/ferry.conf" "$FERRY" "$@"
}

site_pair() {
	local one=$1 two=$2 f1 f2
	f1=$(site_folder "$one") f2=$(site_folder "$two")
	# The token a site pushes with is issued by the site it pushes to.
	site "$two" token create "site-${one,,}" --role peer --json | jq -r .token > "$f1/peer-at-${two,,}.token" &&
		site "$one" token create "site-${two,,}" --role peer --json | jq -r .token > "$f2/peer-at-${one,,}.token" &&
		chmod 600 "$f1/peer-at-${two,,}.token" "$f2/peer-at-${one,,}.token" &&
		site "$one" site add "site-${two,,}" --url "$(site_get "$two" URL)" \
			--peer-token-file "$f1/peer-at-${two,,}.token" --peer-cacert "$f2/ferryd/tls/cert.pem" > /dev/null &&
		site "$two" site add "site-${one,,}" --url "$(site_get "$one" URL)" \
			--peer-token-file "$f2/peer-at-${one,,}.token" --peer-cacert "$f1/ferryd/tls/cert.pem" > /dev/null
}

site_disk_xml() {
	local conf port
	conf=$(site_get "$1" CEPH)
	port=$(sed -n 's/^mon host = \[v2:127.0.0.1:\([0-9]*\)\]/\1/p' "$conf")
	echo "<disk type='network' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source protocol='rbd' name='rbd/$2'>
        <host name='127.0.0.1' port='$port'/>
        <config file='$conf'/>
      </source>
      <target dev='$3' bus='virtio'/>
    </disk>"
}

site_vm() {
	local name=$1 domain=$2 image=$3 uri
	uri=$(site_get "$name" URI)
	timeout 120 rbd -c "$(site_get "$name" CEPH)" import --no-progress "$image" "rbd/$domain-disk" > /dev/null &&
		"$GUEST/domain.sh" "$domain" "$(site_disk_xml "$name" "$domain-disk" vda)" \
			"$SITES_DIR/$domain.serial" > "$SITES_DIR/$domain.xml" &&
		timeout 120 virsh -q -c "$uri" define "$SITES_DIR/$domain.xml" > /dev/null &&
		timeout 120 virsh -q -c "$uri" start "$domain" > /dev/null
}

site_point() {
	site "$1" status --json 2>/dev/null | jq -r --arg n "rbd:rbd/$2" '[.volumes[] | select(.name == $n) | .last_point][0] // 0'
}
site_wait_point() {
	local limit=$((${4:-60} * 5))
	for _ in $(seq 1 "$limit"); do
		[ "$(site_point "$1" "$2")" -ge "$3" ] 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}

site_bytes() {
	timeout 120 rbd -c "$(site_get "$1" CEPH)" export --no-progress "$2" - 2>/dev/null |
		dd bs=4096 skip=$(($3 / 4096)) count=1 status=none | xxd -p -l 4
}

# sites_stop [DIR]: in reverse order of start. A PID is signalled only while it is still the
# ferryd of that folder (a PID can be reused).
sites_stop() {
	local dir=${1:-$SITES_DIR} kind name what state cmd
	[ -f "$dir/sites.record" ] || return 0
	tac "$dir/sites.record" | while read -r kind name what state; do
		case "$kind" in
		ferryd)
			cmd=$({ tr '\0' ' ' < "/proc/$what/cmdline"; } 2>/dev/null) || continue
			case "$cmd" in *"--state-dir $state "*) ;; *) continue ;; esac
			kill -TERM "$what" 2>/dev/null
			for _ in $(seq 1 50); do kill -0 "$what" 2>/dev/null || break; sleep 0.1; done
			kill -9 "$what" 2>/dev/null
			;;
		libvirt) [ ! -d "$what" ] || "$LIBVIRT_SH" stop "$what" > /dev/null 2>&1 ;;
		ceph) [ ! -d "$what" ] || "$CEPH_CLUSTER_SH" stop "$what" > /dev/null 2>&1 ;;
		esac
	done
	# Once stopped, a record would make a later stop signal whatever got those PIDs.
	mv "$dir/sites.record" "$dir/sites.record.stopped"
}
