#!/usr/bin/env bash
# openzfs/run.sh [go test flags...] — the OpenZFS test tier (make test-openzfs).
#
#   1. install the host tools (debootstrap, qemu, e2fsprogs, and the zfs-fuse
#      lab's packages) if missing
#   2. build the guest image, or reuse the cached one (openzfs/build.sh)
#   3. boot a fresh guest (openzfs/start.sh)
#   4. run the end-to-end suite e2e/ with the build tag openzfs against it,
#      told by ZREP_OPENZFS_* variables how to reach it; arguments go to go
#      test. Push and pull tests also use the zfs-fuse lab on this host
#      (lab/lab.sh, which the suite starts).
#   5. stop the guest, whatever happened (openzfs/stop.sh)
#
# Each phase is timed and the times are printed at the end. A failed image
# build or boot fails the tier loudly; it never passes by skipping.
# Env: GO (default go), ZREP_OPENZFS_TEST_TIMEOUT (default 65m),
# ZREP_OPENZFS_RUN_DIR (default: a fresh directory under /var/tmp).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$OPENZFS_DIR/.." && pwd)
GO=${GO:-go}
command -v "$GO" >/dev/null || GO=/usr/local/go/bin/go
# The tests build zrep with the go found on PATH: the same one.
GO=$(command -v "$GO") || { banner "OPENZFS TIER: no go toolchain (set GO)"; exit 1; }
export PATH="$(dirname "$GO"):$PATH"

T0=$SECONDS
T=$SECONDS
TIMES=()
# phase records how long the phase named $1 took.
phase() {
	TIMES+=("$(printf '%-22s %5d s' "$1" $((SECONDS - T)))")
	echo "openzfs: phase $1 took $((SECONDS - T)) s" >&2
	T=$SECONDS
}
RUN=
finish() {
	local rc=$?
	if [ -n "$RUN" ]; then
		T=$SECONDS
		"$OPENZFS_DIR/stop.sh" "$RUN" || true
		phase "stop guest"
	fi
	echo "openzfs: ---- timings ----" >&2
	printf 'openzfs:   %s\n' "${TIMES[@]}" >&2
	printf 'openzfs:   %-22s %5d s\n' total $((SECONDS - T0)) >&2
	if [ "$rc" = 0 ]; then
		[ -z "$RUN" ] || rm -rf "$RUN"
		echo "openzfs: tier PASSED" >&2
	else
		banner "OPENZFS TIER FAILED (exit $rc)" ${RUN:+"guest console log: $RUN/console.log"}
	fi
	exit "$rc"
}
trap finish EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

[ "$(id -u)" = 0 ] || { banner "OPENZFS TIER: make test-openzfs must run as root (image build, qemu)"; exit 1; }

install_host_packages
# Push and pull tests cross between the zfs-fuse lab on this host and the guest.
"$ROOT/lab/lab.sh" install
phase "host packages"

IMG=$("$OPENZFS_DIR/build.sh")
phase "image build/reuse"

RUN=${ZREP_OPENZFS_RUN_DIR:-$(mktemp -d /var/tmp/zrep-openzfs-run.XXXXXX)}
"$OPENZFS_DIR/start.sh" "$IMG" "$RUN"
phase "guest boot"

set -a
# shellcheck source=/dev/null
. "$RUN/env"
set +a
cd "$ROOT"
rc=0
"$GO" vet -tags openzfs ./e2e/
"$GO" test -tags openzfs -count=1 -v -timeout "${ZREP_OPENZFS_TEST_TIMEOUT:-65m}" "$@" ./e2e/ || rc=$?
phase "go tests"
exit "$rc"
