#!/usr/bin/env bash
# The zrep lab: real ZFS (zfs-fuse) and a private sshd on 127.0.0.1.
#
#   lab/lab.sh install   install zfs-fuse and openssh-server if missing
#   lab/lab.sh up        install, start the zfs-fuse daemon and the lab sshd,
#                        then print the lab's settings as shell assignments
#   lab/lab.sh env       print the settings of a running lab
#   lab/lab.sh down      stop the lab sshd (the zfs-fuse daemon is shared and
#                        stays up; pools are destroyed by whoever made them)
#
# Must run as root. The ssh user is a dedicated uid-0 account whose shell is
# /bin/sh, so remote commands do not pay for root's interactive shell set-up.
set -euo pipefail

LAB_DIR=${ZREP_LAB_DIR:-/tmp/zrep-lab}
LAB_PORT=${ZREP_LAB_PORT:-22022}
LAB_USER=${ZREP_LAB_USER:-zreplab}

die() { echo "lab: $*" >&2; exit 1; }

need_root() { [ "$(id -u)" = 0 ] || die "must run as root (zfs-fuse and sshd need it)"; }

install() {
	need_root
	local missing=()
	command -v zfs >/dev/null 2>&1 && command -v zfs-fuse >/dev/null 2>&1 || missing+=(zfs-fuse)
	[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
	command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
	# --compress's programs on the lab's "remote" side (gzip is always there).
	command -v zstd >/dev/null 2>&1 || missing+=(zstd)
	command -v lz4 >/dev/null 2>&1 || missing+=(lz4)
	# The stream buffer (--buffer) on the lab's "remote" side.
	command -v mbuffer >/dev/null 2>&1 || missing+=(mbuffer)
	# --sudo's lab test runs zfs through sudo -n.
	command -v sudo >/dev/null 2>&1 || missing+=(sudo)
	if [ ${#missing[@]} -gt 0 ]; then
		echo "lab: installing ${missing[*]}" >&2
		apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
	fi
	[ -e /dev/fuse ] || die "/dev/fuse is missing: zfs-fuse needs FUSE"
}

# zfs_answers reports whether a zfs-fuse daemon serves requests.
zfs_answers() { (timeout 10 zpool list) >/dev/null 2>&1; }

# live_daemons lists zfs-fuse processes that are not zombies.
live_daemons() { ps -C zfs-fuse -o pid=,stat= 2>/dev/null | awk '$2 !~ /^Z/ {print $1}'; }

start_zfs() {
	if zfs_answers; then return 0; fi
	# No daemon, or one that no longer answers (killed with its session, or
	# wedged): end it, clear what it left, and start afresh. Its pools come
	# back with it.
	if [ -n "$(live_daemons)" ]; then
		echo "lab: zfs-fuse does not answer; restarting it" >&2
		pkill -9 -x zfs-fuse || true
	fi
	local i m
	for i in $(seq 1 100); do
		[ -z "$(live_daemons)" ] && break
		sleep 0.1
	done
	# Mounts left by a daemon that was killed answer nothing but
	# "Transport endpoint is not connected"; a new daemon needs them gone.
	awk '$3 == "fuse.zfs" || $3 == "fuse" && $1 == "kstat" {print $2}' /proc/mounts | while read -r m; do
		umount -l "$(printf '%b' "$m")" 2>/dev/null || true
	done
	rm -f /var/run/zfs-fuse.pid
	mkdir -p /var/run/zfs /var/lock/zfs
	echo "lab: starting zfs-fuse" >&2
	zfs-fuse --pidfile /var/run/zfs-fuse.pid >&2 || die "zfs-fuse did not start"
	for i in $(seq 1 200); do
		if zpool list >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	die "zfs-fuse does not answer (zpool list fails)"
}

start_sshd() {
	mkdir -p "$LAB_DIR" /run/sshd
	chmod 0700 "$LAB_DIR"
	if ! getent passwd "$LAB_USER" >/dev/null; then
		useradd -o -u 0 -g 0 -M -d "$LAB_DIR" -s /bin/sh "$LAB_USER"
	fi
	# A password field of '*' (not '!') so sshd does not treat the account as locked.
	usermod -p '*' "$LAB_USER"
	[ -f "$LAB_DIR/host_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$LAB_DIR/host_key"
	[ -f "$LAB_DIR/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$LAB_DIR/id_ed25519"
	cp "$LAB_DIR/id_ed25519.pub" "$LAB_DIR/authorized_keys"
	echo "[127.0.0.1]:$LAB_PORT $(cut -d' ' -f1,2 "$LAB_DIR/host_key.pub")" >"$LAB_DIR/known_hosts"
	cat >"$LAB_DIR/sshd_config.new" <<CONF
ListenAddress 127.0.0.1
Port $LAB_PORT
HostKey $LAB_DIR/host_key
PidFile $LAB_DIR/sshd.pid
AuthorizedKeysFile $LAB_DIR/authorized_keys
AllowUsers $LAB_USER
PermitRootLogin yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 100:30:200
MaxSessions 100
LogLevel INFO
CONF
	# A changed configuration needs a new sshd; logins are logged ("Accepted
	# publickey") so that tests can count them.
	local running=
	if [ -f "$LAB_DIR/sshd.pid" ] && kill -0 "$(cat "$LAB_DIR/sshd.pid")" 2>/dev/null; then
		running=yes
		if ! cmp -s "$LAB_DIR/sshd_config.new" "$LAB_DIR/sshd_config"; then
			kill "$(cat "$LAB_DIR/sshd.pid")"
			running=
			sleep 0.2
		fi
	fi
	mv "$LAB_DIR/sshd_config.new" "$LAB_DIR/sshd_config"
	if [ -z "$running" ]; then
		/usr/sbin/sshd -f "$LAB_DIR/sshd_config" -E "$LAB_DIR/sshd.log"
	fi
	local i
	for i in $(seq 1 50); do
		if ssh -F none -p "$LAB_PORT" -i "$LAB_DIR/id_ed25519" -o BatchMode=yes \
			-o UserKnownHostsFile="$LAB_DIR/known_hosts" -o ConnectTimeout=2 \
			"$LAB_USER@127.0.0.1" true 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	die "the lab sshd on 127.0.0.1:$LAB_PORT does not accept the lab key (see $LAB_DIR/sshd.log)"
}

print_env() {
	cat <<ENV
ZREP_LAB_DIR=$LAB_DIR
ZREP_LAB_SSH_HOST=127.0.0.1
ZREP_LAB_SSH_PORT=$LAB_PORT
ZREP_LAB_SSH_USER=$LAB_USER
ZREP_LAB_SSH_KEY=$LAB_DIR/id_ed25519
ZREP_LAB_SSH_KNOWN_HOSTS=$LAB_DIR/known_hosts
ZREP_LAB_SSHD_LOG=$LAB_DIR/sshd.log
ENV
}

case "${1:-}" in
install) install ;;
up) install; start_zfs; start_sshd; print_env ;;
env) print_env ;;
down)
	if [ -f "$LAB_DIR/sshd.pid" ]; then kill "$(cat "$LAB_DIR/sshd.pid")" 2>/dev/null || true; rm -f "$LAB_DIR/sshd.pid"; fi
	;;
*) echo "usage: lab/lab.sh install|up|env|down" >&2; exit 2 ;;
esac
