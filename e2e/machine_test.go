package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// machine is a place where zfs runs: this host with the zfs-fuse lab, or
// the OpenZFS guest reached over ssh. The harness runs every zfs and shell
// command of a test on the machine that holds the dataset; zrep itself
// always runs on this host and reaches a machine's datasets either directly
// (this host) or over ssh.
type machine struct {
	name     string // for messages: "zfs-fuse on this host", "OpenZFS guest"
	platform string // "zfs-fuse" or "openzfs"
	isHost   bool   // zfs runs on this host, without ssh
	poolDir  string // directory on the machine for pool image files

	// How zrep and the harness log in to the machine over ssh.
	sshHost, sshUser, sshPort, sshKey string
	sshOptions                        []string // zrep's --ssh-option values
	harnessSSH                        []string // ssh arguments of the harness's own connection
	sshLogins                         func(t *testing.T) int
}

// timeout bounds every harness command, so that a wedged zfs fails the
// test instead of hanging the suite.
const timeout = 2 * time.Minute

// command returns the command that runs argv on the machine.
func (m *machine) command(ctx context.Context, argv ...string) *exec.Cmd {
	if m.isHost {
		return exec.CommandContext(ctx, argv[0], argv[1:]...)
	}
	args := append(append([]string{}, m.harnessSSH...), "--", shellLine(argv))
	return exec.CommandContext(ctx, "ssh", args...)
}

// run runs argv on the machine with stdin (may be nil) and returns its
// stdout, or its stderr with the error.
func (m *machine) run(ctx context.Context, stdin []byte, argv ...string) (string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	cmd := m.command(ctx, argv...)
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

// must runs argv on the machine and returns its stdout; failing fails t.
func (m *machine) must(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := m.run(context.Background(), nil, argv...)
	if err != nil {
		t.Fatalf("on %s: %s: %v\n%s", m.name, shellLine(argv), err, out)
	}
	return out
}

// ok runs argv on the machine and reports whether it succeeded.
func (m *machine) ok(argv ...string) bool {
	_, err := m.run(context.Background(), nil, argv...)
	return err == nil
}

// script runs a bash script on the machine; args become $1, $2...
func (m *machine) script(t *testing.T, body string, args ...string) string {
	t.Helper()
	return m.must(t, append([]string{"bash", "-euo", "pipefail", "-c", body, "script"}, args...)...)
}

// remote spells ds on this machine as zrep's SRC or DST over ssh.
func (m *machine) remote(ds string) string {
	return m.sshUser + "@" + m.sshHost + ":" + ds
}

// zrepSSHFlags are zrep's flags that reach the machine's sshd.
func (m *machine) zrepSSHFlags() []string {
	f := []string{"--ssh-port", m.sshPort, "-i", m.sshKey}
	for _, o := range m.sshOptions {
		f = append(f, "--ssh-option", o)
	}
	return f
}

// processes lists the machine's live processes.
func (m *machine) processes(t *testing.T) []proc {
	t.Helper()
	if m.isHost {
		return processes()
	}
	// Arguments are split at blanks; the tests look for words and names
	// without blanks.
	out := m.must(t, "ps", "-e", "-o", "pid=,ppid=,stat=,args=")
	var ps []proc
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || strings.HasPrefix(f[2], "Z") {
			continue
		}
		pid, _ := strconv.Atoi(f[0])
		ppid, _ := strconv.Atoi(f[1])
		ps = append(ps, proc{pid: pid, ppid: ppid, argv: f[3:]})
	}
	return ps
}

// signal sends sig to the machine's process pid.
func (m *machine) signal(t *testing.T, pid int, sig syscall.Signal) {
	t.Helper()
	if m.isHost {
		syscall.Kill(pid, sig)
		return
	}
	// ssh's own failure (255: the guest's sshd dropped a connection among
	// the tests' many) is tried again; kill's (the process is gone) is not.
	for range 5 {
		_, err := m.run(context.Background(), nil, "kill", "-"+strconv.Itoa(int(sig)), strconv.Itoa(pid))
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 255 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// zfsProcesses are the machine's zfs processes whose arguments hold every
// word of words.
func (m *machine) zfsProcesses(t *testing.T, words ...string) []proc {
	t.Helper()
	var res []proc
	for _, p := range m.processes(t) {
		if filepath.Base(p.argv[0]) == "zfs" && p.has(words...) {
			res = append(res, p)
		}
	}
	return res
}

// shimZFS puts a zfs wrapper in front of the machine's zfs for the rest of
// the test: body is a POSIX sh script that runs before the real zfs, which
// it reaches as $REALZFS. It returns the environment zrep needs to use the
// wrapper (on this host, PATH; on the guest the wrapper goes first in the
// PATH of ssh sessions, /usr/local/sbin).
func (m *machine) shimZFS(t *testing.T, body string) (env []string) {
	t.Helper()
	real := strings.TrimSpace(m.script(t, `command -v zfs`))
	var dir string
	if m.isHost {
		dir = t.TempDir()
		env = []string{"PATH=" + dir + ":" + os.Getenv("PATH")}
	} else {
		dir = "/usr/local/sbin"
		if real == dir+"/zfs" {
			t.Fatalf("a zfs wrapper is already installed on %s", m.name)
		}
	}
	shim := fmt.Sprintf("#!/bin/sh\nREALZFS=%s\n%s\nexec \"$REALZFS\" \"$@\"\n", shellQuote(real), body)
	_, err := m.run(context.Background(), []byte(shim), "sh", "-c", `cat >"$1" && chmod 755 "$1"`, "shim", dir+"/zfs")
	if err != nil {
		t.Fatalf("installing the zfs wrapper on %s: %v", m.name, err)
	}
	if !m.isHost {
		t.Cleanup(func() { m.run(context.Background(), nil, "rm", "-f", dir+"/zfs") })
		if got := strings.TrimSpace(m.script(t, `command -v zfs`)); got != dir+"/zfs" {
			t.Fatalf("the zfs wrapper in %s is not first in the PATH of ssh sessions on %s (%s is)", dir, m.name, got)
		}
	}
	return env
}

// shellQuote quotes s for a POSIX shell.
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
