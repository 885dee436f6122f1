package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zrep/zrep/endpoints"
)

// servedSide is a key bound to `zrep serve` on the target machine: an
// authorized_keys line with a forced command, its own key pair, and what
// zrep and a plain ssh need to log in with it.
type servedSide struct {
	m       *machine
	user    string   // the account the key logs in as
	port    string   // the sshd that knows the key
	key     string   // the key's private half, on this host
	sshOpts []string // ssh -o options, for zrep and for plain ssh
	log     string   // serve's --log-file, on the machine
	logins  func(t *testing.T) int
}

// serveOn binds a new key to `zrep serve ARGS...` on the target machine.
// On this host it is a test-private sshd with the lab's host key and user
// and an AuthorizedKeysFile of its own, so the lab's sshd and its key stay
// as they are; on the OpenZFS guest it is a second uid-0 account whose
// authorized_keys holds only served keys, next to root's.
func serveOn(t *testing.T, m *machine, args ...string) *servedSide {
	t.Helper()
	if len(args) == 0 {
		t.Fatal("serveOn: zrep serve needs its role")
	}
	return keyOn(t, m, args)
}

// plainOn is serveOn's twin without the forced command, for comparisons:
// on this host a test-private sshd whose key runs anything, on the guest
// root with the lab key.
func plainOn(t *testing.T, m *machine) *servedSide {
	t.Helper()
	if !m.isHost {
		return &servedSide{m: m, user: m.sshUser, port: m.sshPort, key: m.sshKey, sshOpts: m.sshOptions, logins: m.sshLogins}
	}
	return keyOn(t, m, nil)
}

// keyOn makes a key that runs zrep serve args, or, without args, anything.
func keyOn(t *testing.T, m *machine, args []string) *servedSide {
	t.Helper()
	dir := t.TempDir()
	key := filepath.Join(dir, "served_key")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "zrep-served", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	s := &servedSide{m: m, key: key}
	if m.isHost {
		s.log = filepath.Join(dir, "serve.log")
		s.user, s.port = m.sshUser, startServedSSHD(t, m, dir, args, s.log, strings.TrimSpace(string(pub)))
		sshdLog := filepath.Join(dir, "sshd.log")
		s.sshOpts = []string{"UserKnownHostsFile=" + filepath.Join(dir, "known_hosts"), "IdentitiesOnly=yes"}
		s.logins = func(t *testing.T) int {
			b, err := os.ReadFile(sshdLog)
			if err != nil {
				t.Fatal(err)
			}
			return strings.Count(string(b), "Accepted publickey")
		}
		return s
	}
	// The guest: the same sshd, another account. zrep logs in to root with
	// the lab key and to the served account with the served key, which
	// root does not accept and the served account accepts only.
	const home = "/var/lib/zrep-served"
	// A log of the test's own: the account serves every test of the suite.
	s.user, s.port, s.log = "zrepserved", m.sshPort, fmt.Sprintf("%s/serve-%d-%d.log", home, os.Getpid(), poolSeq.Add(1))
	bin := home + "/zrep"
	exe, err := os.ReadFile(lab.zrep)
	if err != nil {
		t.Fatal(err)
	}
	m.script(t, `id -u "$1" >/dev/null 2>&1 || useradd -o -u 0 -g 0 -M -d "$2" -s /bin/sh "$1"
usermod -p '*' "$1"; mkdir -p "$2/.ssh"; chmod 700 "$2" "$2/.ssh"`, s.user, home)
	if out, err := m.run(context.Background(), exe, "sh", "-c", `cat >"$1.new" && chmod 755 "$1.new" && mv "$1.new" "$1"`, "copy", bin); err != nil {
		t.Fatalf("copying zrep to %s: %v\n%s", m.name, err, out)
	}
	line := fmt.Sprintf("command=%q,restrict %s", bin+" serve "+strings.Join(args, " ")+" --log-file "+s.log, strings.TrimSpace(string(pub)))
	m.script(t, `printf '%s\n' "$2" >>"$1"; chmod 600 "$1"`, home+"/.ssh/authorized_keys", line)
	t.Cleanup(func() {
		m.run(context.Background(), nil, "sed", "-i", "\\|"+strings.Fields(string(pub))[1]+"|d", home+"/.ssh/authorized_keys")
	})
	s.sshOpts = append(append([]string{}, m.sshOptions...), "IdentityFile="+key, "IdentitiesOnly=yes")
	s.logins = m.sshLogins
	return s
}

// startServedSSHD starts an sshd on a free port of 127.0.0.1 whose only
// key runs zrep serve args (anything, without args), and returns the port;
// it ends with the test.
func startServedSSHD(t *testing.T, m *machine, dir string, args []string, serveLog, pub string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	labDir := filepath.Dir(m.sshKey)
	hostPub, err := os.ReadFile(filepath.Join(labDir, "host_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(hostPub))
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("known_hosts", fmt.Sprintf("[127.0.0.1]:%s %s %s\n", port, f[0], f[1]))
	line := pub + "\n"
	if args != nil {
		command := lab.zrep + " serve " + strings.Join(args, " ") + " --log-file " + serveLog
		line = fmt.Sprintf("command=%q,restrict %s\n", command, pub)
	}
	write("authorized_keys", line)
	write("sshd_config", fmt.Sprintf(`ListenAddress 127.0.0.1
Port %s
HostKey %s
PidFile %s
AuthorizedKeysFile %s
AllowUsers %s
PermitRootLogin yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 100:30:200
MaxSessions 100
LogLevel INFO
`, port, filepath.Join(labDir, "host_key"), filepath.Join(dir, "sshd.pid"), filepath.Join(dir, "authorized_keys"), m.sshUser))
	if out, err := exec.Command("/usr/sbin/sshd", "-f", filepath.Join(dir, "sshd_config"), "-E", filepath.Join(dir, "sshd.log")).CombinedOutput(); err != nil {
		t.Fatalf("starting the served sshd: %v\n%s", err, out)
	}
	var pid int
	if !waitUntil(10*time.Second, func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "sshd.pid"))
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	}) {
		t.Fatal("the served sshd wrote no pid file")
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGTERM) })
	if !waitUntil(10*time.Second, func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		t.Fatal("the served sshd does not listen")
	}
	return port
}

// remote spells ds as zrep's DST (or SRC) through the served key.
func (s *servedSide) remote(ds string) string { return s.user + "@" + s.m.sshHost + ":" + ds }

// zrepFlags are zrep's ssh flags for a run whose remote sides are the
// served one and, on the guest, root with the lab key.
func (s *servedSide) zrepFlags() []string {
	f := []string{"--ssh-port", s.port}
	if s.m.isHost {
		f = append(f, "-i", s.key)
	} else {
		f = append(f, "-i", s.m.sshKey)
	}
	for _, o := range s.sshOpts {
		f = append(f, "--ssh-option", o)
	}
	return f
}

// ssh runs command through the served key as a plain ssh client would,
// stdin fed from stdin, and returns ssh's exit status and stderr.
func (s *servedSide) ssh(t *testing.T, stdin []byte, command string) (int, string) {
	t.Helper()
	args := []string{"-p", s.port, "-i", s.key, "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"}
	for _, o := range s.sshOpts {
		if !strings.HasPrefix(o, "IdentityFile=") {
			args = append(args, "-o", o)
		}
	}
	args = append(args, "-l", s.user, "--", s.m.sshHost, command)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ssh", args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), stderr.String()
	} else if err != nil {
		t.Fatalf("ssh: %v", err)
	}
	return 0, stderr.String()
}

// serveLog is what serve recorded so far.
func (s *servedSide) serveLog(t *testing.T) string {
	t.Helper()
	out, _ := s.m.run(context.Background(), nil, "cat", s.log)
	return out
}

// state is every dataset, snapshot and bookmark under root with its guid
// and, for filesystems, the properties a hostile client would change: what
// must stay as it was.
func state(t *testing.T, root string) string {
	t.Helper()
	return zfs(t, "get", "-H", "-r", "-o", "name,property,value", "guid,mountpoint,zrep:placeholder", root)
}

// servedPush makes a source tree and a destination pool with a served
// receive-only backup dataset in it, next to another host's backup.
func servedPush(t *testing.T, serveArgs ...string) (src, backup, other string, s *servedSide) {
	t.Helper()
	requireLab(t)
	sp, dp := newPool(t), newPool(t)
	src = sp + "/data"
	createFS(t, src, "one")
	createFS(t, src+"/child", "two")
	zfs(t, "create", dp+"/backup")
	backup, other = dp+"/backup/web1", dp+"/backup/web2"
	createFS(t, other, "")
	snapshot(t, other, "keep")
	s = serveOn(t, machineOf(dp), append([]string{"--receive-only", backup}, serveArgs...)...)
	return src, backup, other, s
}

// A push into a served receive-only dataset works as into any side: a
// full then an incremental recursive run with --snapshot, compressed; the
// served side logs each request.
func TestServedPush(t *testing.T) {
	src, backup, _, s := servedPush(t)
	args := append([]string{"run", "-r", "--snapshot", "--json", "--compress", "zstd"}, s.zrepFlags()...)
	args = append(args, side(src), s.remote(backup))
	zrep(t, args...).mustExit(t, 0)
	writeFile(t, src+"/child", "f", "three")
	r := zrep(t, args...).mustExit(t, 0)
	mustMatch(t, backup, snapshots(t, src))
	mustMatch(t, backup+"/child", snapshots(t, src+"/child"))
	if got := readFile(t, backup+"/child", "f"); got != "three" {
		t.Errorf("backup holds %q, want three", got)
	}
	if b, w := wireOf(t, r); w >= b || b == 0 {
		t.Errorf("zstd put %d wire bytes for %d bytes", w, b)
	}
	// The backup's monitoring check reads the served side too.
	st := zrep(t, append(append([]string{"status", "-r", "--max-age", "1h"}, s.zrepFlags()...), s.remote(backup))...).mustExit(t, 0)
	if !strings.Contains(st.stdout, "ZREP OK") {
		t.Errorf("status of the served backup: %s", st.stdout)
	}
	log := s.serveLog(t)
	if !strings.Contains(log, "accepted from ") || !strings.Contains(log, `"zfs" "receive" "-u"`) {
		t.Errorf("serve's log lacks the receives:\n%s", log)
	}
	if strings.Contains(log, "refused") {
		t.Errorf("serve refused a request of a plain push:\n%s", log)
	}
}

// A hostile client holding the served key cannot remove or overwrite a
// single snapshot: every request outside a push's needs is refused with
// status 126 and a reason, and nothing under the backup root changes.
func TestServedKeyRefusesHostileRequests(t *testing.T) {
	platformIndependent(t)
	src, backup, other, s := servedPush(t)
	args := append([]string{"run", "-r", "--snapshot", "--json"}, s.zrepFlags()...)
	zrep(t, append(args, side(src), s.remote(backup))...).mustExit(t, 0)
	// The source moves on, so that a full stream of it could overwrite.
	writeFile(t, src, "f", "newer")
	snapshot(t, src, "newer")
	stream := []byte(machineOf(src).must(t, "zfs", "send", src+"@newer"))
	pool, _, _ := strings.Cut(backup, "/")
	before := state(t, pool)

	req := func(kind endpoints.RequestKind, argvs ...[]string) string {
		if kind == endpoints.RequestRun || kind == endpoints.RequestKill {
			return endpoints.Request{Kind: kind, Words: argvs[0]}.String()
		}
		var words []string
		for _, a := range argvs {
			words = append(words, strconv.Itoa(len(a)))
			words = append(words, a...)
		}
		return endpoints.Request{Kind: kind, Words: words}.String()
	}
	run := endpoints.RequestRun
	for _, c := range []struct {
		name    string
		command string
		stdin   []byte
	}{
		{"plain destroy -r of the pool", "zfs destroy -r " + pool, nil},
		{"plain shell", "sh -c 'zfs destroy -r " + pool + "'", nil},
		{"destroy a snapshot", req(run, []string{"zfs", "destroy", backup + "@" + strings.Split(snapshots(t, backup)[0], "=")[0]}), nil},
		{"destroy -r of the backup root", req(run, []string{"zfs", "destroy", "-r", backup}), nil},
		{"destroy -r of the pool", req(run, []string{"zfs", "destroy", "-r", pool}), nil},
		{"destroy another host's snapshot", req(run, []string{"zfs", "destroy", other + "@keep"}), nil},
		{"receive into another dataset", req(endpoints.RequestPipeline, []string{"zfs", "receive", "-u", other + "/x"}), stream},
		{"receive -F over the backup's newer snapshots", req(endpoints.RequestPipeline, []string{"zfs", "receive", "-u", "-F", backup}), stream},
		{"rollback", req(run, []string{"zfs", "rollback", "-r", backup + "@" + strings.Split(snapshots(t, backup)[0], "=")[0]}), nil},
		{"release", req(run, []string{"zfs", "release", "zrep_x", backup + "@newer"}), nil},
		{"sh -c", req(run, []string{"sh", "-c", "zfs destroy -r " + pool}), nil},
		{"a command after the request", req(run, []string{"zfs", "list", backup}) + "; zfs destroy -r " + pool, nil},
		{"-o smuggling -F", req(endpoints.RequestPipeline, []string{"zfs", "receive", "-u", "-o", "-F", backup}), stream},
		{"-o mounting elsewhere", req(endpoints.RequestPipeline, []string{"zfs", "receive", "-u", "-o", "mountpoint=/tmp", backup + "/m"}), stream},
		{"-o setting the placeholder mark", req(endpoints.RequestPipeline, []string{"zfs", "receive", "-u", "-o", "zrep:placeholder=on", backup + "/m"}), stream},
		{"a name with spaces and quotes", req(run, []string{"zfs", "destroy", backup + "@x' '-r' '" + pool}), nil},
		{"an option after the operand", req(endpoints.RequestPipeline, []string{"zfs", "receive", "-u", backup, "-F"}), stream},
		{"a name climbing out", req(endpoints.RequestPipeline, []string{"zfs", "receive", "-u", backup + "/../web2/x"}), stream},
		{"a sibling sharing the prefix", req(endpoints.RequestPipeline, []string{"zfs", "receive", "-u", backup + "x"}), stream},
		{"kill of sshd's group", req(endpoints.RequestKill, []string{"1"}), nil},
		{"a command line longer than allowed", req(run, []string{"zfs", "list", strings.Repeat("a", 125<<10)}), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stderr := s.ssh(t, c.stdin, c.command)
			if code == 0 || !strings.Contains(stderr, "zrep serve: refused") {
				t.Errorf("exit %d, stderr:\n%s", code, stderr)
			}
			t.Logf("exit %d: %s", code, strings.TrimSpace(stderr))
		})
	}
	if after := state(t, pool); after != before {
		t.Errorf("the served side changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if log := s.serveLog(t); strings.Count(log, "refused") < 21 {
		t.Errorf("serve logged %d refusals, want 21:\n%s", strings.Count(log, "refused"), log)
	}
}

// Pruning the destination needs --allow-prune on the served side: without
// it --keep-dest fails the filesystem with serve's reason and destroys
// nothing; with it the destination is thinned.
func TestServedPruneNeedsAllowPrune(t *testing.T) {
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("allow-prune=%v", allow), func(t *testing.T) {
			var serveArgs []string
			if allow {
				serveArgs = append(serveArgs, "--allow-prune")
			}
			src, backup, _, s := servedPush(t, serveArgs...)
			for _, n := range []string{"zrep_20261201T000000Z", "zrep_20261202T000000Z", "zrep_20261203T000000Z"} {
				snapshot(t, src, n)
			}
			args := append([]string{"run", "--json"}, s.zrepFlags()...)
			zrep(t, append(args, "--initial", "all", side(src), s.remote(backup))...).mustExit(t, 0)
			before := snapshots(t, backup)
			if len(before) != 3 {
				t.Fatalf("backup holds %v, want the 3 snapshots", before)
			}
			r := zrep(t, append(args, "--keep-dest", "last=1", side(src), s.remote(backup))...)
			if !allow {
				r.mustExit(t, 1)
				mustMatch(t, backup, before)
				if !strings.Contains(r.stdout, "zfs destroy is not allowed under --receive-only "+backup) || !strings.Contains(r.stdout, "--allow-prune") {
					t.Errorf("the Report does not say why:\n%s", r.stdout)
				}
				return
			}
			r.mustExit(t, 0)
			if got := snapshots(t, backup); len(got) != 1 || got[0] != before[len(before)-1] {
				t.Errorf("after --keep-dest last=1: %v", got)
			}
		})
	}
}

// A pull from a served send-only source works with --hold and a codec; a
// --snapshot needs --allow-snapshot there, and is refused without it.
func TestServedPull(t *testing.T) {
	requireLab(t)
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/data", dp+"/copy"
	createFS(t, src, "one")
	createFS(t, src+"/child", "two")
	zfs(t, "snapshot", "-r", src+"@s1")
	for _, allow := range []bool{false, true} {
		serveArgs := []string{"--send-only", src}
		if allow {
			serveArgs = append(serveArgs, "--allow-snapshot")
		}
		s := serveOn(t, machineOf(src), serveArgs...)
		args := append([]string{"run", "-r", "--json", "--hold", "--compress", "lz4"}, s.zrepFlags()...)
		r := zrep(t, append(args, "--snapshot", s.remote(src), side(dst))...)
		if !allow {
			r.mustExit(t, 1)
			if !strings.Contains(r.stdout+r.stderr, "--allow-snapshot") {
				t.Errorf("the refused --snapshot does not name --allow-snapshot:\n%s\n%s", r.stdout, r.stderr)
			}
			zrep(t, append(args, s.remote(src), side(dst))...).mustExit(t, 0)
			continue
		}
		r.mustExit(t, 0)
	}
	mustMatch(t, dst, snapshots(t, src))
	mustMatch(t, dst+"/child", snapshots(t, src+"/child"))
	if n := len(snapshots(t, src)); n != 2 {
		t.Errorf("the source has %d snapshots, want s1 and the set --snapshot took", n)
	}
}

// A stalled stream from a served source is ended there too: the kill of
// its process group is a request serve allows for the groups it started,
// and the retry completes.
func TestServedStalledSenderIsEnded(t *testing.T) {
	src := bigSource(t)
	dst := newPoolSize(t, 512<<20) + "/big"
	stall := "2s"
	if lab.target.platform == "openzfs" {
		stall = "20s"
	}
	s := serveOn(t, machineOf(src), "--send-only", src)
	args := append([]string{"run", "--json", "--retries", "3", "--compress", "zstd", "--buffer", "16M", "--stall-timeout", stall}, s.zrepFlags()...)
	r := startZrep(t, nil, append(args, s.remote(src), side(dst))...)
	resume := pauseSender(t, src)
	defer resume()
	res := r.wait(t, 3*time.Minute).mustExit(t, 0)
	if !strings.Contains(res.stderr, "stalled: no data for "+stall) {
		t.Errorf("the logs do not say the transfer stalled:\n%s", res.stderr)
	}
	if receives(res) < 2 {
		t.Fatalf("the step was not redone (%d receives)", receives(res))
	}
	mustMatch(t, dst, snapshots(t, src))
	if !waitUntil(10*time.Second, func() bool { return len(remotePipelineProcs(t, src, "zfs")) == 0 }) {
		t.Errorf("the stalled zfs send is left: %v", remotePipelineProcs(t, src, "zfs"))
	}
	if log := s.serveLog(t); !strings.Contains(log, "accepted from ") || !strings.Contains(log, ": kill process group ") {
		t.Errorf("serve's log has no accepted kill:\n%s", log)
	}
}

// On OpenZFS a push into a served side that is cut early is resumed: the
// receive is resumable (-s), the resume token is read and zfs send -t
// continues it, all through the served key.
func TestServedPushCutResumes(t *testing.T) {
	requireLab(t)
	if lab.target.platform != "openzfs" {
		t.Skip("resumable receive is OpenZFS's")
	}
	sp, dp := newPoolSize(t, 256<<20), newPoolSize(t, 256<<20)
	src, backup := sp+"/r", dp+"/web1"
	zfs(t, "create", "-o", "compression=off", src)
	const mib = 24
	machineOf(src).script(t, `mp=$(zfs get -H -o value mountpoint "$1"); head -c "$2"M /dev/urandom >"$mp/data"; sync`, src, fmt.Sprint(mib))
	snapshot(t, src, "s1")
	s := serveOn(t, machineOf(dp), "--receive-only", backup)
	args := append([]string{"run", "--json", "--retries", "3", "--compress", "zstd", "--buffer", "16M"}, s.zrepFlags()...)
	g := holdFirstSend(t, src)
	r := startZrep(t, g.env, append(args, side(src), s.remote(backup))...)
	g.cut(t)
	res := r.wait(t, 5*time.Minute).mustExit(t, 0)
	mustMatch(t, backup, snapshots(t, src))
	f := res.report(t).filesystem(t, src)
	if len(f.Steps) != 1 || !f.Steps[0].Resumed {
		t.Errorf("the cut transfer was not resumed: %v", f.Steps)
	}
	// The guest's served account may have served other tests before:
	// only this backup's lines count.
	for _, line := range strings.Split(s.serveLog(t), "\n") {
		if strings.Contains(line, "--receive-only "+backup+":") && strings.Contains(line, "refused") {
			t.Errorf("serve refused a request of the resumed push: %s", line)
		}
	}
}

// A no-op recursive push into a served side costs what it costs against
// a plain sshd: one login and one request (the start-up request) per
// remote side. The wall times of both, and of the
// bare listing over ssh, are logged.
func TestServedNoOpRunCost(t *testing.T) {
	requireLab(t)
	sp, dp := newPoolSize(t, 256<<20), newPoolSize(t, 256<<20)
	src, backup := sp+"/tree", dp+"/tree"
	n := costTree(t, src)
	s := serveOn(t, machineOf(dp), "--receive-only", backup)
	served := append(append([]string{"run", "-r", "--json"}, s.zrepFlags()...), side(src), s.remote(backup))
	p := plainOn(t, machineOf(dp))
	plain := append(append([]string{"run", "-r", "--json"}, p.zrepFlags()...), side(src), p.remote(backup))
	zrep(t, served...).mustExit(t, 0)

	// one runs args once and checks its cost: one login per remote side,
	// the start-up's zfs commands on the destination, nothing sent.
	one := func(name string, logins func(*testing.T) int, args []string) time.Duration {
		before := logins(t)
		begin := time.Now()
		r := zrep(t, args...).mustExit(t, 0)
		took := time.Since(begin)
		perRole := map[string]int{}
		for _, c := range r.argv {
			perRole[c.Role]++
		}
		remoteSides := 1
		if !machineOf(src).isHost {
			remoteSides = 2
		}
		if n := logins(t) - before; n != remoteSides {
			t.Errorf("%s: %d ssh logins, want one per remote side (%d)", name, n, remoteSides)
		}
		if perRole["destination"] == 0 || perRole["destination"] > 5 {
			t.Errorf("%s: %d zfs invocations on the destination, want 1 to 5 (the probe and the listing's four)", name, perRole["destination"])
		}
		if b := r.report(t).Bytes; b != 0 {
			t.Errorf("%s: a no-op run sent %d bytes", name, b)
		}
		return took
	}
	// Interleaved, so that the machine's other load falls on both alike.
	// The guest's emulated zfs makes each round take seconds, and what is
	// checked there (logins, requests, zfs commands) is the same in every
	// round: one round of each.
	rounds := 7
	if lab.target.platform == "openzfs" {
		rounds = 1
	}
	var servedTimes, plainTimes []time.Duration
	for i := 0; i < rounds; i++ {
		before := strings.Count(s.serveLog(t), "accepted from ")
		servedTimes = append(servedTimes, one("served", s.logins, served))
		// The start-up request, and the delegation check of an account
		// that is not called root (the lab's is uid 0 by another name):
		// over the one login.
		if n := strings.Count(s.serveLog(t), "accepted from ") - before; n != 2 {
			t.Errorf("served: %d requests, want the start-up request and the delegation check", n)
		}
		plainTimes = append(plainTimes, one("plain", p.logins, plain))
	}
	slices.Sort(servedTimes)
	slices.Sort(plainTimes)
	tServed, tPlain := servedTimes[rounds/2], plainTimes[rounds/2]
	// The bare listing, as zrep's start-up runs it, over a login of its own.
	var bare []time.Duration
	for i := 0; i < rounds; i++ {
		begin := time.Now()
		if code, stderr := p.ssh(t, nil, shellLine([]string{"zfs", "get", "-H", "-p", "-r", "-o", "name,property,value,source", "type,guid,createtxg,creation,zrep:placeholder,origin", backup})); code != 0 {
			t.Fatalf("bare listing: exit %d\n%s", code, stderr)
		}
		bare = append(bare, time.Since(begin))
	}
	slices.Sort(bare)
	t.Logf("no-op run -r of %d filesystems: served %v, plain sshd %v (%.2fx); one bare listing of the destination over ssh %v (medians of %d)",
		n, tServed.Round(time.Millisecond), tPlain.Round(time.Millisecond), float64(tServed)/float64(tPlain), bare[rounds/2].Round(time.Millisecond), rounds)
}

// The data path of a served side is the plain one: serve hands the
// stream's descriptors to the shell it execs, and copies nothing. This
// measurement pushes 256 MiB through a served key and a plain one,
// alternating, and logs the rates (medians of 4); it runs only with
// ZREP_E2E_MEASURE=1, since it moves 1.5 GiB through zfs-fuse.
func TestServedLineRate(t *testing.T) {
	if os.Getenv("ZREP_E2E_MEASURE") != "1" {
		t.Skip("a measurement: run with ZREP_E2E_MEASURE=1")
	}
	requireLab(t)
	const mib = 256
	sp, dp := newPoolSize(t, (mib+128)<<20), newPoolSize(t, (mib+128)<<20)
	src := sp + "/big"
	createBulk(t, src, "big.bin", mib)
	snapshot(t, src, "big")
	dst := dp + "/big"
	s := serveOn(t, machineOf(dp), "--receive-only", dst)
	p := plainOn(t, machineOf(dp))
	push := func(k *servedSide) float64 {
		if exists(t, dst) {
			destroy(t, dst)
		}
		begin := time.Now()
		r := zrep(t, append(append([]string{"run", "--json"}, k.zrepFlags()...), side(src), k.remote(dst))...).mustExit(t, 0)
		took := time.Since(begin)
		mustMatch(t, dst, snapshots(t, src))
		return float64(r.report(t).Bytes) / (1 << 20) / took.Seconds()
	}
	var served, plain []float64
	for i := 0; i < 4; i++ {
		// Each goes first in every other round.
		if i%2 == 0 {
			served = append(served, push(s))
			plain = append(plain, push(p))
		} else {
			plain = append(plain, push(p))
			served = append(served, push(s))
		}
	}
	slices.Sort(served)
	slices.Sort(plain)
	ms, mp := (served[1]+served[2])/2, (plain[1]+plain[2])/2
	t.Logf("push of %d MiB: served %.1f MiB/s, plain sshd %.1f MiB/s (%.2fx); rounds served %.1f, plain %.1f",
		mib, ms, mp, ms/mp, served, plain)
}

// The one overwrite a served receive-only side allows without
// --allow-rollback is SPEC's: a full receive -F into a placeholder that
// zrep made there (zrep:placeholder=on set locally).
func TestServedPlaceholderIsReplaced(t *testing.T) {
	requireLab(t)
	sp, dp := newPool(t), newPool(t)
	src, backup := sp+"/data", dp+"/web1"
	createFS(t, src, "parent")
	createFS(t, src+"/child", "child")
	snapshot(t, src+"/child", "c1")
	s := serveOn(t, machineOf(dp), "--receive-only", backup)
	args := append([]string{"run", "-r", "--json"}, s.zrepFlags()...)
	zrep(t, append(args, side(src), s.remote(backup))...).mustExit(t, 0)
	if v, source := property(t, backup, "zrep:placeholder"); v != "on" || source != "local" {
		t.Fatalf("%s is no placeholder (zrep:placeholder %s, %s)", backup, v, source)
	}
	snapshot(t, src, "p1")
	zrep(t, append(args, side(src), s.remote(backup))...).mustExit(t, 0)
	mustMatch(t, backup, snapshots(t, src))
	mustMatch(t, backup+"/child", snapshots(t, src+"/child"))
	if v, _ := property(t, backup, "zrep:placeholder"); v != "off" {
		t.Errorf("the replaced placeholder still says zrep:placeholder=%s", v)
	}
	if log := s.serveLog(t); !strings.Contains(log, `"-F"`) || strings.Contains(log, "refused") {
		t.Errorf("serve's log lacks the accepted receive -F, or refused something:\n%s", log)
	}
}

// A backup host holding a served send-only key can read its source but
// not change it, nor read another dataset.
func TestServedSendOnlyRefusesHostileRequests(t *testing.T) {
	platformIndependent(t)
	sp := newPool(t)
	src, other := sp+"/data", sp+"/private"
	createFS(t, src, "one")
	createFS(t, other, "secret")
	zfs(t, "snapshot", "-r", sp+"@s1")
	s := serveOn(t, machineOf(src), "--send-only", src)
	before := state(t, sp)
	run := func(argv ...string) string {
		return endpoints.Request{Kind: endpoints.RequestRun, Words: argv}.String()
	}
	for _, c := range []struct{ name, command string }{
		{"destroy a source snapshot", run("zfs", "destroy", src+"@s1")},
		{"destroy the source", run("zfs", "destroy", "-r", src)},
		{"send another dataset", run("zfs", "send", other+"@s1")},
		{"send the whole pool", run("zfs", "send", "-R", sp+"@s1")},
		{"receive into the source", run("zfs", "receive", "-u", "-F", src)},
		{"snapshot without --allow-snapshot", run("zfs", "snapshot", src+"@x")},
		{"release another tag", run("zfs", "release", "keep", src+"@s1")},
		{"rollback", run("zfs", "rollback", "-r", src+"@s1")},
		{"a shell", run("sh", "-c", "cat /etc/shadow")},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stderr := s.ssh(t, nil, c.command)
			if code == 0 || !strings.Contains(stderr, "zrep serve: refused") {
				t.Errorf("exit %d, stderr:\n%s", code, stderr)
			}
		})
	}
	if after := state(t, sp); after != before {
		t.Errorf("the served source changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}
