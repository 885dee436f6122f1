package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// receives counts the zfs receives in an argv log.
func receives(r result) int {
	n := 0
	for _, c := range r.argv {
		if c.Role == "destination" && len(c.Argv) > 1 && (c.Argv[1] == "receive" || c.Argv[1] == "recv") {
			n++
		}
	}
	return n
}

// killMidTransfer starts a push of a big stream over ssh, kills the process
// that victim picks once the stream flows, and checks that the step is redone.
func killMidTransfer(t *testing.T, victim func(zrepPID int, dst string) []int) {
	src := bigSource(t, 160)
	dp := newPoolSize(t, 512<<20)
	dst := dp + "/big"
	args := append([]string{"run", "--json", "--retries", "3"}, sshFlags()...)
	r := startZrep(t, nil, append(args, src, remote(dst))...)
	resume := pauseSender(t, r.cmd.Process.Pid)
	var killed []int
	ok := waitUntil(20*time.Second, func() bool {
		killed = victim(r.cmd.Process.Pid, dst)
		return len(killed) > 0
	})
	if !ok {
		t.Fatalf("the transfer's process never appeared")
	}
	for _, pid := range killed {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	resume()
	res := r.wait(t, 90*time.Second).mustExit(t, 0)
	if receives(res) < 2 {
		t.Fatalf("the step was not redone (%d receives); was the kill too late?", receives(res))
	}
	mustMatch(t, dst, snapshots(t, src))
	if rep := jsonOf(t, res); rep["status"] != "Completed" {
		t.Fatalf("report status %v", rep["status"])
	}
}

func TestKilledSSHStreamIsRetried(t *testing.T) {
	requireLab(t)
	killMidTransfer(t, func(zrepPID int, dst string) []int {
		var pids []int
		for _, p := range descendants(zrepPID) {
			if filepath.Base(p.argv[0]) == "ssh" && p.has("receive") {
				pids = append(pids, p.pid)
			}
		}
		return pids
	})
}

func TestKilledRemoteReceiveIsRetried(t *testing.T) {
	requireLab(t)
	killMidTransfer(t, func(zrepPID int, dst string) []int {
		var pids []int
		for _, p := range processes() {
			if len(p.argv) > 2 && filepath.Base(p.argv[0]) == "zfs" && p.argv[1] == "receive" && p.argv[len(p.argv)-1] == dst {
				pids = append(pids, p.pid)
			}
		}
		return pids
	})
}

func TestUnreachableHost(t *testing.T) {
	sp := newPool(t)
	createFS(t, sp+"/u", "x")
	snapshot(t, sp+"/u", "s1")
	for _, port := range []string{"1"} { // nothing listens on port 1 of loopback
		start := time.Now()
		r := zrep(t, "run", "--retries", "2", "--retry-wait", "1s", "--ssh-port", port,
			"--ssh-option", "UserKnownHostsFile="+lab.knownHost, "-i", lab.sshKey,
			sp+"/u", remote("nowhere/u")).mustExit(t, 3)
		took := time.Since(start)
		if took < 2*time.Second || took > 20*time.Second {
			t.Errorf("two retry waits of 1s took %s", took)
		}
		if !strings.Contains(r.stdout+r.stderr, "PlanningError") {
			t.Errorf("the report does not say PlanningError:\n%s", r.stdout)
		}
	}
}

func TestDestinationOutOfSpace(t *testing.T) {
	sp := newPoolSize(t, 512<<20)
	src := sp + "/data"
	createFS(t, src, "")
	big := make([]byte, 90<<20)
	f, _ := os.Open("/dev/urandom")
	f.Read(big)
	f.Close()
	writeFile(t, src, "big.bin", string(big))
	snapshot(t, src, "s1")
	srcBefore := snapshots(t, src)

	dp := newPoolSize(t, 192<<20)
	zfs(t, "create", dp+"/filler")
	filler := make([]byte, 100<<20)
	for i := range filler {
		filler[i] = byte(i*7 + i>>9)
	}
	writeFile(t, dp+"/filler", "fill.bin", string(filler))

	r := zrep(t, "run", "--retries", "1", src, dp+"/data").mustExit(t, 1)
	out := strings.ToLower(r.stdout + r.stderr)
	if !strings.Contains(out, "space") {
		t.Errorf("the error does not name the lack of space:\n%s", r.stdout+r.stderr)
	}
	mustMatch(t, src, srcBefore)

	destroy(t, dp+"/filler")
	zrep(t, "run", src, dp+"/data").mustExit(t, 0)
	mustMatch(t, dp+"/data", srcBefore)
}

// A snapshot destroyed on the source after planning, before its send, gives a
// clean failure or a replan, never a wrong incremental; the next run completes.
func TestSnapshotDestroyedAfterPlanning(t *testing.T) {
	src, dst := replicated(t)
	snapshot(t, src, "s3")
	writeFile(t, src, "f", "four")
	snapshot(t, src, "s4")

	shim := t.TempDir()
	mark := filepath.Join(shim, "done")
	script := fmt.Sprintf(`#!/bin/sh
if [ "$1" = send ] && [ ! -e %q ]; then
	touch %q
	%s destroy %q
fi
exec %s "$@"
`, mark, mark, realZFS(t), src+"@s3", realZFS(t))
	if err := os.WriteFile(filepath.Join(shim, "zfs"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	r := zrepCtx(withTimeout(t, time.Minute), t, []string{"PATH=" + shim + ":" + os.Getenv("PATH")},
		"run", "--retries", "1", src, dst)
	if r.code != 0 && r.code != 1 {
		t.Fatalf("exit %d, want 0 (replanned) or 1 (clean failure)", r.code)
	}
	// Whatever arrived is a prefix of the source's history, guid for guid.
	srcSnaps := snapshots(t, src)
	got := snapshots(t, dst)
	pos := 0
	for _, s := range got {
		for pos < len(srcSnaps) && srcSnaps[pos] != s {
			pos++
		}
		if pos == len(srcSnaps) {
			t.Fatalf("destination %v is not a subsequence of the source %v", got, srcSnaps)
		}
	}
	zrep(t, "run", src, dst).mustExit(t, 0)
	mustMatch(t, dst, snapshots(t, src))
	if got := readFile(t, dst, "f"); got != "four" {
		t.Fatalf("destination holds %q", got)
	}
}

func realZFS(t *testing.T) string {
	for _, p := range []string{"/usr/sbin/zfs", "/sbin/zfs", "/usr/bin/zfs"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("zfs not found")
	return ""
}
