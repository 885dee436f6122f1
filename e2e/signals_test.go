package e2e

import (
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// controlPaths are the ssh ControlPath values used by procs.
func controlPaths(procs []proc) map[string]bool {
	paths := map[string]bool{}
	for _, p := range procs {
		for _, a := range p.argv {
			if v, ok := strings.CutPrefix(a, "ControlPath="); ok {
				paths[v] = true
			}
		}
	}
	return paths
}

// streaming starts a replication of a big stream between two remote sides
// and returns once the stream is held mid-way (its remote zfs send
// stopped), with the processes zrep started so far and the function that
// lets the held sender go on.
func streaming(t *testing.T, extra ...string) (r *running, src, dst string, children []proc, resume func()) {
	t.Helper()
	src = bigSource(t)
	dst = newPoolSize(t, 512<<20) + "/big"
	// --bwlimit: the stream takes at least seconds (10 s for zfs-fuse's
	// 160 MiB), so the sender is surely stopped before its end.
	args := append(append([]string{"run", "--json", "--bwlimit", "16M"}, extra...), remote(src), remote(dst))
	r = startZrep(t, nil, args...)
	// Hold the stream mid-way so the run cannot finish before the test acts.
	// Ending a stopped sender is zrep's job like ending a running one.
	resume = pauseSender(t, src)
	t.Cleanup(resume)
	if !waitUntil(30*time.Second, func() bool {
		for _, p := range descendants(r.cmd.Process.Pid) {
			if p.has("receive") {
				return true
			}
		}
		return false
	}) {
		t.Fatal("the transfer never started")
	}
	return r, src, dst, descendants(r.cmd.Process.Pid), resume
}

// assertStoppedCleanly checks the end of an interrupted run: its status, no
// child left, no ssh master left, nothing of the run left on the machines
// once a held sender is let go, and a later run completes.
func assertStoppedCleanly(t *testing.T, res result, wantCode int, children []proc, resume func(), src, dst string) {
	t.Helper()
	res.mustExit(t, wantCode)
	if rep := jsonOf(t, res); rep["status"] != "ContextDone" {
		t.Errorf("report status %v, want ContextDone", rep["status"])
	}
	for _, c := range children {
		// A killed child may take a moment to be reaped on a busy machine.
		if !waitUntil(10*time.Second, func() bool { return !alive(c.pid) }) {
			t.Errorf("child %d %q still runs after zrep exited", c.pid, c.argv)
		}
	}
	// The connection-sharing master detaches from zrep, so it is found by
	// the control socket that zrep's ssh commands used.
	paths := controlPaths(children)
	if len(paths) == 0 {
		t.Errorf("no ssh command with a ControlPath among zrep's children: %v", children)
	}
	// The master ends once it has answered `ssh -O exit`, which may take a
	// moment on a busy machine.
	masters := func() []proc {
		var left []proc
		for _, p := range processes() {
			if filepath.Base(p.argv[0]) != "ssh" {
				continue
			}
			for cp := range controlPaths([]proc{p}) {
				if paths[cp] {
					left = append(left, p)
				}
			}
		}
		return left
	}
	if !waitUntil(10*time.Second, func() bool { return len(masters()) == 0 }) {
		for _, p := range masters() {
			t.Errorf("ssh %d %q still runs after zrep exited", p.pid, p.argv)
		}
	}
	// A sender held stopped on the guest learns that its reader is gone
	// only when it runs again; once let go, nothing of the run remains.
	resume()
	for _, ds := range []string{src, dst} {
		m := machineOf(ds)
		if !waitUntil(15*time.Second, func() bool { return len(m.zfsProcesses(t, ds)) == 0 }) {
			t.Errorf("zfs processes still run on %s: %v", m.name, m.zfsProcesses(t, ds))
		}
	}
	// The lock is free and nothing is lost: a new run completes.
	zrep(t, "run", remote(src), remote(dst)).mustExit(t, 0)
	mustMatch(t, dst, snapshots(t, src))
}

func TestSignalsEndEverything(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			requireLab(t)
			r, src, dst, children, resume := streaming(t)
			start := time.Now()
			r.cmd.Process.Signal(sig)
			res := r.wait(t, 30*time.Second)
			took := time.Since(start)
			t.Logf("zrep ended %s after %s", took.Round(time.Millisecond), sig)
			if took > 5*time.Second {
				t.Errorf("zrep took %s to stop after %s", took, sig)
			}
			assertStoppedCleanly(t, res, 130, children, resume, src, dst)
		})
	}
}

func TestTimeout(t *testing.T) {
	platformIndependent(t)
	// Long enough for planning to end and the stream to start.
	limit := 3 * time.Second
	r, src, dst, children, resume := streaming(t, "--timeout", limit.String())
	res := r.wait(t, limit+30*time.Second)
	if took := time.Since(r.start); took > limit+7*time.Second {
		t.Errorf("a %s timeout ended the run after %s", limit, took)
	}
	assertStoppedCleanly(t, res, 124, children, resume, src, dst)
}

func TestLock(t *testing.T) {
	platformIndependent(t)
	r, src, dst, _, resume := streaming(t)
	start := time.Now()
	second := zrep(t, "run", remote(src), remote(dst)).mustExit(t, 4)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the second run took %s to give up", took)
	}
	if !strings.Contains(second.stderr, strconv.Itoa(r.cmd.Process.Pid)) {
		t.Errorf("the message does not name the holder's pid %d:\n%s", r.cmd.Process.Pid, second.stderr)
	}
	if len(second.argv) != 0 {
		t.Errorf("the locked-out run contacted a side: %v", second.argv)
	}

	// A run killed outright leaves no lock behind.
	r.cmd.Process.Kill()
	r.wait(t, 10*time.Second)
	resume()
	m := machineOf(dst)
	waitUntil(15*time.Second, func() bool { return len(m.zfsProcesses(t, "receive", dst)) == 0 })
	zrep(t, "run", remote(src), remote(dst)).mustExit(t, 0)
	mustMatch(t, dst, snapshots(t, src))
}
