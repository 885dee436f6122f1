package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SPEC 12: hostile and faulty surroundings. These run zrep on this host's
// zfs-fuse lab: what they check (signals, pipes, deadlines) is zrep's own
// behaviour, whatever the platform.

// TestClosedPipeDoesNotStopRun: `zrep run ... 2>&1 | head` whose reader
// is gone before zrep writes anything: the run replicates and exits 0;
// only its output is lost.
func TestClosedPipeDoesNotStopRun(t *testing.T) {
	platformIndependent(t)
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/p", dp+"/p"
	createFS(t, src, "p")
	snapshot(t, src, "s1")
	snapshot(t, src, "s2")

	for _, args := range [][]string{
		{"run", "--initial", "all", side(src), side(dst)},
		{"run", "--json", side(src), side(dst)},
	} {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		pr.Close()
		cmd := exec.Command(lab.zrep, args...)
		cmd.Env = zrepEnv(filepath.Join(t.TempDir(), "argv.jsonl"))
		cmd.Stdout, cmd.Stderr = pw, pw
		err = cmd.Run()
		pw.Close()
		if err != nil {
			t.Fatalf("zrep %q with a closed stdout and stderr: %v (%v)", args, err, cmd.ProcessState)
		}
		mustMatch(t, dst, snapshots(t, src))
	}
}

// hangingDestroy puts a zfs on PATH for zrep whose `destroy` never
// answers; every other command goes to the real zfs. It returns zrep's
// extra environment and a function that waits for the hung destroy and
// returns its pid.
func hangingDestroy(t *testing.T) (env []string, hung func() int) {
	t.Helper()
	real, err := exec.LookPath("zfs")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mark := filepath.Join(dir, "hung.pid")
	script := "#!/bin/sh\nif [ \"$1\" = destroy ]; then echo $$ > '" + mark + "'; exec sleep 300; fi\nexec '" + real + "' \"$@\"\n"
	if err := os.WriteFile(filepath.Join(dir, "zfs"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	env = []string{"PATH=" + dir + ":" + os.Getenv("PATH")}
	return env, func() int {
		var pid int
		if !waitUntil(60*time.Second, func() bool {
			b, err := os.ReadFile(mark)
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			return err == nil && pid > 0
		}) {
			t.Fatal("zrep never ran zfs destroy")
		}
		return pid
	}
}

// prunable is a source with three snapshots, all of which a run sends
// and --keep-source last=1 then prunes but one.
func prunable(t *testing.T) (src, dst string, srcSnaps, args []string) {
	t.Helper()
	requireHost(t)
	sp, dp := newHostPool(t), newHostPool(t)
	src, dst = sp+"/k", dp+"/k"
	createFS(t, src, "k")
	for _, s := range []string{"s1", "s2", "s3"} {
		snapshot(t, src, s)
	}
	return src, dst, snapshots(t, src), []string{"run", "--json", "--initial", "all", "--keep-source", "last=1", "--prune-match", "^s", local(src), local(dst)}
}

// TestSignalWhilePruning: SIGTERM or SIGINT while a destroy of pruning
// hangs ends the run at once with exit 130, the Report's status
// ContextDone, the hung command ended, and the snapshot still there.
func TestSignalWhilePruning(t *testing.T) {
	platformIndependent(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			src, dst, srcSnaps, args := prunable(t)
			env, hung := hangingDestroy(t)
			r := startZrep(t, env, args...)
			pid := hung()
			start := time.Now()
			r.cmd.Process.Signal(sig)
			res := r.wait(t, 30*time.Second)
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("zrep took %s to stop after %s", took, sig)
			}
			res.mustExit(t, 130)
			if rep := jsonOf(t, res); rep["status"] != "ContextDone" {
				t.Errorf("report status %v, want ContextDone", rep["status"])
			}
			if !waitUntil(10*time.Second, func() bool { return !alive(pid) }) {
				t.Errorf("the hung zfs destroy %d still runs after zrep exited", pid)
			}
			mustMatch(t, dst, srcSnaps)
			mustMatch(t, src, srcSnaps)
		})
	}
}

// TestTimeoutWhilePruning: --timeout that expires while a destroy of
// pruning hangs exits 124.
func TestTimeoutWhilePruning(t *testing.T) {
	platformIndependent(t)
	src, dst, srcSnaps, args := prunable(t)
	env, hung := hangingDestroy(t)
	r := startZrep(t, env, append([]string{"run", "--timeout", "5s"}, args[1:]...)...)
	pid := hung()
	res := r.wait(t, 60*time.Second)
	res.mustExit(t, 124)
	if !waitUntil(10*time.Second, func() bool { return !alive(pid) }) {
		t.Errorf("the hung zfs destroy %d still runs after zrep exited", pid)
	}
	mustMatch(t, dst, srcSnaps)
	mustMatch(t, src, srcSnaps)
}

// TestCommandTimeoutEndsHungDestroy: with --command-timeout, a destroy
// that never answers is ended and counted a failure of that pruning,
// named in the Report, and the run ends by itself.
func TestCommandTimeoutEndsHungDestroy(t *testing.T) {
	platformIndependent(t)
	src, dst, srcSnaps, args := prunable(t)
	env, hung := hangingDestroy(t)
	r := startZrep(t, env, append([]string{"run", "--command-timeout", "1s"}, args[1:]...)...)
	pid := hung()
	res := r.wait(t, 90*time.Second)
	res.mustExit(t, 1)
	if !strings.Contains(res.stdout+res.stderr, "--command-timeout") || !strings.Contains(res.stdout+res.stderr, "zfs destroy") {
		t.Errorf("the Report and logs do not name the timed-out zfs destroy")
	}
	if !waitUntil(10*time.Second, func() bool { return !alive(pid) }) {
		t.Errorf("the hung zfs destroy %d still runs after zrep exited", pid)
	}
	mustMatch(t, dst, srcSnaps)
	mustMatch(t, src, srcSnaps)
}
