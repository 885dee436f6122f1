#!/usr/bin/env bash
# openzfs/start.sh IMAGE_DIR RUN_DIR [PORT] — boot the guest that build.sh made
# under qemu (TCG software emulation) in the background, and wait until root
# can run `zfs version` over ssh on 127.0.0.1:PORT.
#
# Every start is fresh and leaves IMAGE_DIR untouched: in RUN_DIR go a
# throw-away qcow2 overlay on root.img and two empty sparse data disks, which
# the guest sees as /dev/vdb and /dev/vdc (for pools). Without PORT a free
# port from 2222 up is taken. Also written to RUN_DIR:
#
#   env          ZREP_OPENZFS_* assignments telling tests how to reach the guest
#   ssh_config   so that `ssh -F RUN_DIR/ssh_config guest CMD` works
#   console.log  the guest's serial console      qemu.pid  qemu's pid
#
# Env: ZREP_OPENZFS_MEM (MiB, default 3072), ZREP_OPENZFS_SMP (default 2),
# ZREP_OPENZFS_DISK_SIZE (default 4G), ZREP_OPENZFS_BOOT_WAIT (s, default 300).
# A guest that does not come up is stopped, reported loudly, and the exit is 1.
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

IMG=$(realpath "${1:?usage: $0 IMAGE_DIR RUN_DIR [PORT]}")
RUN=$(realpath -m "${2:?usage: $0 IMAGE_DIR RUN_DIR [PORT]}")
PORT=${3:-}
MEM=${ZREP_OPENZFS_MEM:-3072}
SMP=${ZREP_OPENZFS_SMP:-2}
DISK_SIZE=${ZREP_OPENZFS_DISK_SIZE:-4G}
WAIT=${ZREP_OPENZFS_BOOT_WAIT:-300}

[ -f "$IMG/READY" ] || { banner "OPENZFS GUEST: no finished image in $IMG (run openzfs/build.sh)"; exit 1; }
mkdir -p "$RUN"
if [ -f "$RUN/qemu.pid" ] && kill -0 "$(cat "$RUN/qemu.pid")" 2>/dev/null; then
	banner "OPENZFS GUEST: already running in $RUN (qemu pid $(cat "$RUN/qemu.pid"))"
	exit 1
fi

# port_busy succeeds when something listens on 127.0.0.1:$1.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -z "$PORT" ]; then
	PORT=2222
	while port_busy "$PORT"; do PORT=$((PORT + 1)); done
fi

KEY=$RUN/id
install -m 600 "$IMG/id" "$KEY"
cat >"$RUN/ssh_config" <<CFG
Host guest
  HostName 127.0.0.1
  Port $PORT
  User root
  IdentityFile $KEY
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  LogLevel ERROR
  BatchMode yes
  ConnectTimeout 5
CFG
cat >"$RUN/env" <<ENV
ZREP_OPENZFS_SSH_HOST=127.0.0.1
ZREP_OPENZFS_SSH_PORT=$PORT
ZREP_OPENZFS_SSH_USER=root
ZREP_OPENZFS_SSH_KEY=$KEY
ZREP_OPENZFS_DISKS="/dev/vdb /dev/vdc"
ENV

rm -f "$RUN/overlay.qcow2" "$RUN/data1.img" "$RUN/data2.img" "$RUN/console.log"
qemu-img create -q -f qcow2 -b "$IMG/root.img" -F raw "$RUN/overlay.qcow2"
truncate -s "$DISK_SIZE" "$RUN/data1.img" "$RUN/data2.img"

# -daemonize returns once the machine is set up, so set-up errors (a port in
# use, a missing file) show here. cache=unsafe: every disk is throw-away.
qemu-system-x86_64 -machine q35 -accel tcg,thread=multi -cpu max -smp "$SMP" -m "$MEM" \
	-display none -monitor none -serial file:"$RUN/console.log" -no-reboot \
	-kernel "$IMG/vmlinuz" -initrd "$IMG/initrd.img" \
	-append "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet mitigations=off" \
	-drive file="$RUN/overlay.qcow2",if=virtio,format=qcow2,cache=unsafe \
	-drive file="$RUN/data1.img",if=virtio,format=raw,cache=unsafe \
	-drive file="$RUN/data2.img",if=virtio,format=raw,cache=unsafe \
	-netdev user,id=n0,hostfwd=tcp:127.0.0.1:"$PORT"-:22 -device virtio-net-pci,netdev=n0 \
	-daemonize -pidfile "$RUN/qemu.pid" || {
	banner "OPENZFS GUEST: qemu failed to start (port $PORT)"
	exit 1
}

# boot_failed reports a guest that did not come up, stops it and exits 1.
boot_failed() {
	banner "OPENZFS GUEST BOOT FAILED: $1" "last lines of $RUN/console.log follow"
	tail -n 40 "$RUN/console.log" >&2 || true
	"$OPENZFS_DIR/stop.sh" "$RUN" || true
	exit 1
}

START=$SECONDS
until ssh -F "$RUN/ssh_config" guest zfs version >/dev/null 2>&1; do
	kill -0 "$(cat "$RUN/qemu.pid")" 2>/dev/null || boot_failed "qemu exited"
	[ $((SECONDS - START)) -lt "$WAIT" ] || boot_failed "no ssh with zfs after $WAIT s"
	sleep 2
done
echo "openzfs: guest ready after $((SECONDS - START)) s on 127.0.0.1:$PORT (qemu pid $(cat "$RUN/qemu.pid"))" >&2
ssh -F "$RUN/ssh_config" guest 'zfs version; uname -r' | sed 's/^/openzfs:   /' >&2
echo "openzfs: connect with: ssh -F $RUN/ssh_config guest" >&2
