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

// streaming starts a push of a big stream over ssh and returns once the
// receive runs, with the processes zrep started so far.
func streaming(t *testing.T, extra ...string) (r *running, dst string, children []proc) {
	t.Helper()
	src := bigSource(t, 160)
	dst = newPoolSize(t, 512<<20) + "/big"
	args := append(append([]string{"run", "--json"}, extra...), sshFlags()...)
	r = startZrep(t, nil, append(args, src, remote(dst))...)
	if !waitUntil(20*time.Second, func() bool {
		for _, p := range descendants(r.cmd.Process.Pid) {
			if p.has("receive") {
				return true
			}
		}
		return false
	}) {
		t.Fatal("the transfer never started")
	}
	// Hold the stream mid-way so the run cannot finish before the test acts.
	// Ending a stopped sender is zrep's job like ending a running one.
	t.Cleanup(pauseSender(t, r.cmd.Process.Pid))
	return r, dst, descendants(r.cmd.Process.Pid)
}

// assertStoppedCleanly checks the end of an interrupted run: its status, no
// child left, no ssh master left, and a later run completes.
func assertStoppedCleanly(t *testing.T, res result, wantCode int, children []proc, src, dst string) {
	t.Helper()
	res.mustExit(t, wantCode)
	if rep := jsonOf(t, res); rep["status"] != "ContextDone" {
		t.Errorf("report status %v, want ContextDone", rep["status"])
	}
	time.Sleep(300 * time.Millisecond)
	for _, c := range children {
		if alive(c.pid) {
			t.Errorf("child %d %q still runs after zrep exited", c.pid, c.argv)
		}
	}
	// The connection-sharing master detaches from zrep, so it is found by
	// the control socket that zrep's ssh commands used.
	paths := controlPaths(children)
	if len(paths) == 0 {
		t.Errorf("no ssh command with a ControlPath among zrep's children: %v", children)
	}
	for _, p := range processes() {
		if filepath.Base(p.argv[0]) == "ssh" && len(controlPaths([]proc{p})) > 0 {
			for cp := range controlPaths([]proc{p}) {
				if paths[cp] {
					t.Errorf("ssh %d %q still runs after zrep exited", p.pid, p.argv)
				}
			}
		}
	}
	for _, p := range processes() {
		if filepath.Base(p.argv[0]) == "zfs" && p.argv[len(p.argv)-1] == dst {
			t.Errorf("zfs process %q still runs", p.argv)
		}
	}
	// The lock is free and nothing is lost: a new run completes.
	if !waitUntil(10*time.Second, func() bool {
		for _, p := range processes() {
			if p.has("receive", dst) {
				return false
			}
		}
		return true
	}) {
		t.Fatal("a receive still runs")
	}
	args := append([]string{"run"}, sshFlags()...)
	zrep(t, append(args, src, remote(dst))...).mustExit(t, 0)
	mustMatch(t, dst, snapshots(t, src))
}

func TestSignalsEndEverything(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			requireLab(t)
			r, dst, children := streaming(t)
			src := r.cmd.Args[len(r.cmd.Args)-2]
			start := time.Now()
			r.cmd.Process.Signal(sig)
			res := r.wait(t, 30*time.Second)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("zrep took %s to stop after %s", took, sig)
			}
			assertStoppedCleanly(t, res, 130, children, src, dst)
		})
	}
}

func TestTimeout(t *testing.T) {
	requireLab(t)
	r, dst, children := streaming(t, "--timeout", "3s")
	src := r.cmd.Args[len(r.cmd.Args)-2]
	res := r.wait(t, 30*time.Second)
	if took := time.Since(r.start); took > 10*time.Second {
		t.Errorf("a 3s timeout ended the run after %s", took)
	}
	assertStoppedCleanly(t, res, 124, children, src, dst)
}

func TestLock(t *testing.T) {
	requireLab(t)
	r, dst, _ := streaming(t)
	src := r.cmd.Args[len(r.cmd.Args)-2]
	start := time.Now()
	args := append([]string{"run"}, sshFlags()...)
	second := zrep(t, append(args, src, remote(dst))...).mustExit(t, 4)
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
	waitUntil(10*time.Second, func() bool {
		for _, p := range processes() {
			if p.has("receive", dst) {
				return false
			}
		}
		return true
	})
	zrep(t, append(args, src, remote(dst))...).mustExit(t, 0)
	mustMatch(t, dst, snapshots(t, src))
}
