#!/usr/bin/env bash
# make test-install: what zrep installs, checked by the programs that consume
# it. Needs root and the zfs-fuse lab (lab/lab.sh up); apt-get installs the
# consumers it lacks. Each check prints what it saw.
#
#   metrics     promtool check metrics; node_exporter's textfile collector
#               scraped over HTTP on 127.0.0.1, after a successful and a
#               failed run; the alert rules checked and unit-tested
#   man page    man -l renders it without warnings
#   bash        sourcing the completion, "zrep r" completes to "run"
#   zsh         the completion function parses (zsh -n)
#   fish        "zrep r" completes to "run"
#   install     make install DESTDIR=... PREFIX=/usr puts every file in place
#   deb         lintian reports no error; dpkg -i gives a working zrep
#               version, man zrep, the completion and units systemd-analyze
#               verify accepts; dpkg -r leaves nothing behind
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
export PATH="$PATH:/usr/local/go/bin"
start=$SECONDS
say() { printf '\n== %s\n' "$*"; }
fail() { echo "test-install: FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "needs root (zfs-fuse pools, dpkg -i)"

need=()
for p in prometheus prometheus-node-exporter lintian man-db zsh fish curl systemd; do
	dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	say "apt-get install ${need[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

make -s build docs GO="$GO"
zrep=$PWD/bin/zrep
work=$(mktemp -d /var/tmp/zrep-test-install.XXXXXX)
pool=zt$$_1
exporter=
cleanup() {
	[ -n "$exporter" ] && kill "$exporter" 2>/dev/null && wait "$exporter" 2>/dev/null
	zpool destroy -f "$pool" 2>/dev/null || true
	dpkg -r zrep >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

say "metrics: a run on zfs-fuse, promtool, node_exporter"
lab/lab.sh up >/dev/null
truncate -s 128M "$work/$pool.img"
zpool create -f -m "/$pool" "$pool" "$work/$pool.img"
zfs create -p "$pool/src/a"
zfs snapshot "$pool/src/a@s1"
mkdir "$work/textfile"
prom=$work/textfile/zrep.prom
"$zrep" run -q --lock-dir "$work/lock" --metrics-file "$prom" "$pool/src/a" "$pool/dst" ||
	fail "zrep run exited $?"
cat "$prom"
promtool check metrics <"$prom" || fail "promtool check metrics rejects $prom"
echo "promtool check metrics: ok"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
prometheus-node-exporter --web.listen-address="127.0.0.1:$port" \
	--collector.disable-defaults --collector.textfile \
	--collector.textfile.directory="$work/textfile" >"$work/exporter.log" 2>&1 &
exporter=$!
scrape() {
	local i
	for i in $(seq 100); do
		curl -fsS "http://127.0.0.1:$port/metrics" >"$work/scrape" 2>/dev/null && return
		sleep 0.1 # waiting for node_exporter to listen
	done
	cat "$work/exporter.log" >&2
	fail "node_exporter on 127.0.0.1:$port does not answer"
}
# value SERIES: the scraped value of one series, labels as node_exporter
# writes them (sorted by name).
value() { awk -v s="$1" 'index($0, s " ") == 1 { print $NF }' "$work/scrape"; }
expect() {
	local got
	got=$(value "$1")
	echo "scraped $1 = $got"
	[ "$got" = "$2" ] || fail "want $2"
}
scrape
grep '^zrep_' "$work/scrape" | sort
grep -q 'node_textfile_scrape_error 0' "$work/scrape" || fail "node_exporter could not read $prom: $(grep textfile_scrape_error "$work/scrape")"
fs="{destination=\"$pool/dst\",filesystem=\"$pool/src/a\"}"
run="{destination=\"$pool/dst\",source=\"$pool/src/a\"}"
expect "zrep_run_exit_code$run" 0
expect "zrep_run_status{destination=\"$pool/dst\",source=\"$pool/src/a\",status=\"Completed\"}" 1
expect "zrep_filesystem_status{destination=\"$pool/dst\",filesystem=\"$pool/src/a\",status=\"Completed\"}" 1
last=$(value "zrep_filesystem_last_success_timestamp_seconds$fs")
[ -n "$last" ] || fail "no last success time"
now=$(date +%s)
awk -v l="$last" -v n="$now" 'BEGIN { exit !(l > n - 120 && l <= n + 1) }' || fail "last success $last is not about now ($now)"
bytes=$(value "zrep_run_bytes$run")
awk -v b="$bytes" 'BEGIN { exit !(b > 0) }' || fail "zrep_run_bytes $bytes, want more than 0"
echo "last success $last, $bytes bytes"

# A failed run (the destination diverged) keeps the last success time.
zfs snapshot "$pool/dst@local"
zfs snapshot "$pool/src/a@s2"
set +e
"$zrep" run -q --lock-dir "$work/lock" --metrics-file "$prom" "$pool/src/a" "$pool/dst" >/dev/null
code=$?
set -e
[ "$code" = 1 ] || fail "the diverged run exited $code, want 1"
promtool check metrics <"$prom" || fail "promtool check metrics rejects $prom after a failed run"
scrape
expect "zrep_run_exit_code$run" 1
expect "zrep_filesystem_status{destination=\"$pool/dst\",filesystem=\"$pool/src/a\",status=\"PermanentError\"}" 1
expect "zrep_filesystem_last_success_timestamp_seconds$fs" "$last"
kill "$exporter"; wait "$exporter" 2>/dev/null || true; exporter=
promtool check rules dist/prometheus/zrep-rules.yml || fail "promtool check rules"
(cd dist/prometheus && promtool test rules zrep-rules.test.yml) || fail "the README's alert rules do not fire as they should"

say "man page: man -l"
warnings=$(MANWIDTH=80 man --warnings -l build/zrep.8 2>&1 >"$work/man.txt")
[ -z "$warnings" ] || fail "man -l warns: $warnings"
grep -q 'EXIT STATUS' "$work/man.txt" && grep -q 'zrep status' "$work/man.txt" || fail "the man page lacks its sections"
head -3 "$work/man.txt"
echo "man -l build/zrep.8: $(wc -l <"$work/man.txt") lines, no warnings"

# complete_bash FILE WORDS...: what the completion in FILE offers for the
# last of WORDS.
complete_bash() {
	local file=$1
	shift
	bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _zrep; printf "%s\n" "${COMPREPLY[@]}"' \
		complete "$file" "$@"
}
say "bash completion"
got=$(complete_bash build/completions/zrep zrep r)
echo "zrep r<TAB>: $got"
[ "$got" = run ] || fail "want run"
got=$(complete_bash build/completions/zrep zrep status --max | tr '\n' ' ')
echo "zrep status --max<TAB>: $got"
[ "$got" = "--max-age " ] || fail "want --max-age"

say "zsh completion"
zsh -n build/completions/_zrep && echo "zsh -n build/completions/_zrep: ok"

say "fish completion"
got=$(fish -c 'source build/completions/zrep.fish; complete -C "zrep r"' | cut -f1 | grep -x run || true)
echo "zrep r<TAB>: $got"
[ "$got" = run ] || fail "want run"

say "make install DESTDIR=... PREFIX=/usr"
make -s install DESTDIR="$work/root" PREFIX=/usr GO="$GO" >/dev/null
(cd "$work/root" && find . -type f | sort)
for f in usr/bin/zrep usr/share/man/man8/zrep.8 usr/share/bash-completion/completions/zrep \
	usr/share/zsh/site-functions/_zrep usr/share/fish/vendor_completions.d/zrep.fish \
	usr/lib/systemd/system/zrep@.service usr/lib/systemd/system/zrep@.timer; do
	[ -f "$work/root/$f" ] || fail "make install did not install $f"
done
grep -q '^ExecStart=/usr/bin/zrep run' "$work/root/usr/lib/systemd/system/zrep@.service" || fail "the unit does not run /usr/bin/zrep"

say "make deb; lintian"
deb=$(make -s deb GO="$GO" | tail -1)
lintian --fail-on error "$deb" || fail "lintian reports errors on $deb"
echo "lintian $deb: no error ($(lintian "$deb" 2>/dev/null | wc -l) tags)"

say "dpkg -i"
dpkg -i "$deb" >/dev/null
/usr/bin/zrep version
/usr/bin/zrep version | grep -q '^zrep ' || fail "zrep version"
man -w zrep
man zrep 2>/dev/null | grep -q 'zrep status' || fail "man zrep"
echo "man zrep: ok"
got=$(complete_bash /usr/share/bash-completion/completions/zrep zrep r)
echo "installed completion, zrep r<TAB>: $got"
[ "$got" = run ] || fail "want run"
mkdir "$work/units"
cp /lib/systemd/system/zrep@.service "$work/units/zrep@home.service"
cp /lib/systemd/system/zrep@.timer "$work/units/zrep@home.timer"
systemd-analyze verify "$work/units/zrep@home.service" "$work/units/zrep@home.timer" || fail "systemd-analyze verify"
echo "systemd-analyze verify zrep@home.service zrep@home.timer: ok"
files=$(dpkg -L zrep | while read -r f; do if [ -f "$f" ]; then echo "$f"; fi; done)

say "dpkg -r"
dpkg -r zrep >/dev/null
left=$(for f in $files; do if [ -e "$f" ]; then echo "$f"; fi; done)
[ -z "$left" ] || fail "dpkg -r left: $left"
dpkg -s zrep >/dev/null 2>&1 && fail "zrep still installed"
echo "dpkg -r zrep: removed $(echo "$files" | wc -l) files, none left"

echo
echo "test-install: ok in $((SECONDS - start)) s"
