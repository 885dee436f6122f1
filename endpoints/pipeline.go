package endpoints

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A stream on a remote side may be a pipeline, `zfs send | zstd -c` or
// `zstd -d | zfs receive`, run by the account's shell. That shell may be
// dash, which has no pipefail: the pipeline's status is its last
// program's, and a `zfs send` killed half-way would go unnoticed behind a
// compressor that ended its output cleanly. So each program reports its
// own status on a marked stderr line, and zrep judges the pipeline by all
// of them (pipelineStatus).

// stageMarker starts the line on which one program of a remote pipeline
// reports its exit status: `zrep-exit:NAME:CODE`, NAME being the program
// (`zfs`, `zstd`, ...). exitMarker's own line, the pipeline's, comes last.
const stageMarker = exitMarker

// pidMarker starts the line on which a remote pipeline first reports its
// shell's pid, which is its process group: zrep ends the whole group
// when it gives up on the stream (a stall), since a stopped remote program
// never notices that its ssh connection is gone.
const pidMarker = "zrep-pid:"

// remotePipeline is the string ssh hands to the remote shell for programs,
// joined by pipes. Like remoteCommand it runs under sh whatever the login
// shell, with LC_ALL=C for zfs's messages, each argument quoted by
// shellQuote.
func remotePipeline(programs [][]string) string {
	var b strings.Builder
	b.WriteString(`printf '` + pidMarker + `%s\n' "$$" >&2; `)
	for i, argv := range programs {
		if i > 0 {
			b.WriteString(" | ")
		}
		quoted := make([]string, 0, len(argv)+2)
		quoted = append(quoted, "env", "LC_ALL=C")
		for _, a := range argv {
			quoted = append(quoted, shellQuote(a))
		}
		b.WriteString("{ ")
		b.WriteString(strings.Join(quoted, " "))
		b.WriteString(`; printf '\n` + stageMarker + stageName(argv) + `:%s\n' "$?" >&2; }`)
	}
	b.WriteString(`; s=$?; printf '\n` + exitMarker + `%s\n' "$s" >&2; exit "$s"`)
	return "exec sh -c " + shellQuote(b.String())
}

// stageName names a program in its status line: its command name, which
// is a plain word (zfs, zstd, lz4, gzip), never from user input.
// A zfs run through sudo -n (--sudo) is zfs.
func stageName(argv []string) string {
	if len(argv) > 2 && argv[0] == "sudo" && argv[1] == "-n" {
		argv = argv[2:]
	}
	return filepath.Base(argv[0])
}

// stageStatus is one program's reported exit status.
type stageStatus struct {
	name string
	code int
}

// pipelineStatus folds the per-program status lines of a remote pipeline
// into the one status line remoteStatus reads, so that classify judges the
// pipeline as a whole: it failed if any program failed. The status kept is
// that of a program killed by a signal from outside, if one was (the
// others then only lost their reader or writer), else zfs's if zfs failed,
// else that of the first program that failed on its own (not merely of
// SIGPIPE, 141); a codec's failure is named on a line of its own.
// stderr without stage lines is returned unchanged.
func pipelineStatus(stderr string) string {
	var stages []stageStatus
	var kept []string
	for _, line := range strings.Split(stderr, "\n") {
		if rest, ok := strings.CutPrefix(line, stageMarker); ok {
			if name, code, ok := strings.Cut(rest, ":"); ok {
				if n, err := strconv.Atoi(code); err == nil {
					stages = append(stages, stageStatus{name, n})
					continue
				}
			}
		}
		if i := strings.Index(line, pidMarker); i >= 0 {
			// What a login printed before it without a line end stays.
			if i > 0 {
				kept = append(kept, line[:i])
			}
			continue
		}
		kept = append(kept, line)
	}
	if len(stages) == 0 {
		return strings.Join(kept, "\n")
	}
	rest := strings.Join(kept, "\n")
	code, overall, ok := remoteStatus(rest)
	if !ok {
		// The pipeline's end never came back: the connection failed.
		return overall
	}
	var cause *stageStatus
	for i := range stages {
		s := &stages[i]
		switch {
		case s.code == 0:
		case cause == nil:
			cause = s
		case killedBySignal(s.code) && !killedBySignal(cause.code):
			// A program killed from outside (not by SIGPIPE) is the
			// cause; the others only lost their reader or writer.
			cause = s
		case cause.name != "zfs" && s.name == "zfs" && !killedBySignal(cause.code):
			cause = s
		case cause.code == 141 && s.code != 141:
			cause = s
		}
	}
	if cause == nil {
		return overall + "\n" + exitMarker + strconv.Itoa(code) + "\n"
	}
	note := ""
	if cause.name != "zfs" {
		note = fmt.Sprintf("%s in the remote pipeline exited with status %d\n", cause.name, cause.code)
	}
	return note + overall + "\n" + exitMarker + strconv.Itoa(cause.code) + "\n"
}

// stageFailed reports whether a program of a remote pipeline reported a
// failure on stderr. The pipeline's own status is its last program's,
// which may be 0 when an earlier one, zfs send above all, failed.
func stageFailed(stderr string) bool {
	for _, line := range strings.Split(stderr, "\n") {
		rest, ok := strings.CutPrefix(line, stageMarker)
		if !ok {
			continue
		}
		if _, code, ok := strings.Cut(rest, ":"); ok {
			if n, err := strconv.Atoi(code); err == nil && n != 0 {
				return true
			}
		}
	}
	return false
}

// killedBySignal reports whether a shell status says the program was
// killed by a signal other than SIGPIPE (141), which only means that the
// program after it went away.
func killedBySignal(code int) bool { return code > 128 && code < 255 && code != 141 }

// remotePid reads the pid a remote pipeline reported on stderr, or 0.
// Whatever the remote login printed before it (a banner, a message from
// the account's shell startup files, possibly without a line end) is
// skipped: the first marker is the pipeline's, which writes it before
// running anything.
func remotePid(stderr string) int {
	for _, line := range strings.Split(stderr, "\n") {
		i := strings.Index(line, pidMarker)
		if i < 0 {
			continue
		}
		pid, err := strconv.Atoi(line[i+len(pidMarker):])
		if err != nil || pid <= 1 {
			return 0
		}
		return pid
	}
	return 0
}

// killRemoteGroupArgv ends the remote process group pid, stopped
// programs included (SIGKILL also ends a process stopped by SIGSTOP).
func killRemoteGroupArgv(pid int) []string {
	return []string{"kill", "-s", "KILL", "--", "-" + strconv.Itoa(pid)}
}

// killGroup ends the remote process group that a pipeline reported in
// stderr, if it did and has not reported its end; it runs through the
// shared connection with a context of its own, since it runs when the
// stream's is over.
func (c *sshConn) killGroup(stderr string) {
	pid := remotePid(stderr)
	if pid == 0 {
		return
	}
	if _, _, ended := remoteStatus(stderr); ended {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.mu.Lock()
	usable := c.started && !c.closed
	c.mu.Unlock()
	if !usable {
		return
	}
	argv := sshCommandArgv(c.side, c.opts, c.controlPath(), killRemoteGroupArgv(pid))
	errFile, err := os.CreateTemp(c.dir, "kill-*.err")
	if err != nil {
		return
	}
	defer os.Remove(errFile.Name())
	defer errFile.Close()
	if err := c.run.runDetached(ctx, argv, errFile); err != nil {
		msg, _ := os.ReadFile(errFile.Name())
		c.run.log.Debug("end remote process group", "host", c.side.Host, "pid", pid, "err", err, "stderr", strings.TrimSpace(string(msg)))
	}
}
