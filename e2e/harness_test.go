package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// lab is the environment every test shares, set up once in TestMain.
var lab struct {
	ready     bool
	reason    string
	zrep      string // the built binary
	imgDir    string // where pool images live
	sshHost   string
	sshUser   string
	sshPort   string
	sshKey    string
	knownHost string
	sshdLog   string
}

func TestMain(m *testing.M) {
	cleanup := setUp()
	code := m.Run()
	cleanup()
	os.Exit(code)
}

func setUp() (cleanup func()) {
	cleanup = func() {}
	if os.Geteuid() != 0 {
		lab.reason = "the end-to-end tests need root (zfs-fuse pools and a private sshd)"
		return
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		lab.reason = "the end-to-end tests need FUSE (/dev/fuse) for zfs-fuse"
		return
	}
	out, err := exec.Command("../lab/lab.sh", "up").Output()
	if err != nil {
		lab.reason = fmt.Sprintf("lab/lab.sh up failed: %v", err)
		if ee, ok := err.(*exec.ExitError); ok {
			lab.reason += ": " + string(ee.Stderr)
		}
		return
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	lab.sshHost, lab.sshUser, lab.sshPort = env["ZREP_LAB_SSH_HOST"], env["ZREP_LAB_SSH_USER"], env["ZREP_LAB_SSH_PORT"]
	lab.sshKey, lab.knownHost = env["ZREP_LAB_SSH_KEY"], env["ZREP_LAB_SSH_KNOWN_HOSTS"]
	lab.sshdLog = env["ZREP_LAB_SSHD_LOG"]

	dir, err := os.MkdirTemp("/var/tmp", "zrep-e2e-")
	if err != nil {
		lab.reason = err.Error()
		return
	}
	lab.imgDir = dir
	destroyStalePools()
	lab.zrep = filepath.Join(dir, "zrep")
	build := exec.Command("go", "build", "-o", lab.zrep, ".")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		lab.reason = fmt.Sprintf("building zrep: %v\n%s", err, out)
		return
	}
	lab.ready = true
	return func() { os.RemoveAll(dir) }
}

// destroyStalePools removes pools left by earlier runs of this suite whose
// process is gone (a run killed by its timeout cannot clean up).
func destroyStalePools() {
	out, err := exec.Command("zpool", "list", "-H", "-o", "name").Output()
	if err != nil {
		return
	}
	for _, name := range strings.Fields(string(out)) {
		var pid, n int
		if _, err := fmt.Sscanf(name, "zt%d_%d", &pid, &n); err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == nil {
			continue // another suite still runs
		}
		exec.Command("zpool", "destroy", "-f", name).Run()
	}
}

// requireLab skips the test when the lab cannot run, or fails it in CI.
func requireLab(t *testing.T) {
	t.Helper()
	if lab.ready {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("end-to-end lab unavailable in CI: %s", lab.reason)
	}
	t.Skip(lab.reason)
}

var poolSeq atomic.Int64

// livePools are the pools this suite made and has not destroyed yet.
var livePools sync.Map

// newPool creates a throw-away file-backed pool and destroys it after the test.
func newPool(t *testing.T) string {
	t.Helper()
	return newPoolSize(t, 192<<20)
}

// newPoolSize creates a throw-away pool on a sparse file of size bytes.
func newPoolSize(t *testing.T, size int64) string {
	t.Helper()
	requireLab(t)
	name := fmt.Sprintf("zt%d_%d", os.Getpid(), poolSeq.Add(1))
	img := filepath.Join(lab.imgDir, name+".img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	mustZFS(t, "zpool", "create", "-m", "/"+name, name, img)
	livePools.Store(name, true)
	t.Cleanup(func() {
		// A receive killed by a test may keep the pool busy for a moment.
		for i := 0; i < 20; i++ {
			if exec.Command("zpool", "destroy", "-f", name).Run() == nil {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		os.Remove(img)
		livePools.Delete(name)
	})
	return name
}

// mustZFS runs a zfs or zpool command and returns its stdout.
func mustZFS(t *testing.T, argv ...string) string {
	t.Helper()
	// A wedged zfs-fuse daemon would otherwise hang the whole suite.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%q: %v: %s", argv, err, stderr.String())
	}
	return string(out)
}

func zfs(t *testing.T, args ...string) string {
	t.Helper()
	return mustZFS(t, append([]string{"zfs"}, args...)...)
}

// createFS creates a filesystem and writes file f with data into it.
func createFS(t *testing.T, fs string, data string) {
	t.Helper()
	zfs(t, "create", "-p", fs)
	if data != "" {
		writeFile(t, fs, "f", data)
	}
}

func mountpoint(t *testing.T, fs string) string {
	t.Helper()
	return strings.TrimSpace(zfs(t, "get", "-H", "-o", "value", "mountpoint", fs))
}

func writeFile(t *testing.T, fs, name, data string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(mountpoint(t, fs), name), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readFile reads a file as of fs's newest snapshot, through a temporary
// clone: mounting a received filesystem itself would count as a change to
// it on zfs-fuse and make the next incremental receive fail.
func readFile(t *testing.T, fs, name string) string {
	t.Helper()
	snaps := snapshots(t, fs)
	if len(snaps) == 0 {
		t.Fatalf("%s has no snapshot to read %s from", fs, name)
	}
	newest, _, _ := strings.Cut(snaps[len(snaps)-1], "=")
	pool, _, _ := strings.Cut(fs, "/")
	clone := fmt.Sprintf("%s/zrepcheck%d", pool, poolSeq.Add(1))
	zfs(t, "clone", fs+"@"+newest, clone)
	defer func() {
		// zfs-fuse may keep a just-read filesystem busy for a moment.
		ok := waitUntil(20*time.Second, func() bool {
			return exec.Command("zfs", "destroy", "-f", clone).Run() == nil
		})
		if !ok {
			t.Errorf("cannot destroy the check clone %s", clone)
		}
	}()
	if v, _ := property(t, clone, "mounted"); v != "yes" {
		zfs(t, "mount", clone)
	}
	b, err := os.ReadFile(filepath.Join(mountpoint(t, clone), name))
	if err != nil {
		t.Fatalf("read %s in %s@%s: %v", name, fs, newest, err)
	}
	return string(b)
}

// destroy destroys fs and its descendants, waiting out a busy zfs-fuse.
func destroy(t *testing.T, fs string) {
	t.Helper()
	if !waitUntil(20*time.Second, func() bool {
		return exec.Command("zfs", "destroy", "-r", "-f", fs).Run() == nil
	}) {
		t.Fatalf("cannot destroy %s", fs)
	}
}

// readLive reads a file of fs as it is now, mounting fs if needed.
func readLive(t *testing.T, fs, name string) string {
	t.Helper()
	if v, _ := property(t, fs, "mounted"); v != "yes" {
		zfs(t, "mount", fs)
		defer zfs(t, "umount", fs)
	}
	b, err := os.ReadFile(filepath.Join(mountpoint(t, fs), name))
	if err != nil {
		t.Fatalf("read %s in %s: %v", name, fs, err)
	}
	return string(b)
}

func snapshot(t *testing.T, fs, name string) {
	t.Helper()
	zfs(t, "snapshot", fs+"@"+name)
}

// snapshots lists fs's snapshots in creation order as "name=guid".
func snapshots(t *testing.T, fs string) []string {
	t.Helper()
	out := zfs(t, "get", "-H", "-p", "-r", "-o", "name,property,value", "guid,createtxg", fs)
	type snap struct {
		name, guid string
		txg        int64
	}
	byName := map[string]*snap{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 || !strings.HasPrefix(f[0], fs+"@") {
			continue
		}
		name := strings.TrimPrefix(f[0], fs+"@")
		s := byName[name]
		if s == nil {
			s = &snap{name: name}
			byName[name] = s
		}
		switch f[1] {
		case "guid":
			s.guid = f[2]
		case "createtxg":
			fmt.Sscan(f[2], &s.txg)
		}
	}
	all := make([]*snap, 0, len(byName))
	for _, s := range byName {
		all = append(all, s)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].txg < all[j].txg })
	res := make([]string, len(all))
	for i, s := range all {
		res[i] = s.name + "=" + s.guid
	}
	return res
}

func exists(fs string) bool {
	return exec.Command("zfs", "list", "-H", "-o", "name", fs).Run() == nil
}

// property returns a property's value and source.
func property(t *testing.T, fs, prop string) (value, source string) {
	t.Helper()
	f := strings.Split(strings.TrimSpace(zfs(t, "get", "-H", "-o", "value,source", prop, fs)), "\t")
	return f[0], f[1]
}

// result is what one zrep invocation did.
type result struct {
	code   int
	stdout string
	stderr string
	argv   []zfsCall
}

// zfsCall is one line of zrep's argv log.
type zfsCall struct {
	Role string   `json:"role"`
	Host string   `json:"host"`
	Argv []string `json:"argv"`
}

func (c zfsCall) String() string { return c.Role + "@" + c.Host + ": " + strings.Join(c.Argv, " ") }

// zrep runs the binary with args; the lab's retry wait is short so that
// retries do not slow the suite.
func zrep(t *testing.T, args ...string) result {
	t.Helper()
	return zrepCtx(context.Background(), t, nil, args...)
}

func zrepCtx(ctx context.Context, t *testing.T, env []string, args ...string) result {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "argv.jsonl")
	placeholders := localPlaceholders(t)
	cmd := exec.CommandContext(ctx, lab.zrep, args...)
	cmd.Env = append(os.Environ(),
		"ZREP_ARGV_LOG="+logPath,
		"ZREP_LOCK_DIR="+filepath.Join(lab.imgDir, "locks"),
		"ZREP_RETRY_WAIT=300ms",
		"ZREP_PROGRESS=never",
	)
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), argv: readArgvLog(t, logPath)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("zrep %q: %v", args, err)
	}
	t.Logf("zrep %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(quoteAll(args), " "), r.code, r.stdout, r.stderr)
	assertSafe(t, args, r.argv, placeholders)
	return r
}

// localPlaceholders lists the datasets that are placeholders now.
func localPlaceholders(t *testing.T) map[string]bool {
	t.Helper()
	pools := []string{"get", "-H", "-r", "-s", "local", "-o", "name,value", "zrep:placeholder"}
	livePools.Range(func(k, _ any) bool { pools = append(pools, k.(string)); return true })
	out, err := exec.Command("zfs", pools...).Output()
	if err != nil {
		return nil
	}
	m := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if name, v, ok := strings.Cut(line, "\t"); ok && v == "on" {
			m[name] = true
		}
	}
	return m
}

// assertSafe checks SPEC 6 on the argv log of one run: the source is only
// read; plan writes nothing; on the destination no destroy, and rollback or
// receive -F only with --rollback, except -F of a full stream into what was
// a placeholder.
func assertSafe(t *testing.T, args []string, calls []zfsCall, placeholders map[string]bool) {
	t.Helper()
	rollback := false
	for _, a := range args {
		rollback = rollback || a == "--rollback"
	}
	plan := len(args) > 0 && args[0] == "plan"
	for _, c := range calls {
		if len(c.Argv) < 2 || c.Argv[0] != "zfs" {
			t.Errorf("not a zfs argv: %s", c)
			continue
		}
		sub, rest := c.Argv[1], c.Argv[2:]
		has := func(flag string) bool {
			for _, a := range rest {
				if a == flag {
					return true
				}
			}
			return false
		}
		switch {
		case sub == "get" || sub == "list" || sub == "version":
			continue
		case plan && sub == "send" && has("-n"):
			continue
		case plan:
			t.Errorf("plan ran %s", c)
		case c.Role == "source" && sub != "send":
			t.Errorf("the source was changed: %s", c)
		case c.Role == "destination" && (sub == "destroy" || sub == "rollback") && !rollback:
			t.Errorf("%s without --rollback", c)
		case c.Role == "destination" && (sub == "receive" || sub == "recv") && has("-F") && !rollback:
			target := c.Argv[len(c.Argv)-1]
			if !placeholders[target] {
				t.Errorf("receive -F into %s, which was no placeholder, without --rollback: %s", target, c)
			}
		}
	}
}

func quoteAll(args []string) []string {
	q := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " '\"$;") || a == "" {
			a = fmt.Sprintf("%q", a)
		}
		q[i] = a
	}
	return q
}

func readArgvLog(t *testing.T, path string) []zfsCall {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var calls []zfsCall
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var c zfsCall
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("argv log line %q: %v", sc.Text(), err)
		}
		calls = append(calls, c)
	}
	return calls
}

// mustExit fails the test unless zrep exited with want.
func (r result) mustExit(t *testing.T, want int) result {
	t.Helper()
	if r.code != want {
		t.Fatalf("zrep exited %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, want, r.stdout, r.stderr)
	}
	return r
}

// calls returns the logged zfs subcommands (argv[1]) of one role.
func (r result) subcommands(role string) []string {
	var s []string
	for _, c := range r.argv {
		if c.Role == role && len(c.Argv) > 1 {
			s = append(s, c.Argv[1])
		}
	}
	return s
}

// sshFlags are the flags that reach the lab's sshd.
func sshFlags() []string {
	return []string{"--ssh-port", lab.sshPort, "-i", lab.sshKey,
		"--ssh-option", "UserKnownHostsFile=" + lab.knownHost}
}

// remote names a dataset on the lab's ssh host.
func remote(ds string) string {
	return lab.sshUser + "@" + lab.sshHost + ":" + ds
}

// jsonOf decodes zrep's JSON output.
func jsonOf(t *testing.T, r result) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, r.stdout)
	}
	return v
}

func equalLists(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
