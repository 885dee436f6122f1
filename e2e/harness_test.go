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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// lab is the environment every test shares, set up once in TestMain.
var lab struct {
	ready  bool
	reason string
	zrep   string   // the built binary
	tmp    string   // scratch directory on this host
	target *machine // where the tier's zfs runs: newPool makes pools there
	host   *machine // the zfs-fuse lab on this host, nil if unavailable
	// hostReason says why host is nil.
	hostReason string
}

func TestMain(m *testing.M) {
	cleanup := setUp()
	code := m.Run()
	cleanup()
	os.Exit(code)
}

func setUp() (cleanup func()) {
	cleanup = func() {}
	dir, err := os.MkdirTemp("/var/tmp", "zrep-e2e-")
	if err != nil {
		lab.reason = err.Error()
		return
	}
	lab.tmp = dir
	cleanup = func() { os.RemoveAll(dir) }
	lab.zrep = filepath.Join(dir, "zrep")
	build := exec.Command("go", "build", "-o", lab.zrep, ".")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		lab.reason = fmt.Sprintf("building zrep: %v\n%s", err, out)
		return
	}
	lab.host, lab.hostReason = startHostLab(dir)
	target, done, reason := setUpTarget(dir)
	if target == nil {
		lab.reason = reason
		return
	}
	lab.target = target
	destroyStalePools(target)
	if lab.host != nil && lab.host != target {
		destroyStalePools(lab.host)
	}
	lab.ready = true
	return func() { done(); os.RemoveAll(dir) }
}

// startHostLab brings up the zfs-fuse lab on this host (lab/lab.sh up): the
// zfs-fuse daemon and a private sshd on 127.0.0.1.
func startHostLab(dir string) (*machine, string) {
	if os.Geteuid() != 0 {
		return nil, "the end-to-end tests need root (zfs-fuse pools and a private sshd)"
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return nil, "the end-to-end tests need FUSE (/dev/fuse) for zfs-fuse"
	}
	out, err := exec.Command("../lab/lab.sh", "up").Output()
	if err != nil {
		reason := fmt.Sprintf("lab/lab.sh up failed: %v", err)
		if ee, ok := err.(*exec.ExitError); ok {
			reason += ": " + string(ee.Stderr)
		}
		return nil, reason
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	sshdLog := env["ZREP_LAB_SSHD_LOG"]
	return &machine{
		name:       "zfs-fuse on this host",
		platform:   "zfs-fuse",
		isHost:     true,
		poolDir:    dir,
		sshHost:    env["ZREP_LAB_SSH_HOST"],
		sshUser:    env["ZREP_LAB_SSH_USER"],
		sshPort:    env["ZREP_LAB_SSH_PORT"],
		sshKey:     env["ZREP_LAB_SSH_KEY"],
		sshOptions: []string{"UserKnownHostsFile=" + env["ZREP_LAB_SSH_KNOWN_HOSTS"]},
		sshLogins: func(t *testing.T) int {
			t.Helper()
			b, err := os.ReadFile(sshdLog)
			if err != nil {
				t.Fatalf("sshd log: %v", err)
			}
			return strings.Count(string(b), "Accepted publickey")
		},
	}, ""
}

// destroyStalePools removes pools left on m by earlier runs of this suite
// whose process is gone (a run killed by its timeout cannot clean up).
func destroyStalePools(m *machine) {
	out, err := m.run(context.Background(), nil, "zpool", "list", "-H", "-o", "name")
	if err != nil {
		return
	}
	for _, name := range strings.Fields(out) {
		var pid, n int
		if _, err := fmt.Sscanf(name, "zt%d_%d", &pid, &n); err != nil || pid == os.Getpid() {
			continue
		}
		// Every suite runs on this host, whichever machine holds its
		// pools (the OpenZFS guest is shared by the suites that run at
		// once), so the pid says whether the pool's suite still runs.
		if err := syscall.Kill(pid, 0); err == nil || err == syscall.EPERM {
			continue // another suite still runs
		}
		m.run(context.Background(), nil, "zpool", "destroy", "-f", name)
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

// platformIndependent marks a test whose behaviour does not depend on the
// ZFS platform (the CLI's output, the metrics file, monitoring checks): it
// runs on the zfs-fuse tier and is skipped on the OpenZFS tier, whose
// emulated guest makes every zfs command slow. openzfs/README.md lists them.
func platformIndependent(t *testing.T) {
	t.Helper()
	requireLab(t)
	if lab.target.platform == "openzfs" {
		t.Skip("platform-independent; runs on the zfs-fuse tier (make test)")
	}
}

// requireHost is requireLab for tests that also need zfs on this host.
func requireHost(t *testing.T) {
	t.Helper()
	requireLab(t)
	if lab.host != nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("the zfs-fuse lab on this host is unavailable in CI: %s", lab.hostReason)
	}
	t.Skip(lab.hostReason)
}

var poolSeq atomic.Int64

// pools maps the pools this suite made and has not destroyed yet to the
// machine that holds them.
var pools sync.Map

// newPool creates a throw-away pool where the tier's zfs runs and destroys
// it after the test.
func newPool(t *testing.T) string {
	t.Helper()
	return newPoolSize(t, 192<<20)
}

// newPoolSize creates a throw-away pool on a sparse file of size bytes.
func newPoolSize(t *testing.T, size int64) string {
	t.Helper()
	requireLab(t)
	return newPoolOn(t, lab.target, size)
}

// newHostPool creates a throw-away pool in the zfs-fuse lab on this host.
func newHostPool(t *testing.T) string {
	t.Helper()
	requireHost(t)
	return newPoolOn(t, lab.host, 192<<20)
}

// newPoolOn creates a throw-away pool on m, on a sparse file of size bytes.
func newPoolOn(t *testing.T, m *machine, size int64) string {
	t.Helper()
	name := fmt.Sprintf("zt%d_%d", os.Getpid(), poolSeq.Add(1))
	img := m.poolDir + "/" + name + ".img"
	m.must(t, "truncate", "-s", strconv.FormatInt(size, 10), img)
	m.must(t, "zpool", "create", "-f", "-m", "/"+name, name, img)
	pools.Store(name, m)
	t.Cleanup(func() {
		// A receive killed by a test may keep the pool busy for a moment.
		waitUntil(10*time.Second, func() bool { return m.ok("zpool", "destroy", "-f", name) })
		m.run(context.Background(), nil, "rm", "-f", img)
		pools.Delete(name)
	})
	return name
}

// poolMachine returns the machine that holds name's pool, if the pool is
// one of this suite's.
func poolMachine(name string) (*machine, bool) {
	pool, _, _ := strings.Cut(name, "/")
	pool, _, _ = strings.Cut(pool, "@")
	pool, _, _ = strings.Cut(pool, "#")
	m, ok := pools.Load(pool)
	if !ok {
		return nil, false
	}
	return m.(*machine), true
}

// machineOf returns the machine that holds dataset (or snapshot) name.
func machineOf(name string) *machine {
	if m, ok := poolMachine(name); ok {
		return m
	}
	return lab.target
}

// zfs runs zfs with args on the machine of the first argument that names
// a dataset of this suite (the target when none does) and returns stdout.
func zfs(t *testing.T, args ...string) string {
	t.Helper()
	m := lab.target
	for _, a := range args {
		if pm, ok := poolMachine(a); ok {
			m = pm
			break
		}
	}
	return m.must(t, append([]string{"zfs"}, args...)...)
}

// createFS creates a filesystem and writes file f with data into it.
func createFS(t *testing.T, fs string, data string) {
	t.Helper()
	zfs(t, "create", "-p", fs)
	if data != "" {
		writeFile(t, fs, "f", data)
	}
}

// writeFile writes data to file name of the mounted filesystem fs.
func writeFile(t *testing.T, fs, name, data string) {
	t.Helper()
	m := machineOf(fs)
	_, err := m.run(context.Background(), []byte(data), "sh", "-c",
		`mp=$(zfs get -H -o value mountpoint "$1") && cat >"$mp/$2"`, "write", fs, name)
	if err != nil {
		t.Fatalf("writing %s in %s on %s: %v", name, fs, m.name, err)
	}
}

// createBulk creates fs without compression and writes mib MiB of zeros to
// file name in it: a stream of at least that size that is cheap to make
// even on the emulated guest, where random data comes at a few MiB/s.
func createBulk(t *testing.T, fs, name string, mib int) {
	t.Helper()
	zfs(t, "create", "-p", "-o", "compression=off", fs)
	writeBulk(t, fs, name, mib)
}

// writeBulk writes mib MiB of zeros to file name of fs, which createBulk
// made.
func writeBulk(t *testing.T, fs, name string, mib int) {
	t.Helper()
	machineOf(fs).script(t, `mp=$(zfs get -H -o value mountpoint "$1"); head -c "$3"M /dev/zero >"$mp/$2"; sync`,
		fs, name, strconv.Itoa(mib))
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
	m := machineOf(fs)
	defer func() {
		// zfs-fuse may keep a just-read filesystem busy for a moment.
		if !waitUntil(20*time.Second, func() bool { return m.ok("zfs", "destroy", "-f", clone) }) {
			t.Errorf("cannot destroy the check clone %s", clone)
		}
	}()
	out, err := m.run(context.Background(), nil, "sh", "-c", `
zfs clone "$1" "$2" || exit
[ "$(zfs get -H -o value mounted "$2")" = yes ] || zfs mount "$2" || exit
cat "$(zfs get -H -o value mountpoint "$2")/$3"`, "read", fs+"@"+newest, clone, name)
	if err != nil {
		t.Fatalf("read %s in %s@%s: %v: %s", name, fs, newest, err, out)
	}
	return out
}

// destroy destroys fs and its descendants, waiting out a busy zfs-fuse.
func destroy(t *testing.T, fs string) {
	t.Helper()
	m := machineOf(fs)
	if !waitUntil(20*time.Second, func() bool { return m.ok("zfs", "destroy", "-r", "-f", fs) }) {
		t.Fatalf("cannot destroy %s", fs)
	}
}

// readLive reads a file of fs as it is now, mounting fs for the moment if
// it is not mounted.
func readLive(t *testing.T, fs, name string) string {
	t.Helper()
	return machineOf(fs).script(t, `
mp=$(zfs get -H -o value mountpoint "$1")
if [ "$(zfs get -H -o value mounted "$1")" = yes ]; then cat "$mp/$2"; exit; fi
zfs mount "$1"
trap 'zfs umount "$1"' EXIT
cat "$mp/$2"`, fs, name)
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

// mustMatch fails unless dst holds exactly want (name=guid, creation order).
func mustMatch(t *testing.T, dst string, want []string) {
	t.Helper()
	if got := snapshots(t, dst); !equalLists(got, want) {
		t.Fatalf("snapshots of %s:\n got %v\nwant %v", dst, got, want)
	}
}

// exists reports whether a dataset, snapshot or bookmark exists.
func exists(t *testing.T, name string) bool {
	t.Helper()
	return machineOf(name).ok("zfs", "get", "-H", "-o", "value", "guid", name)
}

// property returns a property's value and source.
func property(t *testing.T, fs, prop string) (value, source string) {
	t.Helper()
	out := strings.TrimRight(zfs(t, "get", "-H", "-o", "value,source", prop, fs), "\n")
	value, source, _ = strings.Cut(out, "\t")
	return value, source
}

// side spells ds as zrep's SRC or DST: as is on this host, over ssh on the
// guest.
func side(ds string) string {
	if machineOf(ds).isHost {
		return ds
	}
	return remote(ds)
}

// local spells a dataset on this host as zrep's SRC or DST.
func local(ds string) string { return ds }

// remote spells ds as zrep's SRC or DST over ssh to its machine.
func remote(ds string) string {
	return machineOf(ds).remote(ds)
}

// sshFlags are zrep's flags that reach the target's sshd.
func sshFlags() []string {
	return lab.target.zrepSSHFlags()
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
	cmd.Env = append(zrepEnv(logPath), env...)
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

// zrepEnv is the environment of every zrep the tests run: the argv log,
// a private lock directory, a short retry wait so that retries do not slow
// the suite, and the ssh options that reach the target (flags given on the
// command line override them).
func zrepEnv(argvLog string) []string {
	opts := strings.Join(lab.target.sshOptions, "\n")
	return append(os.Environ(),
		"ZREP_ARGV_LOG="+argvLog,
		"ZREP_LOCK_DIR="+filepath.Join(lab.tmp, "locks"),
		"ZREP_RETRY_WAIT=300ms",
		"ZREP_PROGRESS=never",
		"ZREP_SSH_PORT="+lab.target.sshPort,
		"ZREP_SSH_IDENTITY="+lab.target.sshKey,
		"ZREP_SSH_OPTION="+opts,
	)
}

// localPlaceholders lists the datasets that are placeholders now.
func localPlaceholders(t *testing.T) map[string]bool {
	t.Helper()
	byMachine := map[*machine][]string{}
	pools.Range(func(k, v any) bool {
		byMachine[v.(*machine)] = append(byMachine[v.(*machine)], k.(string))
		return true
	})
	m := map[string]bool{}
	for mach, names := range byMachine {
		for name, v := range placeholderValues(mach, names) {
			if v == "on" {
				m[name] = true
			}
		}
	}
	return m
}

// placeholderValues reads the locally set zrep:placeholder values under
// pools on mach, exactly: a value may hold tabs and newlines (the hostile
// tests set such values), so the names come from a listing without
// values, and where the listing with values does not match it line for
// line, each value is read alone.
func placeholderValues(mach *machine, pools []string) map[string]string {
	ctx := context.Background()
	// One command: the names, an empty line (no name is empty), the
	// listing with values.
	out, err := mach.run(ctx, nil, append([]string{"sh", "-c",
		`zfs get -H -r -s local -o name zrep:placeholder "$@" && echo && zfs get -H -r -s local -o name,value zrep:placeholder "$@"`, "sh"}, pools...)...)
	if err != nil || strings.HasPrefix(out, "\n") {
		return nil
	}
	namesOut, valuesOut, _ := strings.Cut(out, "\n\n")
	names := strings.Split(namesOut, "\n")
	vals := map[string]string{}
	lines := strings.Split(strings.TrimSuffix(valuesOut, "\n"), "\n")
	if len(lines) == len(names) {
		for i, line := range lines {
			v, ok := strings.CutPrefix(line, names[i]+"\t")
			if !ok {
				break
			}
			vals[names[i]] = v
		}
		if len(vals) == len(names) {
			return vals
		}
	}
	for _, name := range names {
		if out, err := mach.run(ctx, nil, "zfs", "get", "-H", "-o", "value", "zrep:placeholder", name); err == nil {
			vals[name] = strings.TrimSuffix(out, "\n")
		}
	}
	return vals
}

// assertSafe checks SPEC 6 on the argv log of one run: the source is only
// read, but for zrep's own replication cursor (bookmarks #zrep_...); plan
// writes nothing; on the destination no destroy, and rollback or
// receive -F only with --rollback, except -F of a full stream into what was
// a placeholder.
func assertSafe(t *testing.T, args []string, calls []zfsCall, placeholders map[string]bool) {
	t.Helper()
	rollback := false
	// SPEC 8: the flags that allow writes of their own.
	var takes, keepSource, keepDest, hold bool
	for _, a := range args {
		rollback = rollback || a == "--rollback"
		takes = takes || a == "--snapshot"
		keepSource = keepSource || a == "--keep-source" || strings.HasPrefix(a, "--keep-source=")
		keepDest = keepDest || a == "--keep-dest" || strings.HasPrefix(a, "--keep-dest=")
		hold = hold || a == "--hold"
	}
	plan := len(args) > 0 && args[0] == "plan"
	takes = takes || len(args) > 0 && args[0] == "snapshot"
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
		case sub == "allow" && len(rest) == 1:
			// Reads what is delegated (zfs allow DATASET).
			continue
		case plan && sub == "send" && (has("-n") || has("-nvP")):
			continue
		case plan:
			t.Errorf("plan ran %s", c)
		case c.Role == "source" && (sub == "bookmark" || sub == "destroy") && cursorOnly(rest):
			continue
		case c.Role == "source" && sub == "snapshot" && takes:
			continue
		case c.Role == "source" && (sub == "hold" || sub == "release" || sub == "holds") && hold:
			continue
		case sub == "destroy" && snapshotsOnly(rest) && (c.Role == "source" && keepSource || c.Role == "destination" && keepDest):
			continue
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

// snapshotsOnly reports whether destroy's arguments name snapshots only
// (fs@a or fs@a,b,c), never a dataset.
func snapshotsOnly(args []string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, "-") || !strings.Contains(a, "@") {
			return false
		}
	}
	return len(args) > 0
}

// cursorOnly reports whether the dataset arguments of a bookmark or destroy
// name nothing but zrep's cursor bookmarks (and, for bookmark, the snapshot
// a cursor is made from).
func cursorOnly(args []string) bool {
	cursor := false
	for _, a := range args {
		switch {
		case strings.HasPrefix(a, "-"):
		case strings.Contains(a, "#zrep_"):
			cursor = true
		case strings.Contains(a, "@"):
		default:
			return false
		}
	}
	return cursor
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

// report is zrep run's JSON Report.
type report struct {
	Status    string            `json:"status"`
	Problem   string            `json:"problem"`
	Snapshot  *string           `json:"snapshot"`
	Completed []fsReport        `json:"completed"`
	Pending   []json.RawMessage `json:"pending"`
	Active    json.RawMessage   `json:"active"`
	Bytes     int64             `json:"bytes"`
	Duration  float64           `json:"duration_seconds"`
}

// fsReport is one filesystem of a Report.
type fsReport struct {
	Filesystem  string       `json:"filesystem"`
	Destination string       `json:"destination"`
	Status      string       `json:"status"`
	Problem     string       `json:"problem"`
	Bytes       int64        `json:"bytes"`
	Pruned      sides        `json:"pruned"`
	Held        sides        `json:"held"`
	Steps       []stepReport `json:"steps"`
}

// sides are snapshot names by side, as in "pruned" and "held".
type sides struct {
	Source      []string `json:"source"`
	Destination []string `json:"destination"`
}

// stepReport is one step of a filesystem's replication.
type stepReport struct {
	From          *string `json:"from"`
	To            string  `json:"to"`
	Status        string  `json:"status"`
	ExpectedBytes *int64  `json:"expected_bytes"`
	Bytes         int64   `json:"bytes"`
	Resumed       bool    `json:"resumed"`
}

// String shows a step as from>to:status.
func (s stepReport) String() string {
	from := "-"
	if s.From != nil {
		from = *s.From
	}
	return from + ">" + s.To + ":" + s.Status
}

// report decodes the JSON Report on stdout.
func (r result) report(t *testing.T) report {
	t.Helper()
	var rep report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("stdout is not a JSON Report: %v\n%s", err, r.stdout)
	}
	return rep
}

// filesystem returns the report of the source filesystem fs.
func (rep report) filesystem(t *testing.T, fs string) fsReport {
	t.Helper()
	for _, f := range rep.Completed {
		if f.Filesystem == fs {
			return f
		}
	}
	t.Fatalf("the Report has no completed entry for %s: %+v", fs, rep)
	return fsReport{}
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
