package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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

// victimProc is a process of a transfer to kill, and how to tell that it
// has ended.
type victimProc struct {
	kill  func()
	ended func() bool
	// state describes the process, for a failure.
	state func() string
}

// killMidTransfer starts a replication of a big stream over ssh (a push
// from this host in the zfs-fuse lab, between the guest's pools on the
// OpenZFS tier), kills the processes victim picks while the stream is held
// after its first 4 MiB (pauseFirstSend: the kill cannot come after the
// stream's end), waits until they have ended, lets the stream go on, and
// checks that zrep saw the attempt fail, retried, and completed; with
// redo, that the step was received again.
//
// The wait matters on OpenZFS: a zfs receive killed inside the kernel's
// receive ends only when its next read of the pipe would wait, and a
// stream let go at once could keep that pipe full until the snapshot
// arrived.
func killMidTransfer(t *testing.T, redo bool, victim func(zrepPID int, dst string) []victimProc) {
	src := bigSource(t)
	dp := newPoolSize(t, 512<<20)
	dst := dp + "/big"
	g := pauseFirstSend(t, src)
	r := startZrep(t, g.env, "run", "--json", "--retries", "3", "--buffer", "16M", side(src), remote(dst))
	g.waitHeld(t)
	var victims []victimProc
	ok := waitUntil(30*time.Second, func() bool {
		victims = victim(r.cmd.Process.Pid, dst)
		return len(victims) > 0
	})
	if !ok {
		t.Fatalf("the transfer's process never appeared")
	}
	// A kill sent over ssh may be lost with its connection: each one not
	// yet ended is killed again.
	kills := 0
	if !waitUntil(time.Minute, func() bool {
		ended := true
		for _, v := range victims {
			if !v.ended() {
				v.kill()
				kills++
				ended = false
			}
		}
		return ended
	}) {
		var states []string
		for _, v := range victims {
			states = append(states, v.state())
		}
		t.Fatalf("a killed process of the transfer did not end while its stream was held:\n%s", strings.Join(states, "\n"))
	}
	t.Logf("%d processes ended after %d kills", len(victims), kills)
	g.release(t)
	res := r.wait(t, 3*time.Minute).mustExit(t, 0)
	if !strings.Contains(res.stderr, "step failed, will retry") &&
		!strings.Contains(res.stderr, "transfer reported a failure but its snapshot arrived") {
		t.Errorf("zrep did not see the attempt fail:\n%s", res.stderr)
	}
	if redo && receives(res) < 2 {
		t.Fatalf("the step was not redone (%d receives)", receives(res))
	}
	mustMatch(t, dst, snapshots(t, src))
	if rep := jsonOf(t, res); rep["status"] != "Completed" {
		t.Fatalf("report status %v", rep["status"])
	}
}

// The ssh client carrying the stream to the destination is killed.
func TestKilledSSHStreamIsRetried(t *testing.T) {
	requireLab(t)
	killMidTransfer(t, true, func(zrepPID int, dst string) []victimProc {
		var victims []victimProc
		for _, p := range descendants(zrepPID) {
			if filepath.Base(p.argv[0]) == "ssh" && p.has("receive") {
				pid := p.pid
				victims = append(victims, victimProc{
					kill:  func() { syscall.Kill(pid, syscall.SIGKILL) },
					ended: func() bool { return !slices.ContainsFunc(processes(), func(q proc) bool { return q.pid == pid }) },
					state: func() string { return procState(machineOf(dst), pid) },
				})
			}
		}
		return victims
	})
}

// The zfs receive on the destination's machine is killed. On OpenZFS that
// ends the receive, and the step is received again. zfs-fuse's daemon does
// the receiving: killing its zfs command does not end it, and where the
// stream runs through mbuffer (--buffer), which goes on feeding the
// daemon, the snapshot arrives all the same; zrep sees the attempt fail,
// and its retry finds the snapshot there.
func TestKilledRemoteReceiveIsRetried(t *testing.T) {
	requireLab(t)
	killMidTransfer(t, lab.target.platform == "openzfs", func(zrepPID int, dst string) []victimProc {
		m := machineOf(dst)
		var victims []victimProc
		for _, p := range m.zfsProcesses(t, "receive", dst) {
			if p.argv[len(p.argv)-1] == dst {
				pid := p.pid
				victims = append(victims, victimProc{
					kill: func() { m.signal(t, pid, syscall.SIGKILL) },
					ended: func() bool {
						return !slices.ContainsFunc(m.processes(t), func(q proc) bool { return q.pid == pid })
					},
					state: func() string { return procState(m, pid) },
				})
			}
		}
		return victims
	})
}

// procState is what ps and the kernel say of process pid on m.
func procState(m *machine, pid int) string {
	out, err := m.run(context.Background(), nil, "sh", "-c", `ps -o pid,ppid,stat,wchan:30,args -p "$1"; grep -E '^(State|SigPnd|ShdPnd|SigBlk)' /proc/"$1"/status; cat /proc/"$1"/stack`, "sh", strconv.Itoa(pid))
	return fmt.Sprintf("process %d on %s: %s %v", pid, m.name, out, err)
}

func TestUnreachableHost(t *testing.T) {
	platformIndependent(t)
	sp := newPool(t)
	createFS(t, sp+"/u", "x")
	snapshot(t, sp+"/u", "s1")
	for _, port := range []string{"1"} { // nothing listens on port 1 of loopback
		start := time.Now()
		r := zrep(t, "run", "--retries", "2", "--retry-wait", "1s", "--ssh-port", port,
			side(sp+"/u"), remote("nowhere/u")).mustExit(t, 3)
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
	createBulk(t, src, "big.bin", 90)
	snapshot(t, src, "s1")
	srcBefore := snapshots(t, src)

	// Leave about 40 MiB free on the destination's pool, too little for
	// the 90 MiB stream; how much a pool of a given size offers differs
	// between platforms.
	dp := newPoolSize(t, 512<<20)
	// Received zeros must take space: OpenZFS compresses by default.
	zfs(t, "set", "compression=off", dp)
	avail, err := strconv.ParseInt(strings.TrimSpace(zfs(t, "get", "-H", "-p", "-o", "value", "available", dp)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if fill := int((avail >> 20) - 40); fill > 0 {
		createBulk(t, dp+"/filler", "fill.bin", fill)
	}

	r := zrep(t, "run", "--retries", "1", side(src), side(dp+"/data")).mustExit(t, 1)
	out := strings.ToLower(r.stdout + r.stderr)
	if !strings.Contains(out, "space") {
		t.Errorf("the error does not name the lack of space:\n%s", r.stdout+r.stderr)
	}
	mustMatch(t, src, srcBefore)

	destroy(t, dp+"/filler")
	zrep(t, "run", side(src), side(dp+"/data")).mustExit(t, 0)
	mustMatch(t, dp+"/data", srcBefore)
}

// A snapshot destroyed on the source after planning, before its send, gives a
// clean failure or a replan, never a wrong incremental; the next run completes.
func TestSnapshotDestroyedAfterPlanning(t *testing.T) {
	platformIndependent(t)
	src, dst := replicated(t)
	snapshot(t, src, "s3")
	writeFile(t, src, "f", "four")
	snapshot(t, src, "s4")

	// A zfs wrapper destroys s3 on the source just before the first real
	// (not estimating) send.
	mark := fmt.Sprintf("/tmp/zrep-e2e-%d-%d.done", os.Getpid(), poolSeq.Add(1))
	env := machineOf(src).shimZFS(t, fmt.Sprintf(`
if [ "$1" = send ] && [ ! -e %[1]s ]; then
	dry=no
	for a in "$@"; do case $a in --*) ;; -*n*) dry=yes ;; esac; done
	if [ $dry = no ]; then
		touch %[1]s
		"$REALZFS" destroy %[2]s
	fi
fi`, shellQuote(mark), shellQuote(src+"@s3")))
	t.Cleanup(func() { machineOf(src).run(context.Background(), nil, "rm", "-f", mark) })
	r := zrepCtx(withTimeout(t, 2*time.Minute), t, env, "run", "--retries", "1", side(src), side(dst))
	if r.code != 0 && r.code != 1 {
		t.Fatalf("exit %d, want 0 (replanned) or 1 (clean failure)", r.code)
	}
	if exists(t, src+"@s3") {
		t.Fatalf("the wrapper did not destroy %s@s3 during the run", src)
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
	zrep(t, "run", side(src), side(dst)).mustExit(t, 0)
	mustMatch(t, dst, snapshots(t, src))
	if got := readFile(t, dst, "f"); got != "four" {
		t.Fatalf("destination holds %q", got)
	}
}

// lateFailingReceive is a zfs wrapper whose receive does its work and then
// exits 1 with zfs-fuse's complaint about a `zfs receive -F` of a full
// stream into an existing filesystem.
const lateFailingReceive = `
if [ "$1" = receive ] || [ "$1" = recv ]; then
	"$REALZFS" "$@" || exit
	echo "cannot receive new filesystem stream: I/O error" >&2
	exit 1
fi`

// A receive that fails after its snapshot arrived is a completed step with
// a warning, not a failed filesystem, and is not sent again: an incremental,
// and the --rollback overwrite of an existing destination without snapshots.
func TestReceiveFailedAfterItsSnapshotArrived(t *testing.T) {
	t.Run("incremental", func(t *testing.T) {
		src, dst := replicated(t)
		writeFile(t, src, "f", "three")
		snapshot(t, src, "s3")
		env := machineOf(dst).shimZFS(t, lateFailingReceive)
		r := zrepCtx(withTimeout(t, 2*time.Minute), t, env, "run", "--json", side(src), side(dst)).mustExit(t, 0)
		checkArrivedWithWarning(t, r, 1)
		mustMatch(t, dst, snapshots(t, src))
		if got := readFile(t, dst, "f"); got != "three" {
			t.Fatalf("destination holds %q", got)
		}
	})
	t.Run("overwrite", func(t *testing.T) {
		sp, dp := newPool(t), newPool(t)
		src, dst := sp+"/e", dp+"/e"
		createFS(t, src, "source")
		snapshot(t, src, "s1")
		createFS(t, dst, "precious")
		env := machineOf(dst).shimZFS(t, lateFailingReceive)
		r := zrepCtx(withTimeout(t, 2*time.Minute), t, env, "run", "--json", "--rollback", side(src), side(dst)).mustExit(t, 0)
		checkArrivedWithWarning(t, r, 1)
		mustMatch(t, dst, snapshots(t, src))
	})
}

// checkArrivedWithWarning: the run's one filesystem completed its steps
// steps, and its problem is the receive's complaint as a warning.
func checkArrivedWithWarning(t *testing.T, r result, steps int) {
	t.Helper()
	rep := r.report(t)
	if len(rep.Completed) != 1 {
		t.Fatalf("report: %s", r.stdout)
	}
	f := rep.Completed[0]
	if f.Status != "Completed" || !strings.Contains(f.Problem, "warning") || !strings.Contains(f.Problem, "I/O error") {
		t.Errorf("filesystem %s: status %s, problem %q", f.Filesystem, f.Status, f.Problem)
	}
	if len(f.Steps) != steps {
		t.Errorf("steps %v, want %d", f.Steps, steps)
	}
	for _, s := range f.Steps {
		if s.Status != "Completed" {
			t.Errorf("step %v", s)
		}
	}
}
