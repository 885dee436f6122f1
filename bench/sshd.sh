# Sourced by the bench scripts: a bench-private sshd.
#
# bench_sshd NAME PORT [CONFIG-LINE...] starts sshd on 127.0.0.1:PORT with
# the lab's host key, authorized keys and user (ZREP_LAB_DIR,
# ZREP_LAB_SSH_USER), the extra config lines given; its config, pid file and
# log are $WORK/NAME.config, .pid and .log. It adds the host key for the port
# to $WORK/known_hosts and prints sshd's pid.
bench_sshd() {
	local name=$1 port=$2
	shift 2
	echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$ZREP_LAB_DIR/host_key.pub")" >>"$WORK/known_hosts"
	{
		cat <<CONF
ListenAddress 127.0.0.1
Port $port
HostKey $ZREP_LAB_DIR/host_key
PidFile $WORK/$name.pid
AuthorizedKeysFile $ZREP_LAB_DIR/authorized_keys
AllowUsers $ZREP_LAB_SSH_USER
PermitRootLogin yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
CONF
		[ $# -gt 0 ] && printf '%s\n' "$@"
	} >"$WORK/$name.config"
	/usr/sbin/sshd -f "$WORK/$name.config" -E "$WORK/$name.log"
	for _ in $(seq 1 50); do [ -s "$WORK/$name.pid" ] && break; sleep 0.1; done
	cat "$WORK/$name.pid"
}
