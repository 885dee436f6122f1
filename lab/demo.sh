#!/usr/bin/env bash
# make demo: a lab tree on zfs-fuse, then zrep plan and zrep run, locally and
# over ssh to 127.0.0.1. Leaves the pools for a look; `make demo-clean`
# removes them.
set -euo pipefail
cd "$(dirname "$0")/.."
ZREP=${ZREP:-bin/zrep}
IMG_DIR=${ZREP_DEMO_DIR:-/var/tmp/zrep-demo}
SRC=zrepdemo_src
DST=zrepdemo_dst

clean() {
	for p in $SRC $DST; do
		if zpool list "$p" >/dev/null 2>&1; then zpool destroy -f "$p"; fi
	done
	rm -rf "$IMG_DIR"
}

if [ "${1:-}" = clean ]; then clean; exit 0; fi

eval "$(lab/lab.sh up)"
clean
mkdir -p "$IMG_DIR"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "a lab tree on zfs-fuse"
for p in $SRC $DST; do
	truncate -s 512M "$IMG_DIR/$p.img"
	zpool create -m "/$p" "$p" "$IMG_DIR/$p.img"
done
zfs create "$SRC/data"
zfs create "$SRC/data/home"
zfs create "$SRC/data/my photos"
zfs create "$SRC/data/scratch"
for fs in "data" "data/home" "data/my photos" "data/scratch"; do
	head -c 4M /dev/urandom >"/$SRC/$fs/file.bin"
done
zfs snapshot -r "$SRC/data@2026-11-25_01"
echo more >>"/$SRC/data/home/file.bin"
zfs snapshot -r "$SRC/data@2026-11-25_02"
zfs create "$DST/local"
zfs create "$DST/remote"
show zfs list -r -t all -o name,used,refer "$SRC"

SSH=(--ssh-port "$ZREP_LAB_SSH_PORT" -i "$ZREP_LAB_SSH_KEY" --ssh-option "UserKnownHostsFile=$ZREP_LAB_SSH_KNOWN_HOSTS")
REMOTE="$ZREP_LAB_SSH_USER@$ZREP_LAB_SSH_HOST"
LOCK=(--lock-dir "$IMG_DIR/locks")

step "plan: what a recursive run would send (changes nothing)"
show "$ZREP" plan -r --exclude '/scratch$' "$SRC/data" "$DST/local/data"

step "run, locally"
show "$ZREP" run -r --exclude '/scratch$' "${LOCK[@]}" "$SRC/data" "$DST/local/data"

step "a new snapshot, then an incremental run over ssh to $REMOTE"
echo again >>"/$SRC/data/my photos/file.bin"
zfs snapshot -r "$SRC/data@2026-11-25_03"
show "$ZREP" run -r --initial all --exclude '/scratch$' "${SSH[@]}" "${LOCK[@]}" "$SRC/data" "$REMOTE:$DST/remote/data"
show "$ZREP" run -r --exclude '/scratch$' "${LOCK[@]}" "$SRC/data" "$DST/local/data"

step "the same run again, as JSON: nothing left to send"
show "$ZREP" run -r --json --exclude '/scratch$' "${SSH[@]}" "${LOCK[@]}" "$SRC/data" "$REMOTE:$DST/remote/data"

step "the destination, with guids: each snapshot's equals its source snapshot's"
show zfs get -r -p -o name,value guid "$DST"
printf '\nDone. Remove the demo pools with: make demo-clean\n'
