#!/usr/bin/env bash
# Builds build/zrep_<version>_<arch>.deb with dpkg-deb from what `make docs
# PREFIX=/usr` generated: the binary, the man page, the bash/zsh/fish
# completions and the systemd templates. Run through `make deb`.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${VERSION:?VERSION is set by make deb}"
maintainer=${MAINTAINER:-zrep maintainers <zrep@users.noreply.github.com>}
# Debian versions start with a digit and sort 1.0~rc1 before 1.0.
version=${VERSION#v}
version=${version//-/\~}
arch=$(dpkg --print-architecture)
root=build/deb/zrep_${version}_${arch}
rm -rf "$root"
mkdir -p "$root/DEBIAN"

install -D -m 0755 bin/zrep "$root/usr/bin/zrep"
strip --remove-section=.comment --remove-section=.note "$root/usr/bin/zrep" 2>/dev/null || true
install -d "$root/usr/share/man/man8"
gzip -9n <build/zrep.8 >"$root/usr/share/man/man8/zrep.8.gz"
chmod 0644 "$root/usr/share/man/man8/zrep.8.gz"
install -D -m 0644 build/completions/zrep "$root/usr/share/bash-completion/completions/zrep"
install -D -m 0644 build/completions/_zrep "$root/usr/share/zsh/vendor-completions/_zrep"
install -D -m 0644 build/completions/zrep.fish "$root/usr/share/fish/vendor_completions.d/zrep.fish"
install -D -m 0644 build/systemd/zrep@.service "$root/lib/systemd/system/zrep@.service"
install -D -m 0644 build/systemd/zrep@.timer "$root/lib/systemd/system/zrep@.timer"
install -D -m 0644 dist/example.env "$root/usr/share/doc/zrep/examples/example.env"
install -D -m 0644 dist/authorized_keys.example "$root/usr/share/doc/zrep/examples/authorized_keys.example"
sed -i 's|/usr/share/doc/zrep/example.env|/usr/share/doc/zrep/examples/example.env|' "$root/lib/systemd/system/zrep@.service"
install -D -m 0644 dist/debian/copyright "$root/usr/share/doc/zrep/copyright"
date=$(git log -1 --format=%aD 2>/dev/null || date -R)
gzip -9n >"$root/usr/share/doc/zrep/changelog.gz" <<CHANGELOG
zrep ($version) unstable; urgency=medium

  * Built from git commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown).

 -- $maintainer  $date
CHANGELOG
chmod 0644 "$root/usr/share/doc/zrep/changelog.gz"

depends=$(objdump -p "$root/usr/bin/zrep" 2>/dev/null | grep -q 'NEEDED.*libc.so' && echo 'libc6 (>= 2.34)' || true)
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
{
	echo "Package: zrep"
	echo "Version: $version"
	echo "Architecture: $arch"
	echo "Maintainer: $maintainer"
	echo "Installed-Size: $size"
	[ -n "$depends" ] && echo "Depends: $depends"
	echo "Recommends: zfsutils-linux | zfs-fuse, openssh-client"
	echo "Suggests: zstd, lz4, mbuffer"
	echo "Section: admin"
	echo "Priority: optional"
	echo "Description: replicate ZFS filesystems and snapshots, locally or over ssh"
	echo " zrep sends ZFS filesystems and volumes with their snapshots from a source"
	echo " to a destination, each the local machine or a host reached over ssh."
	echo " One invocation plans, sends, retries what broke, prints a report and"
	echo " exits with a status that says how it went, so it fits cron and systemd"
	echo " timers (zrep@.timer). zrep status checks the copies for Nagios or"
	echo " Icinga, and zrep run writes Prometheus metrics. zrep serve, an ssh"
	echo " forced command, restricts a key to what one side of a run needs under"
	echo " one dataset, so that a compromised host cannot destroy its backups."
	echo " ."
	echo " This is not the zrep shell script by Philip Brown (bolthole.com)."
} >"$root/DEBIAN/control"

find "$root" -type d -exec chmod 0755 {} +
dpkg-deb --root-owner-group --build "$root" build/ >&2
echo "build/zrep_${version}_${arch}.deb"
