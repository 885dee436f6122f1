#!/usr/bin/env bash
# zrep's benchmarks (issue #5): zrep and its comparisons measured in the
# same run, alternating, medians of BENCH_REPS, with ratios and targets.
#
#   make bench                 # or: bench/run.sh (as root)
#
# Scenarios (BENCH_SCENARIOS, default "noop inc rate plan"):
#   noop  zrep run -r over ssh on BENCH_FS filesystems x BENCH_SNAPS snapshots
#         already replicated; vs the bare listings it needs and syncoid
#   inc   one new snapshot on each of BENCH_INC_FS filesystems, locally;
#         zrep --jobs for each of BENCH_JOBS vs syncoid -r --no-sync-snap
#   rate  full send of BENCH_RATE_MIB MiB (and BENCH_SMALL_MIB MiB) of
#         incompressible data, locally and over ssh: the whole zrep run
#         process against the bare zfs send | [ssh] zfs receive process,
#         BENCH_RATE_REPS alternating rounds; over ssh also against the bare
#         pipe with ssh's default cipher and with AES-GCM, and syncoid;
#         zrep's own CPU and peak RSS
#   plan  the Go planning benchmark (bench/plan_test.go),
#         BENCH_PLAN_FS x BENCH_PLAN_SNAPS
#   prune zrep prune of BENCH_PRUNE_FS x BENCH_PRUNE_SNAPS snapshots vs a
#         shell loop of single zfs destroy (bench/prune.sh; its own table,
#         after the others'; not in the default list: it takes ~30 min on
#         zfs-fuse)
#   link  full sends over a shaped link (tbf in a network namespace), zrep
#         with each --compress vs the bare pipe, a hand zstd pipeline and
#         syncoid; not in the default set (long): see bench/link.sh
#
# The figures go to BENCH_CHARTS (default build/bench/): figures.tsv and one
# SVG chart per figure kind (bench/charts), linked from the table's end.
#
# Everything runs on the lab (lab/lab.sh): zfs-fuse with throw-away
# file-backed pools, destroyed at the end, and a bench-private sshd on
# 127.0.0.1:BENCH_SSH_PORT with LogLevel VERBOSE, whose log counts logins.
# Nothing but 127.0.0.1 is contacted.
set -euo pipefail

cd "$(dirname "$0")/.."
REPO=$(pwd)
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin

BENCH_FS=${BENCH_FS:-200}
BENCH_SNAPS=${BENCH_SNAPS:-10}
BENCH_INC_FS=${BENCH_INC_FS:-200}
BENCH_JOBS=${BENCH_JOBS:-"1 2 4"}
BENCH_REPS=${BENCH_REPS:-3}
BENCH_RATE_MIB=${BENCH_RATE_MIB:-1024}
BENCH_SMALL_MIB=${BENCH_SMALL_MIB:-100}
BENCH_PLAN_FS=${BENCH_PLAN_FS:-10000}
BENCH_PLAN_SNAPS=${BENCH_PLAN_SNAPS:-100}
BENCH_SCENARIOS=${BENCH_SCENARIOS:-"noop inc rate plan"}
BENCH_SYNCOID=${BENCH_SYNCOID:-1}
BENCH_SSH_PORT=${BENCH_SSH_PORT:-22023}
BENCH_KEEP=${BENCH_KEEP:-0}
BENCH_RATE_REPS=${BENCH_RATE_REPS:-5}
BENCH_CHARTS=${BENCH_CHARTS:-$REPO/build/bench}

die() { echo "bench: $*" >&2; exit 1; }
say() { echo "bench: $(date +%T) $*" >&2; }
has() { [[ " $BENCH_SCENARIOS " == *" $1 "* ]]; }

[ "$(id -u)" = 0 ] || die "must run as root (zfs-fuse and sshd need it)"

# The link scenario (issue #13) has a set-up of its own, a network namespace
# with a shaped loopback: bench/link.sh, which prints its own table.
if has link; then
	bench/link.sh
	BENCH_SCENARIOS=${BENCH_SCENARIOS/link/}
	[ -z "${BENCH_SCENARIOS// /}" ] && exit 0
fi

# --- the table ----------------------------------------------------------------

# report prints the table from WORK's results.
report() {

med() { # med FILE LABEL FIELD: the median, or null
	jq -s --arg l "$2" --arg f "$3" '[.[]|select(.label==$l)|.[$f]|select(.!=null)]|sort|
		if length==0 then null elif length%2==1 then .[length/2|floor] else (.[length/2-1]+.[length/2])/2 end' "$1"
}
num() { [ "$1" != null ] && [ -n "$1" ]; }
# pairs A B: the median over rounds of A's wall time / B's, the i-th run of
# A with the i-th of B (each round runs both, one after the other).
pairs() {
	jq -s --arg a "$1" --arg b "$2" '[.[]|select(.label==$a)|.wall_s] as $x | [.[]|select(.label==$b)|.wall_s] as $y |
		[range(0; [($x|length), ($y|length)]|min) | $x[.] / $y[.]] | sort |
		if length==0 then null elif length%2==1 then .[length/2|floor] else (.[length/2-1]+.[length/2])/2 end' "$RESULTS"
}
GCM_NAME=aes128-gcm
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
count() { jq -s --arg l "$1" '[.[]|select(.label==$l)]|length' "$RESULTS"; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo met; else echo MISSED; fi; }
row() { printf '%-44s %-26s %-24s %s\n' "$@"; }

echo
echo "== zrep benchmarks (medians of the rounds; each zrep row measured alternately with its comparisons) =="
cat "$WORK/versions.txt"
echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at end"
cat "$SETUP" 2>/dev/null || true
echo
row "measure" "result" "target" "verdict"
row "-------" "------" "------" "-------"

if has noop; then
	z=$(med "$RESULTS" noop/zrep wall_s) l=$(med "$RESULTS" noop/listings wall_s)
	echo "1. no-op, $BENCH_FS fs x $BENCH_SNAPS snapshots, push over ssh ($(count noop/zrep) rounds)"
	row "  zrep run -r wall" "$(calc '%.2f s' "$z")" "" ""
	row "  bare listings (src local & dst ssh, parallel)" "$(calc '%.2f s' "$l")" "" ""
	row "  zrep / bare listings" "$(calc '%.2fx' "$z/$l")" "<= 1.5x" "$(verdict "$z/$l <= 1.5")"
	lg=$(med "$EXTRA" noop/zrep logins)
	row "  ssh logins (1 remote side)" "$lg" "1" "$(verdict "$lg == 1")"
	zs=$(med "$EXTRA" noop/zrep zfs_source) zd=$(med "$EXTRA" noop/zrep zfs_destination)
	row "  zfs invocations source / destination" "$zs / $zd" "<= 2 / <= 2" "$(verdict "$zs <= 2 && $zd <= 2")"
	rr=$(med "$RESULTS" noop/zrep-remote-remote wall_s) lr=$(med "$EXTRA" noop/zrep-remote-remote logins)
	row "  remote->remote: wall, ssh logins" "$(calc '%.2f s' "$rr"), $lr logins" "2 logins" "$(verdict "$lr == 2")"
	zs=$(med "$EXTRA" noop/zrep-remote-remote zfs_source) zd=$(med "$EXTRA" noop/zrep-remote-remote zfs_destination)
	row "  remote->remote zfs invocations src / dst" "$zs / $zd" "<= 2 / <= 2" "$(verdict "$zs <= 2 && $zd <= 2")"
	if [ "$BENCH_SYNCOID" = 1 ]; then
		s=$(med "$RESULTS" noop/syncoid wall_s)
		row "  syncoid -r --no-sync-snap wall" "$(calc '%.2f s' "$s") ($(med "$EXTRA" noop/syncoid logins) logins)" "" ""
		row "  syncoid / zrep" "$(calc '%.1fx' "$s/$z")" "(information)" ""
	fi
fi

if has inc; then
	echo "2. incremental, 1 new snapshot on $BENCH_INC_FS (+ root) fs, local ($BENCH_REPS rounds)"
	s=$(med "$RESULTS" inc/syncoid wall_s)
	best= bestj=
	for j in $BENCH_JOBS; do
		z=$(med "$RESULTS" "inc/zrep-j$j" wall_s)
		if num "$s"; then
			row "  zrep --jobs $j wall" "$(calc '%.2f s' "$z")" "syncoid/zrep >= 3x" "$(calc '%.2fx' "$s/$z") $(verdict "$s/$z >= 3")"
		else
			row "  zrep --jobs $j wall" "$(calc '%.2f s' "$z")" "" ""
		fi
		if [ -z "$best" ] || awk "BEGIN { exit !($z < $best) }"; then best=$z bestj=$j; fi
	done
	num "$s" && row "  syncoid -r --no-sync-snap wall" "$(calc '%.2f s' "$s")" "" ""
	row "  fastest --jobs" "$bestj" "" ""
fi

if has rate; then
	B=$(med "$EXTRA" rate/stream bytes) SB=$(med "$EXTRA" rate/small bytes)
	echo "3. line rate, full send of $BENCH_RATE_MIB MiB incompressible ($(calc '%.0f' "$B/1048576") MiB stream, $(count rate/local-zrep) rounds)"
	mibs() { calc '%.0f MiB/s' "$B/1048576/$(med "$RESULTS" "$1" wall_s)"; }
	row "  zfs send > /dev/null" "$(mibs rate/send-only)" "" ""
	row "  zfs send | ssh cat > /dev/null" "$(mibs rate/ssh-cat)" "(ssh's default cipher)" ""
	row "  zfs send | ssh -c $GCM_NAME cat" "$(mibs rate/ssh-cat-gcm)" "" ""
	for side in local ssh; do
		bw=$(med "$RESULTS" "rate/$side-bare" wall_s) zw=$(med "$RESULTS" "rate/$side-zrep" wall_s)
		row "  $side: bare zfs send | receive" "$(mibs "rate/$side-bare")" "" ""
		row "  $side: zrep run" "$(mibs "rate/$side-zrep")" "" ""
		row "  $side: zrep / bare throughput" "$(calc '%.2fx' "$bw/$zw")" ">= 0.97x" "$(verdict "$bw/$zw >= 0.97")"
		zc=$(jq -s --arg l "rate/$side-zrep" '[.[]|select(.label==$l)|.self_user_s+.self_sys_s]|sort|.[length/2|floor]' "$RESULTS")
		# zrep's own CPU (its process only, not its children) against the
		# CPU of the bare pipeline it replaces: the bare run's children
		# (zfs send/receive, the ssh client) plus the zfs-fuse daemon,
		# which does send's and receive's work. sshd is in neither.
		bc_=$(jq -s --arg l "rate/$side-bare" '[.[]|select(.label==$l)|.children_user_s+.children_sys_s+.daemon_s]|sort|.[length/2|floor]' "$RESULTS")
		row "  $side: zrep own CPU / bare pipeline CPU" "$(calc '%.2f s / %.2f s = %.1f%%' "$zc, $bc_, 100*$zc/$bc_")" "<= 5%" "$(verdict "$zc/$bc_ <= 0.05")"
		zu=$(jq -s --arg l "rate/$side-zrep" '[.[]|select(.label==$l)|.self_user_s]|sort|.[length/2|floor]' "$RESULTS")
		row "  $side: zrep own CPU per GiB (user+sys)" "$(calc '%.2f s (user %.2f s)' "$zc*1073741824/$B, $zu*1073741824/$B")" "" ""
		h=$(jq -s --arg l "rate/$side-zrep" '[.[]|select(.label==$l)|.self_hwm_kib]|max' "$RESULTS")
		row "  $side: zrep peak RSS, $BENCH_RATE_MIB MiB" "$(calc '%.1f MiB' "$h/1024")" "<= 50 MiB" "$(verdict "$h/1024 <= 50")"
		h=$(jq -s --arg l "rate/small-$side-zrep" '[.[]|select(.label==$l)|.self_hwm_kib]|max' "$RESULTS")
		row "  $side: zrep peak RSS, $BENCH_SMALL_MIB MiB" "$(calc '%.1f MiB' "$h/1024")" "<= 50 MiB" "$(verdict "$h/1024 <= 50")"
	done
	# The whole command: zrep run's process against the bare pipeline's,
	# wall time, the median of each round's ratio (the two run back to back).
	echo "   whole command, zrep run / bare pipeline wall time (median of per-round ratios)"
	w=$(pairs rate/local-zrep rate/local-bare)
	row "  local: zrep / zfs send | zfs receive" "$(calc '%.3fx' "$w")" "<= 1.05x" "$(verdict "$w <= 1.05")"
	w=$(pairs rate/ssh-zrep rate/ssh-bare)
	row "  ssh: zrep / bare, ssh's default cipher" "$(calc '%.3fx' "$w")" "<= 1.05x" "$(verdict "$w <= 1.05")"
	row "  ssh: bare (default cipher) / zrep throughput" "$(calc '%.2fx' "1/$w")" ">= 1.5x (AES CPU)" "$(verdict "1/$w >= 1.5")"
	w=$(pairs rate/ssh-zrep rate/ssh-bare-gcm)
	if num "$w"; then
		row "  ssh: zrep / bare with ssh -c $GCM_NAME" "$(calc '%.3fx' "$w")" "<= 1.05x" "$(verdict "$w <= 1.05")"
	fi
	if [ "$(count rate/ssh-syncoid)" -gt 0 ]; then
		row "  ssh: syncoid full send" "$(mibs rate/ssh-syncoid)" "" ""
		row "  ssh: syncoid / zrep wall" "$(calc '%.2fx' "$(pairs rate/ssh-syncoid rate/ssh-zrep)")" "(information)" ""
	fi
	bw=$(med "$RESULTS" rate/small-local-bare wall_s) zw=$(med "$RESULTS" rate/small-local-zrep wall_s)
	row "  local $BENCH_SMALL_MIB MiB: bare / zrep MiB/s" "$(calc '%.0f / %.0f' "$SB/1048576/$bw, $SB/1048576/$zw")" "" ""
	row "  lzop -1 size ratio of the stream" "$(med "$EXTRA" rate/lzop ratio)" "(1.0: compression cannot help)" ""
fi

if has plan && [ -s "$PLAN_OUT" ]; then
	echo "4. planning cost (go test -bench ./bench/, one op each; cpu = own user+sys, RSS = own VmHWM)"
	while read -r name _ ns _ cpu _ rss _ bytes _ allocs _; do
		case $name in Benchmark*) ;; *) continue ;; esac
		name=${name%-*}
		tgt="" v=""
		if [[ $name == *"fs=$BENCH_PLAN_FS/"* ]] && [[ $name == BenchmarkPlan/* ]]; then
			tgt="<= 1 s, <= 200 MiB"
			v=$(verdict "$cpu <= 1 && $rss <= 200")
		fi
		row "  ${name#Benchmark}" "$(calc '%.2f s cpu, %.0f MiB' "$cpu, $rss")" "$tgt" "$v"
	done <"$PLAN_OUT"
fi
echo
echo "raw results: $RESULTS"
figures
}

# figures writes this run's medians as chart records (bench/charts) to
# BENCH_CHARTS/figures.tsv and draws the charts there, together with the
# figures files named in BENCH_FIGURES (earlier runs, e.g. other tree sizes).
figures() {
	local out=$BENCH_CHARTS/figures.tsv note g
	mkdir -p "$BENCH_CHARTS"
	# The run's own zrep commit, date and load, also for BENCH_REPORT.
	note="zrep $(sed -n 's/^zrep: .*(\(.*\))$/\1/p' "$WORK/versions.txt"), $(date -r "$RESULTS" +%F), load $(sed -n 's/^load: *\([0-9.]*\) .*/\1/p' "$WORK/versions.txt") at the start; medians of $BENCH_REPS alternating rounds"
	bar() { printf 'bar\t%s\t%s\t%s\t%s\n' "$@"; }
	{
		echo "# bench/run.sh figures (bench/charts draws them)"
		if has noop; then
			printf 'chart\tnoop\tNo-op zrep run -r over ssh, by tree size\tseconds, wall\tlower\t%s\n' "$note"
			g="$BENCH_FS fs × $BENCH_SNAPS snapshots"
			bar noop "$g" "zrep run -r" "$(med "$RESULTS" noop/zrep wall_s)"
			bar noop "$g" "bare listings" "$(med "$RESULTS" noop/listings wall_s)"
			[ "$BENCH_SYNCOID" = 1 ] && bar noop "$g" "syncoid -r" "$(med "$RESULTS" noop/syncoid wall_s)"
		fi
		if has inc; then
			printf 'chart\tincremental\tOne new snapshot on every filesystem, local, by tree size\tseconds, wall\tlower\t%s\n' "$note"
			g="$((BENCH_INC_FS + 1)) fs"
			for j in $BENCH_JOBS; do bar incremental "$g" "zrep --jobs $j" "$(med "$RESULTS" "inc/zrep-j$j" wall_s)"; done
			[ "$BENCH_SYNCOID" = 1 ] && bar incremental "$g" "syncoid -r" "$(med "$RESULTS" inc/syncoid wall_s)"
		fi
		if has rate; then
			local B mib
			B=$(med "$EXTRA" rate/stream bytes)
			mib() { local w; w=$(med "$RESULTS" "$1" wall_s); num "$w" && calc '%.1f' "$B/1048576/$w" || echo null; }
			printf 'chart\tline-rate\tFull send of %s MiB, incompressible, whole command\tMiB/s\thigher\t%s\n' "$BENCH_RATE_MIB" "${note/ $BENCH_REPS alternating/ $(count rate/local-zrep) alternating}"
			bar line-rate local "bare zfs send | zfs receive" "$(mib rate/local-bare)"
			bar line-rate local "zrep run" "$(mib rate/local-zrep)"
			g="over ssh (loopback)"
			bar line-rate "$g" "ssh cat, default cipher" "$(mib rate/ssh-cat)"
			bar line-rate "$g" "ssh cat, $GCM_NAME" "$(mib rate/ssh-cat-gcm)"
			bar line-rate "$g" "bare, default cipher" "$(mib rate/ssh-bare)"
			bar line-rate "$g" "bare, ssh -c $GCM_NAME" "$(mib rate/ssh-bare-gcm)"
			bar line-rate "$g" "syncoid" "$(mib rate/ssh-syncoid)"
			bar line-rate "$g" "zrep run" "$(mib rate/ssh-zrep)"
		fi
		if has plan && [ -s "$PLAN_OUT" ]; then
			local pnote=${note%%;*}"; go test -bench ./bench/, one operation each"
			printf 'chart\tplanning\tPlanning cost by filesystems × snapshots (CPU)\tCPU seconds\tlower\t%s\n' "$pnote"
			printf 'chart\tplanning-rss\tPlanning cost by filesystems × snapshots (memory)\tpeak RSS, MiB\tlower\t%s\n' "$pnote"
			local name cpu rss fs sn what
			while read -r name _ _ _ cpu _ rss _; do
				[[ $name == Benchmark*/fs=*/snaps=* ]] || continue
				name=${name%-*}
				fs=${name#*/fs=} fs=${fs%%/*}
				sn=${name#*/snaps=} sn=${sn%%/*}
				case $name in
				BenchmarkPlan/*/noop) what="plan, no-op" ;;
				BenchmarkPlan/*/incremental) what="plan, one new snapshot per fs" ;;
				BenchmarkListing/*) what="listing and parsing" ;;
				BenchmarkParseGet/*) what="parsing alone" ;;
				*) continue ;;
				esac
				g="$(echo "$fs" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta') fs × $sn snapshots"
				bar planning "$g" "$what" "$cpu"
				bar planning-rss "$g" "$what" "$rss"
			done <"$PLAN_OUT"
		fi
	} >"$out"
	# shellcheck disable=SC2086 # BENCH_FIGURES is a list of files
	(cd "$REPO" && go run ./bench/charts -o "$BENCH_CHARTS" ${BENCH_FIGURES:-} "$out") | sed 's/^/chart: /'
}

# BENCH_REPORT=DIR prints the table again from a run kept with BENCH_KEEP=1.
if [ -n "${BENCH_REPORT:-}" ]; then
	WORK=$BENCH_REPORT RESULTS=$BENCH_REPORT/results.jsonl EXTRA=$BENCH_REPORT/extra.jsonl
	SETUP=$BENCH_REPORT/setup.txt PLAN_OUT=$BENCH_REPORT/plan.txt
	report

# --- 5. pruning ------------------------------------------------------------------

if has prune; then
	say "prune: bench/prune.sh (BENCH_PRUNE_FS=${BENCH_PRUNE_FS:-100} BENCH_PRUNE_SNAPS=${BENCH_PRUNE_SNAPS:-100})"
	bench/prune.sh
fi
	exit 0
fi

# --- the lab, the tools -----------------------------------------------------

eval "$(lab/lab.sh up)"
if ! command -v syncoid >/dev/null || ! command -v mbuffer >/dev/null || ! command -v pv >/dev/null || ! command -v lzop >/dev/null; then
	say "installing sanoid (syncoid) with mbuffer, pv and lzop"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sanoid mbuffer pv lzop >&2 ||
		{ apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sanoid mbuffer pv lzop >&2; }
fi
command -v jq >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >&2

WORK=$(mktemp -d /tmp/zrep-bench.XXXXXX)
ZREP=$REPO/bin/zrep
# Always the working tree's zrep, never a binary left from before.
make -s -C "$REPO" build >/dev/null
MEASURE=$WORK/measure
go build -o "$MEASURE" ./bench/measure
RESULTS=$WORK/results.jsonl
EXTRA=$WORK/extra.jsonl
PLAN_OUT=$WORK/plan.txt
LOGS=$WORK/logs
mkdir -p "$LOGS" "$WORK/lock"
: >"$RESULTS"
: >"$EXTRA"

SP=zbs$$ # source pool
DP=zbd$$ # destination pool
SSHD_PID= SSHD2_PID=
cleanup() {
	set +e
	for p in "$SP" "$DP"; do
		if zpool list -H -o name "$p" >/dev/null 2>&1; then
			zfs set mountpoint=none "$p/rate" >/dev/null 2>&1
			zpool destroy -f "$p" >/dev/null 2>&1 || { sleep 2; zpool destroy -f "$p"; }
		fi
		rm -f "/var/tmp/$p.img"
	done
	[ -n "$SSHD_PID" ] && kill "$SSHD_PID" 2>/dev/null
	[ -n "$SSHD2_PID" ] && kill "$SSHD2_PID" 2>/dev/null
	if [ "$BENCH_KEEP" = 1 ]; then echo "bench: results and logs kept in $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The bench-private sshd: the lab's keys and user, VERBOSE logging.
. bench/sshd.sh
KEY=$ZREP_LAB_SSH_KEY
KH=$WORK/known_hosts
SSHD_LOG=$WORK/sshd.log
SSHD_PID=$(bench_sshd sshd "$BENCH_SSH_PORT" "MaxStartups 100:30:200" "MaxSessions 100" "LogLevel VERBOSE")

# syncoid 2.1 lists snapshots with `zfs get -t snapshot`, which zfs-fuse
# lacks, and its fallback for that is broken for a remote side (it puts
# "ssh ..." in the command twice). A shim first on syncoid's PATH drops -t
# from `zfs get` (zfs-fuse lists snapshots with -d 1 anyway, and syncoid
# keeps only the fs@snap lines). Remote sessions get it from a second
# bench sshd on BENCH_SSH_PORT+1 whose sessions have it first on PATH
# (sshd's SetEnv); zrep's sshd has no shim.
SHIM=$WORK/shim
mkdir -p "$SHIM"
install -m 755 bench/syncoid-zfs-shim "$SHIM/zfs"
SPORT=$((BENCH_SSH_PORT + 1))
SSHD2_LOG=$WORK/sshd-syncoid.log
SSHD2_PID=$(bench_sshd sshd-syncoid "$SPORT" "MaxStartups 100:30:200" "MaxSessions 100" "LogLevel VERBOSE" \
	"SetEnv PATH=$SHIM:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
REMOTE=$ZREP_LAB_SSH_USER@127.0.0.1
SSH=(ssh -p "$BENCH_SSH_PORT" -i "$KEY" -o UserKnownHostsFile="$KH" -o BatchMode=yes)
ZREP_SSH=(--ssh-port "$BENCH_SSH_PORT" -i "$KEY" --ssh-option UserKnownHostsFile="$KH" --ssh-option BatchMode=yes)
SYNCOID_SSH=(--sshkey "$KEY" --sshport "$SPORT" --sshoption UserKnownHostsFile="$KH" --sshoption BatchMode=yes)
ZREP_RUN=("$ZREP" run -q --progress never --lock-dir "$WORK/lock")
"${SSH[@]}" "$REMOTE" true || die "the bench sshd on 127.0.0.1:$BENCH_SSH_PORT refuses the lab key (see $SSHD_LOG)"

logins() { cat "$SSHD_LOG" "$SSHD2_LOG" 2>/dev/null | grep -c 'Accepted publickey' || true; }
daemon_pid() { pgrep -x zfs-fuse | head -1; }

# m LABEL CMD...: run CMD under the measure helper, append its JSON line
# to RESULTS; stdout and stderr go to a log; a failure ends the bench.
N=0
m() {
	local label=$1
	shift
	N=$((N + 1))
	local log="$LOGS/$N-${label//\//_}.log"
	if ! MEASURE_OUT=$RESULTS "$MEASURE" -daemon "$(daemon_pid)" -label "$label" -- "$@" >"$log" 2>&1 </dev/null; then
		tail -20 "$log" >&2
		die "$label failed (log: $log; BENCH_KEEP=1 keeps it)"
	fi
}
extra() { jq -cn --arg l "$1" --arg k "$2" --argjson v "$3" '{"label":$l,($k):$v}' >>"$EXTRA"; }

# --- versions ---------------------------------------------------------------

{
	echo "zrep:     $("$ZREP" version 2>&1 | head -1) ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?'))"
	echo "zfs-fuse: $(dpkg-query -W -f '${Version}' zfs-fuse 2>/dev/null || echo '?')"
	echo "syncoid:  $(syncoid --version 2>&1 | head -1)"
	echo "ssh:      $(ssh -V 2>&1)"
	echo "machine:  $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
	echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min) at start"
} | tee "$WORK/versions.txt"

# --- pools --------------------------------------------------------------------

pool_gib=$(((BENCH_RATE_MIB * 2 + 1023) / 1024 + 2))
for p in "$SP" "$DP"; do
	truncate -s "${pool_gib}G" "/var/tmp/$p.img"
	zpool create -O mountpoint=none "$p" "/var/tmp/$p.img" 2>/dev/null || zpool create "$p" "/var/tmp/$p.img"
	zfs set mountpoint=none "$p"
done

# tree POOL/NAME FS SNAPS: NAME with FS children f00001.., SNAPS recursive
# snapshots s1.., replicated to the destination with zfs send -R.
SETUP=$WORK/setup.txt
tree() {
	local root=$1 nfs=$2 nsnaps=$3 t0 t1 t2 t3 i s
	t0=$(date +%s.%N)
	zfs create -o mountpoint=none "$SP/$root"
	for i in $(seq -f '%05g' 1 "$nfs"); do zfs create "$SP/$root/f$i"; done
	t1=$(date +%s.%N)
	for s in $(seq 1 "$nsnaps"); do zfs snapshot -r "$SP/$root@s$s"; done
	t2=$(date +%s.%N)
	zfs send -R "$SP/$root@s$nsnaps" | zfs receive -u -d "$DP"
	t3=$(date +%s.%N)
	printf 'setup %-5s %5d filesystems: zfs create %.1f s, %d x zfs snapshot -r %.1f s, zfs send -R | receive %.1f s\n' \
		"$root" "$nfs" "$(echo "$t1 - $t0" | bc)" "$nsnaps" "$(echo "$t2 - $t1" | bc)" "$(echo "$t3 - $t2" | bc)" | tee -a "$SETUP" >&2
}

# argv_counts LABEL LOG: zfs invocations per side from ZREP_ARGV_LOG.
argv_counts() {
	extra "$1" zfs_source "$(jq -s '[.[]|select(.role=="source")]|length' "$2")"
	extra "$1" zfs_destination "$(jq -s '[.[]|select(.role=="destination")]|length' "$2")"
}

# --- 1. no-op at scale --------------------------------------------------------

if has noop; then
	say "noop: building $BENCH_FS filesystems x $BENCH_SNAPS snapshots"
	tree noop "$BENCH_FS" "$BENCH_SNAPS"
	# The listing commands zrep runs, replayed bare: the source's locally,
	# the destination's over ssh, at the same time.
	"${ZREP_RUN[@]}" -r "${ZREP_SSH[@]}" "$SP/noop" "$REMOTE:$DP/noop" >"$LOGS/noop-warmup.log" 2>&1 || true
	ZREP_ARGV_LOG=$WORK/argv-probe.jsonl "${ZREP_RUN[@]}" -r "${ZREP_SSH[@]}" "$SP/noop" "$REMOTE:$DP/noop" >>"$LOGS/noop-warmup.log" 2>&1 ||
		die "zrep no-op failed: $(tail -5 "$LOGS/noop-warmup.log")"
	src_get=$(jq -r 'select(.role=="source" and .argv[1]=="get") | .argv | @sh' "$WORK/argv-probe.jsonl")
	dst_get=$(jq -r 'select(.role=="destination" and .argv[1]=="get") | .argv | @sh' "$WORK/argv-probe.jsonl")
	[ -n "$src_get" ] && [ -n "$dst_get" ] || die "no listing command in zrep's argv log"
	dst_remote=$(printf '%q ' "${SSH[@]}" "$REMOTE")
	cat >"$WORK/listings.sh" <<EOF
#!/bin/sh
set -e
$src_get >/dev/null &
$dst_remote $(printf '%q' "$dst_get") >/dev/null
wait \$!
EOF
	echo "listing commands: $src_get / $dst_get" >>"$SETUP"
	for r in $(seq 1 "$BENCH_REPS"); do
		say "noop: round $r/$BENCH_REPS"
		l0=$(logins)
		rm -f "$WORK/argv.jsonl"
		m noop/zrep env ZREP_ARGV_LOG="$WORK/argv.jsonl" "${ZREP_RUN[@]}" -r "${ZREP_SSH[@]}" "$SP/noop" "$REMOTE:$DP/noop"
		extra noop/zrep logins $(($(logins) - l0))
		argv_counts noop/zrep "$WORK/argv.jsonl"

		l0=$(logins)
		m noop/listings sh "$WORK/listings.sh"
		extra noop/listings logins $(($(logins) - l0))

		l0=$(logins)
		rm -f "$WORK/argv.jsonl"
		m noop/zrep-remote-remote env ZREP_ARGV_LOG="$WORK/argv.jsonl" "${ZREP_RUN[@]}" -r "${ZREP_SSH[@]}" "$REMOTE:$SP/noop" "$REMOTE:$DP/noop"
		extra noop/zrep-remote-remote logins $(($(logins) - l0))
		argv_counts noop/zrep-remote-remote "$WORK/argv.jsonl"

		if [ "$BENCH_SYNCOID" = 1 ]; then
			l0=$(logins)
			m noop/syncoid env PATH="$SHIM:$PATH" syncoid -r --no-sync-snap --quiet --no-privilege-elevation "${SYNCOID_SSH[@]}" "$SP/noop" "$REMOTE:$DP/noop"
			extra noop/syncoid logins $(($(logins) - l0))
		fi
	done
fi

# --- 2. incremental at scale --------------------------------------------------

if has inc; then
	say "inc: building $BENCH_INC_FS filesystems"
	tree inc "$BENCH_INC_FS" 1
	variants=()
	for j in $BENCH_JOBS; do variants+=("zrep-j$j"); done
	[ "$BENCH_SYNCOID" = 1 ] && variants+=(syncoid)
	n=0
	for r in $(seq 1 "$BENCH_REPS"); do
		say "inc: round $r/$BENCH_REPS"
		for v in "${variants[@]}"; do
			n=$((n + 1))
			zfs snapshot -r "$SP/inc@i$n"
			case $v in
			zrep-j*) m "inc/$v" "${ZREP_RUN[@]}" -r --jobs "${v#zrep-j}" "$SP/inc" "$DP/inc" ;;
			syncoid) m inc/syncoid env PATH="$SHIM:$PATH" syncoid -r --no-sync-snap --quiet "$SP/inc" "$DP/inc" ;;
			esac
			got=$(zfs get -H -r -o name guid "$DP/inc" | grep -c "@i$n$" || true)
			[ "$got" = $((BENCH_INC_FS + 1)) ] || die "inc/$v: the destination has @i$n on $got filesystems, want $((BENCH_INC_FS + 1))"
		done
	done
fi

# --- 3. line rate -------------------------------------------------------------

if has rate; then
	say "rate: writing $BENCH_RATE_MIB MiB and $BENCH_SMALL_MIB MiB of random data"
	mnt=$WORK/mnt
	t0=$(date +%s.%N)
	for sz in "$BENCH_RATE_MIB" "$BENCH_SMALL_MIB"; do
		zfs create -o mountpoint="$mnt$sz" "$SP/rate$sz"
		dd if=/dev/urandom of="$mnt$sz/data" bs=1M count="$sz" status=none
		zfs set mountpoint=none "$SP/rate$sz"
		zfs snapshot "$SP/rate$sz@full"
	done
	printf 'setup rate: wrote %d+%d MiB through the zfs-fuse mount in %.1f s\n' "$BENCH_RATE_MIB" "$BENCH_SMALL_MIB" "$(echo "$(date +%s.%N) - $t0" | bc)" | tee -a "$SETUP" >&2
	stream_bytes=$(zfs send "$SP/rate$BENCH_RATE_MIB@full" | wc -c)
	small_bytes=$(zfs send "$SP/rate$BENCH_SMALL_MIB@full" | wc -c)
	echo "rate stream bytes: $stream_bytes ($BENCH_RATE_MIB MiB dataset), $small_bytes ($BENCH_SMALL_MIB MiB dataset)" >>"$SETUP"
	extra rate/stream bytes "$stream_bytes"
	extra rate/small bytes "$small_bytes"

	# The parts alone, once per round: send to /dev/null, receive from a
	# file, ssh's line rate (cat over ssh), and what lzop would save.
	zfs send "$SP/rate$BENCH_SMALL_MIB@full" >"$WORK/small.stream"
	lz=$(lzop -1 -c <"$WORK/small.stream" | wc -c)
	extra rate/lzop ratio "$(echo "scale=4; $lz / $small_bytes" | bc)"
	# zrep asks for AES-GCM first on a CPU with AES instructions; the bare
	# pipe is measured with ssh's default cipher and with that one.
	GCM=aes128-gcm@openssh.com
	for r in $(seq 1 "$BENCH_RATE_REPS"); do
		say "rate: round $r/$BENCH_RATE_REPS"
		s=$SP/rate$BENCH_RATE_MIB@full
		d=$DP/rate
		m rate/send-only sh -c "zfs send $s >/dev/null"
		m rate/ssh-cat sh -c "zfs send $s | $(printf '%q ' "${SSH[@]}") $REMOTE 'cat >/dev/null'"
		m rate/ssh-cat-gcm sh -c "zfs send $s | $(printf '%q ' "${SSH[@]}" -c "$GCM") $REMOTE 'cat >/dev/null'"
		m rate/local-bare sh -c "zfs send $s | zfs receive -u $d"
		zfs destroy -r "$d"
		m rate/local-zrep "${ZREP_RUN[@]}" "$SP/rate$BENCH_RATE_MIB" "$d"
		zfs destroy -r "$d"
		m rate/ssh-bare sh -c "zfs send $s | $(printf '%q ' "${SSH[@]}") $REMOTE zfs receive -u $d"
		zfs destroy -r "$d"
		m rate/ssh-zrep "${ZREP_RUN[@]}" "${ZREP_SSH[@]}" "$SP/rate$BENCH_RATE_MIB" "$REMOTE:$d"
		zfs destroy -r "$d"
		m rate/ssh-bare-gcm sh -c "zfs send $s | $(printf '%q ' "${SSH[@]}" -c "$GCM") $REMOTE zfs receive -u $d"
		zfs destroy -r "$d"
		if [ "$BENCH_SYNCOID" = 1 ]; then
			m rate/ssh-syncoid env PATH="$SHIM:$PATH" syncoid --no-sync-snap --quiet --no-privilege-elevation "${SYNCOID_SSH[@]}" "$SP/rate$BENCH_RATE_MIB" "$REMOTE:$d"
			zfs destroy -r "$d"
		fi
		m rate/small-local-bare sh -c "zfs send $SP/rate$BENCH_SMALL_MIB@full | zfs receive -u $d"
		zfs destroy -r "$d"
		m rate/small-local-zrep "${ZREP_RUN[@]}" "$SP/rate$BENCH_SMALL_MIB" "$d"
		zfs destroy -r "$d"
		m rate/small-ssh-zrep "${ZREP_RUN[@]}" "${ZREP_SSH[@]}" "$SP/rate$BENCH_SMALL_MIB" "$REMOTE:$d"
		zfs destroy -r "$d"
	done
fi

# --- 4. planning cost ---------------------------------------------------------

if has plan; then
	say "plan: go test -bench (BENCH_PLAN_FS=$BENCH_PLAN_FS BENCH_PLAN_SNAPS=$BENCH_PLAN_SNAPS)"
	BENCH_PLAN_FS=$BENCH_PLAN_FS BENCH_PLAN_SNAPS=$BENCH_PLAN_SNAPS \
		go test -run '^$' -bench . -benchtime 1x -count 1 -timeout 60m ./bench/ | tee "$PLAN_OUT" >&2
fi

report

# --- 5. pruning ------------------------------------------------------------------

if has prune; then
	say "prune: bench/prune.sh (BENCH_PRUNE_FS=${BENCH_PRUNE_FS:-100} BENCH_PRUNE_SNAPS=${BENCH_PRUNE_SNAPS:-100})"
	bench/prune.sh
fi
