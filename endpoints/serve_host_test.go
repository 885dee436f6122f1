package endpoints

import (
	"bytes"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startGroup starts argv with env added in process group pgid, or as the
// leader of a group of its own when pgid is 0, and ends the group with the
// test.
func startGroup(t *testing.T, pgid int, env []string, argv ...string) int {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pgid: pgid}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	group := pgid
	if group == 0 {
		group = pid
	}
	t.Cleanup(func() {
		syscall.Kill(-group, syscall.SIGKILL)
		cmd.Wait()
	})
	// /proc shows the new program once exec is done.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err == nil && strings.HasPrefix(string(b), argv[0]+"\x00") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return pid
}

// A kill request reaches only a stream's shell that serve started under
// the same policy: a group leader whose command line is the pipeline
// template and whose environment names the policy.
func TestServedGroup(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	policy := ServePolicy{Role: SendOnly, Dataset: "tank/data"}
	other := ServePolicy{Role: ReceiveOnly, Dataset: "tank/data"}
	stream := func(pgid int, p ServePolicy) int {
		req := pipelineRequest([][]string{{"sleep", "300"}})
		return startGroup(t, pgid, []string{ServeEnv + "=" + p.String()}, req.Argv()...)
	}
	facts := hostFacts{policy: policy}
	if err := facts.ServedGroup(stream(0, policy)); err != nil {
		t.Errorf("serve's own stream: %v", err)
	}
	leader := startGroup(t, 0, nil, "sleep", "300")
	for _, c := range []struct {
		name, why string
		pid       int
	}{
		{"another policy's stream", "a request that zrep serve --send-only tank/data started", stream(0, other)},
		{"not a group leader", "does not lead", stream(leader, policy)},
		{"another program", "not a request that zrep serve started", startGroup(t, 0, []string{ServeEnv + "=" + policy.String()}, "sleep", "300")},
		{"no such process", "no such process", 1 << 22},
	} {
		if err := facts.ServedGroup(c.pid); err == nil || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%s: %v, want it to say %q", c.name, err, c.why)
		}
	}
}

// A refused request gets one line on stderr, the status line zrep reads,
// exit status 126 and a log line; nothing runs.
func TestServeRefuses(t *testing.T) {
	var stderr bytes.Buffer
	var logged []string
	s := &Server{
		Policy: ServePolicy{Role: ReceiveOnly, Dataset: "backup/web1"},
		Log:    func(line string) { logged = append(logged, line) },
		Stderr: &stderr,
	}
	for _, cmdline := range []string{
		"",
		"zfs destroy -r backup",
		runRequest([]string{"zfs", "destroy", "-r", "backup"}).String(),
	} {
		stderr.Reset()
		logged = nil
		if code := s.Serve(cmdline); code != ServeRefusedStatus {
			t.Errorf("%q: status %d", cmdline, code)
		}
		out := stderr.String()
		if !strings.HasPrefix(out, "zrep serve: refused: ") || strings.Count(out, "\n") != 3 {
			t.Errorf("%q: stderr %q", cmdline, out)
		}
		if code, _, ok := remoteStatus(out); !ok || code != ServeRefusedStatus {
			t.Errorf("%q: no status line zrep would read: %q", cmdline, out)
		}
		if len(logged) != 1 || !strings.HasPrefix(logged[0], "refused: ") {
			t.Errorf("%q: logged %q", cmdline, logged)
		}
	}
}
