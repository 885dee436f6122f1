//go:build lab

package endpoints_test

// The ssh path against the lab's private sshd on 127.0.0.1 (lab/lab.sh),
// which reaches this machine's own zfs-fuse: a "remote" side that is local
// underneath.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zrep/zrep/endpoints"
	"github.com/zrep/zrep/pdu"
)

// labSSH returns the lab's ssh settings, starting the lab if the
// environment does not name one.
func labSSH(t *testing.T) (user, host string, opts endpoints.SSHOptions) {
	t.Helper()
	needZFS(t)
	env := map[string]string{}
	for _, k := range []string{"ZREP_LAB_SSH_HOST", "ZREP_LAB_SSH_PORT", "ZREP_LAB_SSH_USER", "ZREP_LAB_SSH_KEY", "ZREP_LAB_SSH_KNOWN_HOSTS"} {
		if v := os.Getenv(k); v != "" {
			env[k] = v
		}
	}
	if env["ZREP_LAB_SSH_HOST"] == "" {
		var stderr bytes.Buffer
		cmd := exec.Command("bash", filepath.Join("..", "lab", "lab.sh"), "up")
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			msg := "cannot start the ssh lab (lab/lab.sh up): " + err.Error() + ": " + stderr.String()
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), "="); ok {
				env[k] = v
			}
		}
	}
	port, _ := strconv.Atoi(env["ZREP_LAB_SSH_PORT"])
	opts = endpoints.SSHOptions{
		Port:     port,
		Identity: env["ZREP_LAB_SSH_KEY"],
		Options:  []string{"UserKnownHostsFile=" + env["ZREP_LAB_SSH_KNOWN_HOSTS"], "BatchMode=yes"},
	}
	return env["ZREP_LAB_SSH_USER"], env["ZREP_LAB_SSH_HOST"], opts
}

func TestSSHReplicatesThroughOneSharedLogin(t *testing.T) {
	user, host, sshOpts := labSSH(t)
	pool := testPool(t)
	ctx := ctxT(t)
	fs := pool + "/src dir/v1.0:x"
	sh(t, "zfs create -p "+q(fs))
	writeData(t, fs, "a", 256)
	sh(t, "zfs snapshot "+q(fs+"@s 1")+" && zfs snapshot "+q(fs+"@s2"))

	argvLog := filepath.Join(t.TempDir(), "argv.jsonl")
	t.Setenv(endpoints.ArgvLogEnv, argvLog)
	src := endpoints.New(endpoints.Side{User: user, Host: host, Dataset: pool + "/src dir"},
		endpoints.Options{Role: "source", Recursive: true, SSH: sshOpts})
	defer src.Close()
	dstRoot := pool + "/dst"
	sh(t, "zfs create "+dstRoot)
	dst := endpoints.New(endpoints.Side{User: user, Host: host, Dataset: dstRoot + "/v1.0:x"},
		endpoints.Options{Role: "destination", SSH: sshOpts})
	defer dst.Close()

	begin := time.Now()
	fss, err := src.ListFilesystems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(fss) != 2 || fss[1].Path != fs || versionNames(fss[1].Versions) != "@s 1 @s2" {
		t.Fatalf("remote listing: %s", summaryOf(fss))
	}
	if got, err := dst.ListFilesystems(ctx); err != nil || len(got) != 0 {
		t.Fatalf("remote destination not yet there: %v %v", got, err)
	}
	vs := fss[1].Versions
	for i, v := range vs {
		req := &pdu.SendReq{Filesystem: fs, To: v}
		if i > 0 {
			req.From = vs[i-1]
		}
		if err := transfer(t, ctx, src, dst, req, &pdu.ReceiveReq{Filesystem: dstRoot + "/v1.0:x"}); err != nil {
			t.Fatalf("step to %s: %v", v.Name, err)
		}
	}
	got, err := dst.ListFilesystemVersions(ctx, dstRoot+"/v1.0:x")
	if err != nil || versionNames(got) != "@s 1 @s2" || got[1].Guid != vs[1].Guid {
		t.Fatalf("received over ssh: %s, %v", versionNames(got), err)
	}
	t.Logf("remote list, 2 sends, 2 receives over ssh in %v", time.Since(begin))

	log, _ := os.ReadFile(argvLog)
	if !strings.Contains(string(log), `"role":"destination","host":"`+host+`","argv":["zfs","receive","-u","`+dstRoot+`/v1.0:x"]`) {
		t.Fatalf("argv log lacks the remote receive:\n%s", log)
	}

	// Each side logged in once: its master is up and answers.
	ctlDirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "zrep-ssh-*", "cm"))
	if len(ctlDirs) < 2 {
		t.Fatalf("want a control socket per side, found %q", ctlDirs)
	}
	// (Other zrep runs on this machine may own some of these sockets.)
	running := 0
	for _, ctl := range ctlDirs {
		check := exec.Command("ssh", "-o", "ControlPath="+ctl, "-O", "check", "-p", strconv.Itoa(sshOpts.Port), host)
		if check.Run() == nil {
			running++
		}
	}
	if running < 2 {
		t.Fatalf("want a running shared connection per side, %d of %q answer", running, ctlDirs)
	}
	before := masters(t)
	if err := src.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := dst.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if after := masters(t); after > before-2 {
		t.Fatalf("ssh masters before close %d, after %d: Close must end them", before, after)
	}
	if err := src.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := src.ListFilesystems(ctx); err == nil {
		t.Fatal("a closed endpoint still ran commands")
	}
}

// masters counts this machine's ssh master processes started by zrep.
func masters(t *testing.T) int {
	out, _ := exec.Command("pgrep", "-fc", "ControlPath=/tmp/zrep-ssh-.*ControlMaster=yes").Output()
	n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	return n
}

func summaryOf(fss []*pdu.Filesystem) string {
	var s []string
	for _, fs := range fss {
		s = append(s, fs.Path+" "+versionNames(fs.Versions))
	}
	return strings.Join(s, "; ")
}

func TestSSHDeadHostIsRetryableAndQuick(t *testing.T) {
	user, _, sshOpts := labSSH(t)
	sshOpts.Port = 1 // nothing listens there
	sshOpts.ConnectTimeout = 2 * time.Second
	e := endpoints.New(endpoints.Side{User: user, Host: "127.0.0.1", Dataset: "tank/x"}, endpoints.Options{Role: "source", SSH: sshOpts})
	defer e.Close()
	begin := time.Now()
	_, err := e.ListFilesystems(ctxT(t))
	if pdu.ClassOf(err) != pdu.Retryable || !errors.Is(err, endpoints.ErrConnection) {
		t.Fatalf("dead host: %v (%v)", err, pdu.ClassOf(err))
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
	t.Logf("dead host: %v", err)
	// A later call tries again rather than remembering the failure.
	if _, err := e.ListFilesystems(ctxT(t)); pdu.ClassOf(err) != pdu.Retryable {
		t.Fatalf("second try: %v", err)
	}
}

func TestSSHCancelEndsRemoteSend(t *testing.T) {
	user, host, sshOpts := labSSH(t)
	pool := testPool(t)
	fs := pool + "/src"
	sh(t, "zfs create "+fs)
	writeData(t, fs, "big", 8<<10)
	sh(t, "zfs snapshot "+fs+"@s1")
	src := endpoints.New(endpoints.Side{User: user, Host: host, Dataset: fs}, endpoints.Options{Role: "source", SSH: sshOpts})
	defer src.Close()
	ctx, cancel := context.WithCancel(ctxT(t))
	stream, err := src.Send(ctx, &pdu.SendReq{Filesystem: fs, To: &pdu.FilesystemVersion{Name: "s1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Read(make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	cancel()
	begin := time.Now()
	err = stream.Close()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("close after cancel: %v", err)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
	// The remote zfs send ends with its ssh session.
	deadline := time.Now().Add(5 * time.Second)
	for exec.Command("pgrep", "-f", "zfs send "+fs+"@s1").Run() == nil {
		if time.Now().After(deadline) {
			t.Fatal("remote zfs send still running after cancel")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSSHWithSpaceInTMPDIR: a TMPDIR holding a space (or a % that ssh
// would expand) does not break the shared connection's control socket.
func TestSSHWithSpaceInTMPDIR(t *testing.T) {
	user, host, sshOpts := labSSH(t)
	pool := testPool(t)
	// Short, as a TMPDIR usually is: a long one is not used for the socket.
	tmp, err := os.MkdirTemp("/tmp", "a b%h")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	t.Setenv("TMPDIR", tmp)
	e := endpoints.New(endpoints.Side{User: user, Host: host, Dataset: pool},
		endpoints.Options{Role: "source", SSH: sshOpts})
	defer e.Close()
	fss, err := e.ListFilesystems(ctxT(t))
	if err != nil {
		t.Fatalf("list over ssh with TMPDIR=%q: %v", tmp, err)
	}
	if len(fss) != 1 || fss[0].Path != pool {
		t.Errorf("listed %v, want %s", fss, pool)
	}
}

// TestRemoteCommandTimeoutEndsRemoteProcess: a remote command that
// carries no stream and hangs is ended after the command timeout, on the
// remote host too: its process group there is killed through the shared
// connection, since the hung program would not notice its ssh client
// going away.
func TestRemoteCommandTimeoutEndsRemoteProcess(t *testing.T) {
	user, host, sshOpts := labSSH(t)
	e := endpoints.New(endpoints.Side{User: user, Host: host, Dataset: "unused"},
		endpoints.Options{Role: "destination", SSH: sshOpts, CommandTimeout: time.Second})
	defer e.Close()
	// A sleep no other process runs, so it can be found on the lab's
	// host, which is this one.
	secs := strconv.Itoa(500 + os.Getpid()%400)
	err := e.RunCommand(ctxT(t), []string{"sleep", secs})
	if err == nil || !pdu.IsRetryable(err) || !strings.Contains(err.Error(), "--command-timeout") {
		t.Fatalf("error %v (%v), want a retryable command timeout", err, pdu.ClassOf(err))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := exec.Command("pgrep", "-f", "^sleep "+secs+"$").Output()
		if len(bytes.TrimSpace(out)) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the remote sleep %s still runs: pids %s", secs, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
