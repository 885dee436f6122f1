#!/usr/bin/env bash
# The `link` scenario of `make bench` (issue #13): full sends over ssh on a
# shaped link, zrep with each --compress against the bare pipe, a hand zstd
# pipeline and syncoid; alternating rounds, medians.
#
#   BENCH_SCENARIOS=link bench/run.sh      # or: bench/link.sh (as root)
#
# The link: a network namespace of its own whose loopback is shaped with tbf
# (netem is not in these kernels) at each of LINK_RATES, with MTU 1500 (with
# loopback's 64 KiB packets tbf drops every full-size packet); `none` is the
# namespace's loopback unshaped (MTU 65536). A private sshd (the lab's keys and
# user) listens on 127.0.0.1 inside the namespace, and every command runs
# there; nothing but that loopback is contacted.
#
# Settings: LINK_MIB (size of each data set, default 1024), LINK_RATES
# (default "100mbit 1gbit none"), LINK_REPS (default 3), LINK_SYNCOID
# (default 1), LINK_METHODS (a subset of the methods, for a quick look;
# the table's targets then lack their comparisons), LINK_SKIP (RATE/DATA/METHOD
# cells left out; by default the hand pipeline and syncoid on incompressible
# data at 100 Mbit/s, where every method is the link's 88 s per GiB and no
# target compares them), LINK_BWLIMIT (default 32M, checked on the unshaped
# link), BENCH_KEEP=1 keeps the raw rounds, LINK_LOGS=DIR keeps each run's
# stderr there (with --compress auto and ZREP_LOG_LEVEL=debug, its
# decisions).
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin

LINK_MIB=${LINK_MIB:-1024}
LINK_RATES=${LINK_RATES:-"100mbit 1gbit none"}
LINK_REPS=${LINK_REPS:-3}
LINK_SYNCOID=${LINK_SYNCOID:-1}
LINK_BWLIMIT=${LINK_BWLIMIT:-32M}
LINK_SKIP=${LINK_SKIP-"100mbit/rand/hand 100mbit/rand/syncoid 100mbit/rand/syncoid-zstd-fast"}
LINK_PORT=${LINK_PORT:-22025}
BENCH_KEEP=${BENCH_KEEP:-0}

die() { echo "bench link: $*" >&2; exit 1; }
say() { echo "bench link: $(date +%T) $*" >&2; }

[ "$(id -u)" = 0 ] || die "must run as root (network namespaces, zfs-fuse, sshd)"

# Outside: make the namespace and run the rest inside it.
if [ -z "${LINK_NETNS:-}" ]; then
	for p in ip tc zstd jq; do command -v $p >/dev/null || die "needs $p"; done
	eval "$(lab/lab.sh up)"
	export ZREP_LAB_DIR ZREP_LAB_SSH_KEY ZREP_LAB_SSH_USER
	make -s build >/dev/null
	go build -o bin/measure ./bench/measure
	if ! command -v syncoid >/dev/null && [ "${LINK_SYNCOID:-1}" = 1 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sanoid mbuffer pv lzop zstd >&2 ||
			{ apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sanoid mbuffer pv lzop zstd >&2; }
	fi
	# The pools and data are made here: a namespace made by ip netns has a
	# mount namespace of its own, which does not see zfs-fuse's mounts.
	SP=zls$$ DP=zld$$
	export SP DP
	cleanup_pools() {
		set +e
		for p in "$SP" "$DP"; do
			zpool list -H -o name "$p" >/dev/null 2>&1 && { zpool destroy -f "$p" || { sleep 2; zpool destroy -f "$p"; }; }
			rm -f "/var/tmp/$p.img"
		done
		ip netns del "$ns" 2>/dev/null
	}
	ns=zlink$$
	trap cleanup_pools EXIT
	img_mib=$((LINK_MIB * 2 + 512))
	for p in "$SP" "$DP"; do
		truncate -s "${img_mib}M" "/var/tmp/$p.img"
		zpool create -f -m none "$p" "/var/tmp/$p.img" >/dev/null
	done
	echo "bench link: $(date +%T) making $LINK_MIB MiB of incompressible and of text data" >&2
	zfs create -o compression=off -o mountpoint="/$SP/rand" "$SP/rand"
	head -c "${LINK_MIB}M" /dev/urandom >"/$SP/rand/data"
	zfs create -o compression=off -o mountpoint="/$SP/text" "$SP/text"
	# Text: the machine's man pages and documentation, as often as needed.
	for _ in $(seq 1 200); do find /usr/share/man /usr/share/doc -type f -name '*.gz' -print0 2>/dev/null | xargs -0 zcat 2>/dev/null; done |
		head -c "${LINK_MIB}M" >"/$SP/text/data" || true
	sync
	for d in rand text; do zfs snapshot "$SP/$d@s"; done
	ratio=$(zstd -1 -T0 -c "/$SP/text/data" | wc -c)
	ratio=$(awk "BEGIN { printf \"%.2f\", $((LINK_MIB << 20)) / $ratio }")
	echo "bench link: zstd -1 ratio of the text data: $ratio" >&2
	zfs set mountpoint=none "$SP/rand" "$SP/text"
	rmdir "/$SP/rand" "/$SP/text" "/$SP" 2>/dev/null || true
	export LINK_RATIO=$ratio
	ip netns add "$ns"
	ip netns exec "$ns" ip link set lo up
	LINK_NETNS=$ns ip netns exec "$ns" "$0" "$@"
	exit
fi

WORK=$(mktemp -d /tmp/zrep-link.XXXXXX)
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
ratio=$LINK_RATIO
SSHD_PID=
cleanup() {
	set +e
	[ -n "$SSHD_PID" ] && kill "$SSHD_PID"
	if [ "$BENCH_KEEP" = 1 ]; then echo "bench link: raw rounds kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# shape RATE: the namespace's loopback at RATE, or unshaped for none.
shape() {
	tc qdisc del dev lo root 2>/dev/null || true
	case $1 in
	none) ip link set lo mtu 65536 ;;
	*)
		# A bucket of about 5 ms at the rate, at least 64 KiB.
		local bits=${1%bit} mult=1
		case $bits in *g) mult=1000000000 bits=${bits%g} ;; *m) mult=1000000 bits=${bits%m} ;; *k) mult=1000 bits=${bits%k} ;; esac
		local burst=$((bits * mult / 8 / 200))
		[ "$burst" -lt 65536 ] && burst=65536
		ip link set lo mtu 1500
		tc qdisc add dev lo root tbf rate "$1" burst "$burst" latency 100ms
		;;
	esac
}

# The sshd of the namespace; sessions find the syncoid shim first on PATH.
SHIM=$WORK/shim
mkdir -p "$SHIM"
install -m 755 bench/syncoid-zfs-shim "$SHIM/zfs"
. bench/sshd.sh
KEY=$ZREP_LAB_SSH_KEY KH=$WORK/known_hosts
SSHD_PID=$(bench_sshd sshd "$LINK_PORT" "SetEnv PATH=$SHIM:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
R=$ZREP_LAB_SSH_USER@127.0.0.1
SSH="ssh -p $LINK_PORT -i $KEY -o UserKnownHostsFile=$KH -o BatchMode=yes"
ZREP=("$REPO/bin/zrep" run -q --json --progress never --lock-dir "$WORK/lock"
	--ssh-port "$LINK_PORT" -i "$KEY" --ssh-option "UserKnownHostsFile=$KH" --ssh-option BatchMode=yes)
$SSH "$R" true || die "the namespace's sshd refuses the lab key (see $WORK/sshd.log)"

{
	echo "zrep:     $("$REPO/bin/zrep" version 2>&1 | head -1) ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?'))"
	echo "syncoid:  $(syncoid --version 2>&1 | head -1 || echo none)"
	echo "zstd:     $(zstd --version)"
	echo "machine:  $(nproc) cores, $(uname -r)"
	echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at start"
} | tee "$WORK/versions.txt" >&2

# --- rounds -------------------------------------------------------------------

# run LABEL CMD...: one measured transfer into $DP/x, which is removed after.
run() {
	local label=$1
	shift
	zfs destroy -r "$DP/x" >/dev/null 2>&1 || true
	local out
	out=$(MEASURE_OUT=$RESULTS "$REPO/bin/measure" -label "$label" -- "$@" </dev/null 2>"$WORK/last.err") ||
		{ cat "$WORK/last.err" >&2; die "$label failed"; }
	if [ -n "${LINK_LOGS:-}" ]; then
		runs=$((${runs:-0} + 1))
		cp "$WORK/last.err" "$LINK_LOGS/$(printf %03d "$runs")-${label//\//_}.err"
	fi
	if [[ $label == */zrep-* ]]; then
		echo "$out" | jq -c --arg l "$label" '{label:$l, bytes:.bytes, wire_bytes:.wire_bytes}' >>"$WORK/wire.jsonl" 2>/dev/null || true
	fi
	zfs destroy -r "$DP/x" >/dev/null 2>&1 || true
}

methods="bare hand zrep-none zrep-auto zrep-zstd zrep-lz4 zrep-gzip"
[ "$LINK_SYNCOID" = 1 ] && command -v syncoid >/dev/null && methods="$methods syncoid syncoid-zstd-fast"
methods=${LINK_METHODS:-$methods}
for rep in $(seq 1 "$LINK_REPS"); do
	for rate in $LINK_RATES; do
		shape "$rate"
		for d in rand text; do
			src=$SP/$d@s
			for mth in $methods; do
				[[ " $LINK_SKIP " == *" $rate/$d/$mth "* ]] && continue
				say "round $rep: $rate $d $mth"
				l=link/$rate/$d/$mth
				case $mth in
				bare) run "$l" sh -c "zfs send $src | $SSH $R zfs receive -u $DP/x" ;;
				bare-mbuffer) run "$l" sh -c "zfs send $src | $SSH $R 'mbuffer -q -s 128k -m 16M | zfs receive -u $DP/x'" ;;
				hand) run "$l" sh -c "zfs send $src | zstd -1 -T0 -q | $SSH $R 'zstd -d -q | zfs receive -u $DP/x'" ;;
				zrep-*) run "$l" "${ZREP[@]}" --compress "${mth#zrep-}" "$SP/$d" "$R:$DP/x" ;;
				syncoid) run "$l" env PATH="$SHIM:$PATH" syncoid --quiet --no-sync-snap --no-privilege-elevation \
					--sshkey "$KEY" --sshport "$LINK_PORT" --sshoption "UserKnownHostsFile=$KH" "$SP/$d" "$R:$DP/x" ;;
				syncoid-zstd-fast) run "$l" env PATH="$SHIM:$PATH" syncoid --quiet --no-sync-snap --no-privilege-elevation \
					--compress=zstd-fast --sshkey "$KEY" --sshport "$LINK_PORT" --sshoption "UserKnownHostsFile=$KH" "$SP/$d" "$R:$DP/x" ;;
				esac
			done
		done
		if [ "$rate" = none ]; then
			say "round $rep: --bwlimit $LINK_BWLIMIT"
			run "link/bwlimit/rand/zrep-none" "${ZREP[@]}" --compress none --bwlimit "$LINK_BWLIMIT" "$SP/rand" "$R:$DP/x"
		fi
	done
done
shape none

# --- the table ----------------------------------------------------------------

med() { # med LABEL FIELD
	jq -s --arg l "$1" --arg f "$2" '[.[]|select(.label==$l)|.[$f]|select(.!=null)]|sort|
		if length==0 then null elif length%2==1 then .[length/2|floor] else (.[length/2-1]+.[length/2])/2 end' "$RESULTS"
}
wire() { jq -s --arg l "$1" '[.[]|select(.label==$l)|.wire_bytes]|max' "$WORK/wire.jsonl"; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo met; else echo MISSED; fi; }
B=$((LINK_MIB << 20))

echo
cat "$WORK/versions.txt"
echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at the end"
echo "data:     $LINK_MIB MiB each; zstd -1 ratio of the text: $ratio; $LINK_REPS rounds, medians"
echo
echo "| link | data | method | wall | MiB/s (data) | vs bare | zrep CPU s/GiB | wire MiB |"
echo "|---|---|---|---|---|---|---|---|"
for rate in $LINK_RATES; do
	for d in rand text; do
		bare=$(med "link/$rate/$d/bare" wall_s)
		for mth in $methods; do
			l=link/$rate/$d/$mth
			w=$(med "$l" wall_s)
			[ "$w" = null ] && continue
			cpu=-
			wm=-
			if [[ $mth == zrep-* ]]; then
				cpu=$(calc "%.2f" "($(med "$l" self_user_s) + $(med "$l" self_sys_s)) / ($B / 1073741824)")
				wm=$(calc "%.0f" "$(wire "$l") / 1048576")
			fi
			vs=-
			[ "$bare" != null ] && vs="$(calc %.2f "$bare / $w")×"
			echo "| $rate | $d | $mth | $(calc %.1f "$w") s | $(calc %.1f "$LINK_MIB / $w") | $vs | $cpu | $wm |"
		done
	done
done
echo
echo "targets:"
# A target whose cells were left out (LINK_SKIP, LINK_METHODS) is not shown.
known() { for v in "$@"; do [ "$v" != null ] || return 1; done; }
for rate in $LINK_RATES; do
	bare=$(med "link/$rate/rand/bare" wall_s)
	z=$(med "link/$rate/rand/zrep-none" wall_s)
	known "$bare" "$z" && echo "- incompressible at $rate, zrep (default none) ≥ 0.95× bare: $(calc %.2f "$bare / $z")× $(verdict "$bare / $z >= 0.95")"
	z=$(med "link/$rate/rand/zrep-zstd" wall_s)
	known "$bare" "$z" && echo "- incompressible at $rate, zrep --compress zstd ≥ 0.95× bare: $(calc %.2f "$bare / $z")× $(verdict "$bare / $z >= 0.95")"
done
if [[ " $LINK_RATES " == *" 100mbit "* ]] && known "$(med link/100mbit/text/bare wall_s)" "$(med link/100mbit/text/hand wall_s)"; then
	bare=$(med link/100mbit/text/bare wall_s) hand=$(med link/100mbit/text/hand wall_s) z=$(med link/100mbit/text/zrep-zstd wall_s)
	echo "- text at 100mbit, zrep zstd ≥ 2× bare: $(calc %.2f "$bare / $z")× $(verdict "$bare / $z >= 2")"
	echo "- text at 100mbit, zrep zstd ≥ 0.95× hand pipeline: $(calc %.2f "$hand / $z")× $(verdict "$hand / $z >= 0.95")"
	if [[ $methods == *syncoid* ]]; then
		s1=$(med link/100mbit/text/syncoid wall_s) s2=$(med link/100mbit/text/syncoid-zstd-fast wall_s)
		best=$(awk "BEGIN { print ($s1 < $s2) ? $s1 : $s2 }")
		echo "- text at 100mbit, zrep zstd ahead of syncoid's best ($(calc %.1f "$best") s): $(calc %.2f "$best / $z")× $(verdict "$best > $z")"
	fi
fi
# --compress auto (issue 24): never behind none where the link is fast,
# never far behind zstd where it is slow, ahead of syncoid's default.
if [[ " $methods " == *" zrep-auto "* ]]; then
	ratio_of() { # ratio_of NUM-LABEL DEN-LABEL: wall(DEN) / wall(NUM), or null
		local a b
		a=$(med "$1" wall_s) b=$(med "$2" wall_s)
		[ "$a" = null ] || [ "$b" = null ] && { echo null; return; }
		calc %.3f "$b / $a"
	}
	target() { # target TEXT RATIO MIN
		[ "$2" = null ] && return
		echo "- $1: $(calc %.2f "$2")× $(verdict "$2 >= $3")"
	}
	for d in rand text; do
		target "unshaped, $d, auto ≥ 0.95× none" "$(ratio_of link/none/$d/zrep-auto link/none/$d/zrep-none)" 0.95
	done
	target "text at 100mbit, auto ≥ 0.95× zstd" "$(ratio_of link/100mbit/text/zrep-auto link/100mbit/text/zrep-zstd)" 0.95
	target "text at 1gbit, auto ≥ none" "$(ratio_of link/1gbit/text/zrep-auto link/1gbit/text/zrep-none)" 1
	target "text at 1gbit, auto ≥ zstd" "$(ratio_of link/1gbit/text/zrep-auto link/1gbit/text/zrep-zstd)" 1
	for rate in $LINK_RATES; do
		for d in rand text; do
			target "$rate $d, auto ahead of syncoid (lzo)" "$(ratio_of link/$rate/$d/zrep-auto link/$rate/$d/syncoid)" 1
		done
	done
fi
if [[ " $LINK_RATES " == *" none "* ]]; then
	echo "- unshaped, the default (none) ≥ 0.95× none: 1.00× met (the default is none)"
	w=$(med link/bwlimit/rand/zrep-none wall_s) wb=$(wire link/bwlimit/rand/zrep-none)
	lim=$(numfmt --from=iec "$LINK_BWLIMIT")
	echo "- --bwlimit $LINK_BWLIMIT: $(calc %.2f "$wb / $w / 1048576") MiB/s on the wire, $(calc %.3f "($wb / $w) / $lim")× the limit $(verdict "($wb / $w) / $lim <= 1.10 && ($wb / $w) / $lim >= 0.90")"
fi

# --- the charts -----------------------------------------------------------------

# The medians as chart records (bench/charts), one chart per data set, drawn
# into BENCH_CHARTS (default build/bench/) with the figures files named in
# BENCH_FIGURES.
BENCH_CHARTS=${BENCH_CHARTS:-$REPO/build/bench}
mkdir -p "$BENCH_CHARTS"
fig=$BENCH_CHARTS/figures-link.tsv
note="zrep $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?'), $(date +%F), $LINK_MIB MiB, load $(sed -n 's/^load: *\([0-9.]*\) .*/\1/p' "$WORK/versions.txt") at the start; medians of $LINK_REPS alternating rounds"
linkname() { case $1 in none) echo "unshaped loopback" ;; *mbit) echo "${1%mbit} Mbit/s" ;; *gbit) echo "${1%gbit} Gbit/s" ;; *) echo "$1" ;; esac; }
{
	echo "# bench/link.sh figures (bench/charts draws them)"
	for d in text rand; do
		case $d in
		text) printf 'chart\tlink-text\tFull send of text (zstd -1 ratio %s) over ssh, by link\tMiB/s of data\thigher\t%s\n' "$ratio" "$note" ;;
		rand) printf 'chart\tlink-rand\tFull send of incompressible data over ssh, by link\tMiB/s of data\thigher\t%s\n' "$note" ;;
		esac
		for rate in $LINK_RATES; do
			for mth in $methods; do
				w=$(med "link/$rate/$d/$mth" wall_s)
				[ "$w" = null ] && continue
				case $mth in
				bare) s="bare zfs send | ssh" ;;
				hand) s="hand zstd -1 pipeline" ;;
				zrep-*) s="zrep --compress ${mth#zrep-}" ;;
				*) s=$mth ;;
				esac
				printf 'bar\tlink-%s\t%s\t%s\t%s\n' "$d" "$(linkname "$rate")" "$s" "$(calc %.1f "$LINK_MIB / $w")"
			done
		done
	done
} >"$fig"
# shellcheck disable=SC2086 # BENCH_FIGURES is a list of files
(cd "$REPO" && go run ./bench/charts -o "$BENCH_CHARTS" ${BENCH_FIGURES:-} "$fig") | sed 's/^/chart: /'
