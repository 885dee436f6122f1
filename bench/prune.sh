#!/usr/bin/env bash
# Pruning at scale (issue #12): a source tree of BENCH_PRUNE_FS filesystems
# with BENCH_PRUNE_SNAPS+1 snapshots each, thinned to last=1 by
# `zrep prune -r --keep-source last=1` (BENCH_PRUNE_FS x BENCH_PRUNE_SNAPS
# snapshots destroyed, default 100 x 100 = 10,000), against a shell loop of
# single `zfs destroy` calls over an identical tree. Prints the zfs commands
# each ran and the wall time, and the ratio.
#
#   bench/prune.sh            # as root; run.sh runs it for the scenario "prune"
#
# On zfs-fuse, which has no `zfs destroy fs@a,b,c`, zrep also destroys one
# snapshot per command, so the figure is zrep's overhead over the bare loop;
# on OpenZFS (BENCH_PRUNE_ZFS=openzfs with ZREP_OPENZFS_* set, as
# openzfs/start.sh's env file has them) zrep destroys up to 256 snapshots of
# a filesystem per command. Pools are throw-away files, destroyed at the end.
set -euo pipefail

cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin:/usr/sbin:/sbin
FS=${BENCH_PRUNE_FS:-100}
SNAPS=${BENCH_PRUNE_SNAPS:-100}
WHERE=${BENCH_PRUNE_ZFS:-zfs-fuse}

die() { echo "bench/prune: $*" >&2; exit 1; }
say() { echo "bench/prune: $(date +%T) $*" >&2; }
[ "$(id -u)" = 0 ] || die "must run as root"
[ -x bin/zrep ] || make -s build
ZREP=$(pwd)/bin/zrep

# on runs a shell script where the tree lives: here, or on the guest.
if [ "$WHERE" = openzfs ]; then
	[ -n "${ZREP_OPENZFS_SSH_PORT:-}" ] || die "BENCH_PRUNE_ZFS=openzfs needs ZREP_OPENZFS_* (source openzfs/start.sh's env file)"
	SSH=(ssh -p "$ZREP_OPENZFS_SSH_PORT" -i "$ZREP_OPENZFS_SSH_KEY" -o BatchMode=yes -o LogLevel=ERROR
		-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "${ZREP_OPENZFS_SSH_USER:-root}@$ZREP_OPENZFS_SSH_HOST")
	on() { "${SSH[@]}" bash -s -- "$@"; }
	SIDE="${ZREP_OPENZFS_SSH_USER:-root}@$ZREP_OPENZFS_SSH_HOST:"
	ZFLAGS=(--ssh-port "$ZREP_OPENZFS_SSH_PORT" -i "$ZREP_OPENZFS_SSH_KEY" --ssh-option StrictHostKeyChecking=no --ssh-option UserKnownHostsFile=/dev/null)
	DIR=/zrep-pools
else
	eval "$(lab/lab.sh up)" >/dev/null
	on() { bash -s -- "$@"; }
	SIDE=""
	ZFLAGS=()
	DIR=/var/tmp
fi

P=zbprune$$
on "$P" "$DIR" <<'EOF'
truncate -s 2G "$2/$1.img" && zpool create -O mountpoint=none "$1" "$2/$1.img"
EOF
cleanup() { on "$P" "$DIR" <<<'zpool destroy -f "$1"; rm -f "$2/$1.img"' || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# tree NAME: FS children, SNAPS+1 snapshots taken with -r, named an hour apart.
tree() {
	on "$P/$1" "$FS" "$SNAPS" <<'EOF'
set -e
zfs create "$1"
for i in $(seq -f %05g 1 "$2"); do zfs create "$1/f$i"; done
for s in $(seq 0 "$3"); do zfs snapshot -r "$1@zrep_$(date -u -d "2026-01-01 00:00 UTC + $s hour" +%Y%m%dT%H%M%SZ)"; done
EOF
}

say "making two trees of $FS filesystems x $((SNAPS + 1)) snapshots on $WHERE"
tree src
tree loop
"$ZREP" run -r -q --retries 0 "${ZFLAGS[@]}" "$SIDE$P/src" "$SIDE$P/dst" >/dev/null

say "zrep prune"
LOG=$(mktemp)
start=$(date +%s.%N)
ZREP_ARGV_LOG=$LOG ZREP_LOCK_DIR=$(mktemp -d) "$ZREP" prune -r -q --keep-source last=1 "${ZFLAGS[@]}" "$SIDE$P/src" "$SIDE$P/dst" >/dev/null
zrep_s=$(awk "BEGIN { print $(date +%s.%N) - $start }")
zrep_cmds=$(wc -l <"$LOG")
zrep_destroys=$(grep -c '"destroy"' "$LOG" || true)
rm -f "$LOG"
left=$(on "$P/src" <<<'zfs list -H -o name -t snapshot -r "$1" | wc -l')

say "shell loop of zfs destroy"
start=$(date +%s.%N)
loop_cmds=$(on "$P/loop" <<'EOF'
newest=$(zfs list -H -o name -t snapshot -s createtxg -d 1 "$1" | tail -1); newest=${newest#*@}
n=1
for s in $(zfs list -H -o name -t snapshot -r "$1"); do
	[ "${s#*@}" = "$newest" ] && continue
	zfs destroy "$s"; n=$((n + 1))
done
echo "$n"
EOF
)
loop_s=$(awk "BEGIN { print $(date +%s.%N) - $start }")
loop_left=$(on "$P/loop" <<<'zfs list -H -o name -t snapshot -r "$1" | wc -l')

[ "$left" = $((FS + 1)) ] || die "zrep left $left snapshots, want $((FS + 1))"
[ "$loop_left" = $((FS + 1)) ] || die "the loop left $loop_left snapshots, want $((FS + 1))"
destroyed=$(((FS + 1) * SNAPS))
printf '\nprune %s snapshots of %s filesystems on %s (last=1)\n' "$destroyed" "$((FS + 1))" "$WHERE"
printf '%-28s %14s %14s\n' "" "zfs commands" "wall s"
printf '%-28s %14s %14.1f\n' "zrep prune" "$zrep_cmds ($zrep_destroys destroy)" "$zrep_s"
printf '%-28s %14s %14.1f\n' "shell loop of zfs destroy" "$loop_cmds" "$loop_s"
printf '%-28s %14s %14s\n' "ratio zrep / loop" "$(awk "BEGIN { printf \"%.3f\", $zrep_cmds / $loop_cmds }")" "$(awk "BEGIN { printf \"%.2f\", $zrep_s / $loop_s }")"
