//go:build openzfs

package e2eopenzfs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// guest is what every test shares: how to reach the OpenZFS guest, the
// zrep binary and the two pools. TestMain sets it up once.
var guest struct {
	ready   bool   // everything below is usable
	absent  bool   // the ZREP_OPENZFS_* variables are not set
	reason  string // why the tests cannot run
	host    string
	port    string
	user    string
	key     string
	disks   []string
	zrep    string // the built binary
	tmp     string // host scratch directory
	srcPool string // pool on the first data disk
	dstPool string // pool on the second data disk
}

func TestMain(m *testing.M) {
	cleanup := setUp()
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// setUp reads the environment, builds zrep and creates the pools. Whatever
// fails is recorded in guest.reason; requireGuest reports it per test.
func setUp() (cleanup func()) {
	cleanup = func() {}
	guest.host = os.Getenv("ZREP_OPENZFS_SSH_HOST")
	guest.port = os.Getenv("ZREP_OPENZFS_SSH_PORT")
	guest.user = os.Getenv("ZREP_OPENZFS_SSH_USER")
	guest.key = os.Getenv("ZREP_OPENZFS_SSH_KEY")
	guest.disks = strings.Fields(os.Getenv("ZREP_OPENZFS_DISKS"))
	if guest.host == "" || guest.port == "" || guest.key == "" {
		guest.absent = true
		guest.reason = "no OpenZFS guest: ZREP_OPENZFS_SSH_HOST, ZREP_OPENZFS_SSH_PORT and " +
			"ZREP_OPENZFS_SSH_KEY are not set (run make test-openzfs)"
		return
	}
	if guest.user == "" {
		guest.user = "root"
	}
	if len(guest.disks) == 0 {
		guest.disks = []string{"/dev/vdb", "/dev/vdc"}
	}
	if len(guest.disks) < 2 {
		guest.reason = fmt.Sprintf("ZREP_OPENZFS_DISKS names %d disk, the tests need 2", len(guest.disks))
		return
	}

	dir, err := os.MkdirTemp("", "zrep-openzfs-")
	if err != nil {
		guest.reason = err.Error()
		return
	}
	guest.tmp = dir
	cleanup = func() { os.RemoveAll(dir) }

	guest.zrep = filepath.Join(dir, "zrep")
	build := exec.Command("go", "build", "-o", guest.zrep, ".")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		guest.reason = fmt.Sprintf("building zrep: %v\n%s", err, out)
		return
	}

	if out, err := guestRun(nil, "zfs", "version"); err != nil {
		guest.reason = fmt.Sprintf("the guest does not answer over ssh on %s:%s: %v\n%s",
			guest.host, guest.port, err, out)
		return
	}
	// Pools left behind by an interrupted earlier run on the same guest hold
	// the disks; they carry the prefix below and are removed first.
	const prefix = "zot"
	if out, err := guestRun(nil, "zpool", "list", "-H", "-o", "name"); err == nil {
		for _, p := range strings.Fields(out) {
			if strings.HasPrefix(p, prefix) {
				guestRun(nil, "zpool", "destroy", "-f", p)
			}
		}
	}
	id := strconv.Itoa(os.Getpid())
	guest.srcPool, guest.dstPool = prefix+"src"+id, prefix+"dst"+id
	for i, p := range []string{guest.srcPool, guest.dstPool} {
		if out, err := guestRun(nil, "zpool", "create", "-f", "-m", "/"+p, p, guest.disks[i]); err != nil {
			guest.reason = fmt.Sprintf("zpool create %s %s: %v\n%s", p, guest.disks[i], err, out)
			return
		}
	}
	guest.ready = true
	return func() {
		for _, p := range []string{guest.srcPool, guest.dstPool} {
			// A receive killed by a test may keep a pool busy for a moment.
			for i := 0; i < 20; i++ {
				if _, err := guestRun(nil, "zpool", "destroy", "-f", p); err == nil {
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
		}
		closeMaster()
		os.RemoveAll(dir)
	}
}

// requireGuest skips the test when no guest is configured, or fails it when
// CI=true or when a configured guest cannot be used.
func requireGuest(t *testing.T) {
	t.Helper()
	if guest.ready {
		return
	}
	if guest.absent && os.Getenv("CI") != "true" {
		t.Skip(guest.reason)
	}
	t.Fatalf("OpenZFS tier unavailable: %s", guest.reason)
}

// sshArgs are the ssh options of the harness's own connection to the guest;
// one shared master connection keeps each command to a fraction of a second.
func sshArgs() []string {
	return []string{
		"-p", guest.port, "-i", guest.key,
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "ConnectTimeout=10",
		"-o", "ControlMaster=auto", "-o", "ControlPersist=120",
		"-o", "ControlPath=" + filepath.Join(guest.tmp, "cm-%C"),
		guest.user + "@" + guest.host,
	}
}

// closeMaster ends the shared ssh connection.
func closeMaster() {
	args := append([]string{"-O", "exit"}, sshArgs()...)
	exec.Command("ssh", args...).Run()
}

// shellQuote quotes s for the guest's POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// shellLine joins argv into one shell command line, every word quoted.
func shellLine(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

// guestRun runs argv on the guest with stdin (may be nil) and returns its
// stdout, or stderr with the error.
func guestRun(stdin []byte, argv ...string) (string, error) {
	return guestRunCtx(context.Background(), stdin, argv...)
}

func guestRunCtx(ctx context.Context, stdin []byte, argv ...string) (string, error) {
	args := append(sshArgs(), "--", shellLine(argv))
	cmd := exec.CommandContext(ctx, "ssh", args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stderr.String(), err
	}
	return stdout.String(), nil
}

// onGuest runs argv on the guest and returns its stdout; failing fails the test.
func onGuest(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := guestRun(nil, argv...)
	if err != nil {
		t.Fatalf("on the guest: %s: %v\n%s", shellLine(argv), err, out)
	}
	return out
}

// script runs a bash script on the guest; extra arguments become $1, $2...
func script(t *testing.T, body string, args ...string) string {
	t.Helper()
	return onGuest(t, append([]string{"bash", "-euo", "pipefail", "-c", body, "script"}, args...)...)
}

// zfs runs zfs on the guest.
func zfs(t *testing.T, args ...string) string {
	t.Helper()
	return onGuest(t, append([]string{"zfs"}, args...)...)
}

// exists reports whether a dataset, snapshot or bookmark exists on the guest.
func exists(t *testing.T, name string) bool {
	t.Helper()
	_, err := guestRun(nil, "zfs", "list", "-H", "-o", "name", "-t", "all", name)
	return err == nil
}

var treeSeq atomic.Int64

// newTrees gives the test a fresh dataset in each pool, named after the test,
// destroyed with everything below it when the test ends: the source parent
// and the destination parent of its replications.
func newTrees(t *testing.T) (src, dst string) {
	t.Helper()
	requireGuest(t)
	name := regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(t.Name(), "-")
	name = fmt.Sprintf("%s-%d", strings.Trim(name, "-"), treeSeq.Add(1))
	src, dst = guest.srcPool+"/"+name, guest.dstPool+"/"+name
	zfs(t, "create", src)
	zfs(t, "create", dst)
	t.Cleanup(func() {
		for _, fs := range []string{src, dst} {
			for i := 0; i < 20; i++ {
				if _, err := guestRun(nil, "zfs", "destroy", "-r", "-f", fs); err == nil {
					break
				}
				time.Sleep(500 * time.Millisecond)
			}
		}
	})
	return src, dst
}

// createFS creates fs (and its parents) and writes file f holding data.
func createFS(t *testing.T, fs, data string) {
	t.Helper()
	zfs(t, "create", "-p", fs)
	if data != "" {
		writeFile(t, fs, "f", data)
	}
}

// writeFile writes data to file name of the mounted filesystem fs.
func writeFile(t *testing.T, fs, name, data string) {
	t.Helper()
	body := `mp=$(zfs get -H -o value mountpoint "$1"); cat >"$mp/$2"`
	argv := []string{"bash", "-euo", "pipefail", "-c", body, "script", fs, name}
	if out, err := guestRun([]byte(data), argv...); err != nil {
		t.Fatalf("writing %s in %s: %v\n%s", name, fs, err, out)
	}
}

// writeRandom writes mib MiB of random data to file name of fs.
func writeRandom(t *testing.T, fs, name string, mib int) {
	t.Helper()
	script(t, `mp=$(zfs get -H -o value mountpoint "$1"); head -c "$3"M /dev/urandom >"$mp/$2"; sync`,
		fs, name, strconv.Itoa(mib))
}

// readFile reads file name of fs. A filesystem that is not mounted (zrep
// receives with -u) is mounted read-only for the moment: a read-write mount
// would update access times, and the next incremental receive would find the
// destination modified.
func readFile(t *testing.T, fs, name string) string {
	t.Helper()
	return script(t, `
mp=$(zfs get -H -o value mountpoint "$1")
if [ "$(zfs get -H -o value mounted "$1")" = yes ]; then cat "$mp/$2"; exit; fi
zfs mount -o ro "$1"
trap 'zfs umount "$1"' EXIT
cat "$mp/$2"`, fs, name)
}

// snapshot creates fs@name.
func snapshot(t *testing.T, fs, name string) {
	t.Helper()
	zfs(t, "snapshot", fs+"@"+name)
}

// snapshots lists fs's own snapshots, oldest first, as "name=guid" with the
// name after the @.
func snapshots(t *testing.T, fs string) []string {
	t.Helper()
	out := zfs(t, "list", "-Hp", "-o", "name,guid", "-t", "snapshot", "-r", "-d", "1", "-s", "createtxg", fs)
	var res []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		name, guid, ok := strings.Cut(line, "\t")
		if !ok || !strings.HasPrefix(name, fs+"@") {
			continue
		}
		res = append(res, strings.TrimPrefix(name, fs+"@")+"="+guid)
	}
	return res
}

// mustMatch fails unless dst holds exactly want ("name=guid", oldest first).
func mustMatch(t *testing.T, dst string, want []string) {
	t.Helper()
	if got := snapshots(t, dst); !equalLists(got, want) {
		t.Fatalf("snapshots of %s:\n got %v\nwant %v", dst, got, want)
	}
}

// property returns a property's value and source on the guest.
func property(t *testing.T, fs, prop string) (value, source string) {
	t.Helper()
	out := strings.TrimRight(zfs(t, "get", "-H", "-o", "value,source", prop, fs), "\n")
	value, source, _ = strings.Cut(out, "\t")
	return value, source
}

// result is what one zrep invocation did.
type result struct {
	code   int
	stdout string
	stderr string
	argv   []zfsCall
}

// zfsCall is one line of zrep's argv log (ZREP_ARGV_LOG).
type zfsCall struct {
	Role string   `json:"role"`
	Host string   `json:"host"`
	Argv []string `json:"argv"`
}

// report is zrep run's JSON Report.
type report struct {
	Status    string            `json:"status"`
	Problem   string            `json:"problem"`
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
	Steps       []stepReport `json:"steps"`
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

// remote names a dataset on the guest as zrep's SRC or DST.
func remote(ds string) string {
	return guest.user + "@" + guest.host + ":" + ds
}

// sshFlags are zrep's flags that reach the guest.
func sshFlags() []string {
	return []string{"--ssh-port", guest.port, "-i", guest.key,
		"--ssh-option", "StrictHostKeyChecking=no",
		"--ssh-option", "UserKnownHostsFile=/dev/null"}
}

// zrep runs the binary on the host: args, then the ssh flags, then src and
// dst on the guest.
func zrep(t *testing.T, cmd string, args []string, src, dst string) result {
	t.Helper()
	return zrepCtx(context.Background(), t, cmd, args, src, dst)
}

func zrepCtx(ctx context.Context, t *testing.T, cmd string, args []string, src, dst string) result {
	t.Helper()
	full := append([]string{cmd}, args...)
	full = append(full, sshFlags()...)
	full = append(full, remote(src), remote(dst))
	logPath := filepath.Join(t.TempDir(), "argv.jsonl")
	c := exec.CommandContext(ctx, guest.zrep, full...)
	c.Env = append(os.Environ(),
		"ZREP_ARGV_LOG="+logPath,
		"ZREP_LOCK_DIR="+filepath.Join(guest.tmp, "locks"),
		"ZREP_RETRY_WAIT=1s",
		"ZREP_PROGRESS=never",
	)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	start := time.Now()
	err := c.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), argv: readArgvLog(t, logPath)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("zrep %s: %v", shellLine(full), err)
	}
	t.Logf("zrep %s: exit %d after %s\nstdout:\n%s\nstderr:\n%s",
		shellLine(full), r.code, time.Since(start).Round(time.Millisecond), r.stdout, r.stderr)
	return r
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

// subcommands returns the logged zfs subcommands (argv[1]) of one role.
func (r result) subcommands(role string) []string {
	var s []string
	for _, c := range r.argv {
		if c.Role == role && len(c.Argv) > 1 {
			s = append(s, c.Argv[1])
		}
	}
	return s
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
