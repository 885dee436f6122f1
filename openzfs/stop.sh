#!/usr/bin/env bash
# openzfs/stop.sh RUN_DIR — stop the guest that start.sh booted in RUN_DIR (by
# the pid qemu recorded) and remove its throw-away disks. The image is kept,
# so start.sh can boot it again. Stopping a guest that is not running is fine.
set -euo pipefail
RUN=$(realpath -m "${1:?usage: $0 RUN_DIR}")
if [ -f "$RUN/qemu.pid" ]; then
	pid=$(cat "$RUN/qemu.pid")
	if kill "$pid" 2>/dev/null; then
		for _ in $(seq 20); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.5
		done
		if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
		echo "openzfs: guest stopped (qemu pid $pid)" >&2
	fi
	rm -f "$RUN/qemu.pid"
fi
rm -f "$RUN/overlay.qcow2" "$RUN/data1.img" "$RUN/data2.img"
