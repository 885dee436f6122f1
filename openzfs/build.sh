#!/usr/bin/env bash
# openzfs/build.sh — build, or reuse, the Debian 12 guest image with OpenZFS 2.3
# that the OpenZFS test tier boots under qemu (software emulation; the host
# needs neither KVM nor a ZFS module).
#
# The image is cached in $ZREP_OPENZFS_CACHE (default /var/cache/zrep-openzfs)
# under a hash of this script and guest/: a second run with the same recipe
# reuses it at once; a changed recipe builds a new one. Progress goes to
# stderr; the image directory is printed on stdout:
#
#   root.img      ext4 root file system (sparse)
#   vmlinuz       guest kernel         initrd.img  its initramfs
#   id, id.pub    ssh key root logs in with
#   versions.txt  kernel and ZFS package versions
#   timings.txt   how long each build phase took
#
# Steps: debootstrap bookworm (minbase; main, contrib) into a scratch tree,
# the kernel and its headers, then zfs-dkms and zfsutils-linux from
# bookworm-backports so dkms compiles zfs.ko for the guest kernel; guest
# configuration; then mkfs.ext4 -d packs the tree (no loop devices, no mounts).
#
# Needs root, ~6 GiB free and the Debian mirror of
# /etc/apt/sources.list.d/debian.sources (or $ZREP_OPENZFS_MIRROR). Any failure — a package that cannot
# be downloaded, a module that does not build — stops the build with a banner
# and a non-zero exit; no half-built image is ever left where it would be used.
set -Eeuo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || { banner "openzfs/build.sh must run as root (debootstrap, chroot)"; exit 1; }

IMG=$(image_dir)
if [ -f "$IMG/READY" ]; then
	echo "openzfs: reusing image $IMG" >&2
	echo "$IMG"
	exit 0
fi

mkdir -p "$OPENZFS_CACHE"
# One build at a time per cache; whoever waited finds the image ready.
exec 9>"$OPENZFS_CACHE/.lock"
flock 9
if [ -f "$IMG/READY" ]; then
	echo "openzfs: reusing image $IMG" >&2
	echo "$IMG"
	exit 0
fi

W=$IMG.build
R=$W/root
STEP=start
T0=$SECONDS
T=$SECONDS

# release_chroot unmounts what the build mounted in the scratch tree.
release_chroot() {
	local m
	for m in "$R/dev/pts" "$R/proc"; do
		if mountpoint -q "$m" 2>/dev/null; then umount -l "$m" || true; fi
	done
}

on_error() {
	local rc=$?
	release_chroot
	banner "OPENZFS IMAGE BUILD FAILED (exit $rc) during: $STEP" \
		"a package download or the zfs module build failed; see the output above" \
		"scratch tree kept for inspection: $W"
	exit "$rc"
}
trap on_error ERR
trap release_chroot EXIT

# phase records how long the step that just ended took.
phase() {
	local line
	line=$(printf '%-28s %4d s (total %d s)' "$STEP" $((SECONDS - T)) $((SECONDS - T0)))
	echo "openzfs: build: $line" >&2
	echo "$line" >>"$W/timings.txt"
	T=$SECONDS
	STEP=$1
}

MIRROR=${ZREP_OPENZFS_MIRROR:-$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
echo "openzfs: building image $IMG from $MIRROR (6-17 minutes; most of it compiling zfs.ko)" >&2

STEP="host packages"
install_host_packages
# A scratch tree from an earlier, failed build is discarded: no half states.
if [ -d "$W" ]; then
	release_chroot
	rm -rf --one-file-system "$W"
fi
mkdir -p "$W"
: >"$W/timings.txt"
phase debootstrap

debootstrap --variant=minbase --components=main,contrib \
	--include=systemd-sysv,udev,dbus,kmod,iproute2,procps,openssh-server \
	bookworm "$R" "$MIRROR" >&2
phase "apt downloads"

cat >"$R/etc/apt/sources.list" <<SRC
deb $MIRROR bookworm main contrib
deb $MIRROR bookworm-updates main contrib
deb $MIRROR bookworm-backports main contrib
SRC
echo force-unsafe-io >"$R/etc/dpkg/dpkg.cfg.d/unsafe-io"
printf 'APT::Install-Recommends "false";\n' >"$R/etc/apt/apt.conf.d/90norecommends"
# Start no services inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"
chmod +x "$R/usr/sbin/policy-rc.d"
mount -t proc proc "$R/proc"

ch() { chroot "$R" env DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"; }

# guest/packages: "suite: pkg pkg ..." lines, installed in order.
SUITES=()
PKGS=()
while IFS= read -r line; do
	line=${line%%#*}
	[ -n "${line// /}" ] || continue
	SUITES+=("${line%%:*}")
	PKGS+=("${line#*:}")
done <"$OPENZFS_DIR/guest/packages"

ch apt-get update -q >&2
# Download everything first: a mirror problem shows here, before any build.
for i in "${!SUITES[@]}"; do
	# shellcheck disable=SC2086
	ch apt-get install -y -q --download-only -t "${SUITES[$i]}" ${PKGS[$i]} >&2
done
phase "install packages + zfs build"

for i in "${!SUITES[@]}"; do
	# shellcheck disable=SC2086
	ch apt-get install -y -q -t "${SUITES[$i]}" ${PKGS[$i]} >&2
done
KV=$(find "$R/lib/modules" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -1)
if ! find "$R/lib/modules/$KV/updates" -name 'zfs.ko*' 2>/dev/null | grep -q .; then
	echo "openzfs: zfs module not built for kernel $KV" >&2
	false
fi
ZV=$(ch dpkg-query -W -f '${Version}' zfsutils-linux)
case $ZV in
2.3.*) ;;
*)
	echo "openzfs: zfsutils-linux is $ZV, the tier needs OpenZFS 2.3" >&2
	false
	;;
esac
phase "configure + initramfs"

echo zfs >"$R/etc/modules-load.d/zfs.conf"
echo zrep-openzfs >"$R/etc/hostname"
printf '127.0.1.1 zrep-openzfs\n' >>"$R/etc/hosts"
printf '/dev/vda / ext4 rw,noatime 0 1\n' >"$R/etc/fstab"
echo 'root:zfs' | chroot "$R" chpasswd # serial console only; ssh takes keys only
install -m 644 "$OPENZFS_DIR/guest/10-qemu.network" "$R/etc/systemd/network/10-qemu.network"
install -m 644 "$OPENZFS_DIR/guest/sshd.conf" "$R/etc/ssh/sshd_config.d/zrep.conf"
ch systemctl enable systemd-networkd >&2
ch systemctl mask systemd-networkd-wait-online.service >&2
ssh-keygen -q -t ed25519 -N '' -C zrep-openzfs -f "$W/id"
install -d -m 700 "$R/root/.ssh"
install -m 600 "$W/id.pub" "$R/root/.ssh/authorized_keys"
ch apt-get clean
ch update-initramfs -u -k "$KV" >&2
cp "$R/boot/vmlinuz-$KV" "$W/vmlinuz"
cp "$R/boot/initrd.img-$KV" "$W/initrd.img"
ch dpkg-query -W zfs-dkms zfsutils-linux linux-image-amd64 >"$W/versions.txt"
echo "kernel $KV" >>"$W/versions.txt"
rm -f "$R/usr/sbin/policy-rc.d"
release_chroot
phase "ext4 image"

truncate -s 8G "$W/root.img"
mkfs.ext4 -q -F -L root -d "$R" "$W/root.img"
rm -rf --one-file-system "$R"
phase done

echo "total $((SECONDS - T0)) s" >>"$W/timings.txt"
date -u +%FT%TZ >"$W/READY"
rm -rf "$IMG"
mv "$W" "$IMG"
trap - ERR EXIT
echo "openzfs: image built in $((SECONDS - T0)) s: $IMG ($(du -sh "$IMG/root.img" | cut -f1) used)" >&2
sed 's/^/openzfs:   /' "$IMG/versions.txt" >&2
echo "$IMG"
