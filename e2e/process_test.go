package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// running is a zrep started in the background.
type running struct {
	cmd     *exec.Cmd
	stdout  bytes.Buffer
	stderr  bytes.Buffer
	argvLog string
	done    chan struct{}
	start   time.Time
}

func startZrep(t *testing.T, env []string, args ...string) *running {
	t.Helper()
	r := &running{argvLog: filepath.Join(t.TempDir(), "argv.jsonl"), done: make(chan struct{})}
	r.cmd = exec.Command(lab.zrep, args...)
	r.cmd.Env = append(zrepEnv(r.argvLog), env...)
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	r.start = time.Now()
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			r.cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

// wait waits for the run to end and returns its result.
func (r *running) wait(t *testing.T, limit time.Duration) result {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(limit):
		r.cmd.Process.Kill()
		<-r.done
		t.Fatalf("zrep did not end within %s\nstderr:\n%s", limit, r.stderr.String())
	}
	res := result{code: r.cmd.ProcessState.ExitCode(), stdout: r.stdout.String(), stderr: r.stderr.String(),
		argv: readArgvLog(t, r.argvLog)}
	t.Logf("background zrep %s: exit %d after %s\nstdout:\n%s\nstderr:\n%s",
		strings.Join(quoteAll(r.cmd.Args[1:]), " "), res.code, time.Since(r.start).Round(time.Millisecond), res.stdout, res.stderr)
	return res
}

// proc is a process seen in /proc.
type proc struct {
	pid, ppid int
	argv      []string
}

func processes() []proc {
	entries, _ := os.ReadDir("/proc")
	var ps []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(cmdline) == 0 {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command name in stat may hold spaces; ppid follows the last ')'.
		rest := string(stat[bytes.LastIndexByte(stat, ')')+2:])
		f := strings.Fields(rest)
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		ps = append(ps, proc{pid: pid, ppid: ppid, argv: strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")})
	}
	return ps
}

// descendants are the live processes below pid.
func descendants(pid int) []proc {
	ps := processes()
	below := map[int]bool{pid: true}
	var res []proc
	for changed := true; changed; {
		changed = false
		for _, p := range ps {
			if below[p.ppid] && !below[p.pid] {
				below[p.pid] = true
				res = append(res, p)
				changed = true
			}
		}
	}
	return res
}

func (p proc) has(words ...string) bool {
	line := strings.Join(p.argv, " ")
	for _, w := range words {
		if !strings.Contains(line, w) {
			return false
		}
	}
	return true
}

func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !bytes.Contains(stat[bytes.LastIndexByte(stat, ')'):], []byte(") Z"))
}

// waitUntil polls cond until it holds or the limit passes.
func waitUntil(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// bigSource makes a filesystem whose full stream is big enough to be held
// and interrupted mid-way, with one snapshot. The zfs-fuse lab sends it in
// about a second, the emulated guest in several.
func bigSource(t *testing.T) string {
	t.Helper()
	requireLab(t)
	mib := 160
	if lab.target.platform == "openzfs" {
		mib = 48
	}
	sp := newPoolSize(t, int64(mib+128)<<20)
	src := sp + "/big"
	createBulk(t, src, "big.bin", mib)
	snapshot(t, src, "big")
	return src
}

// withTimeout returns a context for a background command in a test.
func withTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// dryRun reports whether a zfs send only estimates (-n).
func dryRun(p proc) bool {
	for _, a := range p.argv[1:] {
		if strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && strings.Contains(a, "n") {
			return true
		}
	}
	return false
}

// pauseSender stops the `zfs send` of src's snapshots on the source's
// machine, so a test can act while the stream is surely mid-way, and
// returns the function that lets it go on. A stopped sender on the guest
// cannot notice that its reader went away until it is let go.
func pauseSender(t *testing.T, src string) (resume func()) {
	t.Helper()
	m := machineOf(src)
	var pids []int
	if !waitUntil(30*time.Second, func() bool {
		for _, p := range m.zfsProcesses(t, "send", src) {
			if len(p.argv) > 1 && p.argv[1] == "send" && !dryRun(p) {
				pids = append(pids, p.pid)
			}
		}
		return len(pids) > 0
	}) {
		t.Fatalf("no zfs send of %s to pause on %s", src, m.name)
	}
	for _, pid := range pids {
		m.signal(t, pid, syscall.SIGSTOP)
	}
	resumed := false
	return func() {
		if resumed {
			return
		}
		resumed = true
		for _, pid := range pids {
			m.signal(t, pid, syscall.SIGCONT)
		}
	}
}
