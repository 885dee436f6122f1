package endpoints

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/zrep/zrep/pdu"
)

// ArgvLogEnv names the environment variable that, when set to a file name,
// makes every endpoint append one JSON line per zfs invocation to that file:
// {"role":"source"|"destination","host":"" (local) or the ssh host,"argv":["zfs",...]}.
// Tests of other packages read it to see what zrep ran.
const ArgvLogEnv = "ZREP_ARGV_LOG"

const (
	// killGrace is how long a process group gets between SIGTERM and
	// SIGKILL when its context ends or its reader goes away.
	killGrace = 2 * time.Second
	// waitDelay bounds how long Wait waits for a killed child's pipes to
	// close; a grandchild that keeps them open must not hang zrep.
	waitDelay = 5 * time.Second
	// stderrKeep is how much of a child's stderr is kept, at its start and
	// again at its end: zfs's diagnosis comes first, ssh's last.
	stderrKeep = 4 << 10
)

// runner is the one door through which every zfs and ssh process is
// started: it puts the child in its own process group, ends the whole group
// when the context ends, keeps a bounded copy of stderr, logs start and end,
// records the zfs argv when ArgvLogEnv asks for it, and classifies failure.
type runner struct {
	log     *slog.Logger
	role    string
	host    string // "" for local; used in logs, the argv log and errors
	argvLog string

	argvLogMu sync.Mutex
}

func newRunner(log *slog.Logger, role, host string) *runner {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &runner{log: log, role: role, host: host, argvLog: os.Getenv(ArgvLogEnv)}
}

// process is a started child.
type process struct {
	r       *runner
	ctx     context.Context
	zfsArgv []string // what the error names: the zfs command, not ssh
	cmd     *exec.Cmd
	stderr  *stderrTail
	begin   time.Time
	done    chan struct{} // closed once Wait has returned

	// Feeding stdin, when it is not a file: feed copies feedSrc into
	// feedW and closes fed when done.
	feedSrc io.Reader
	feedW   *os.File
	fed     chan struct{}

	waitOnce sync.Once
	waitErr  error
	stopped  bool // stop was called: we ended it, not zfs

	onKill func(stderr string) // see startWith; may be nil
}

// run runs argv to completion: stdin (may be nil) is fed to it, its stdout
// copied to stdout (may be nil). zfsArgv is the zfs command argv runs
// (argv itself, or wrapped in ssh) and is what logs and errors name.
func (r *runner) run(ctx context.Context, zfsArgv, argv []string, stdin io.Reader, stdout io.Writer) error {
	p, err := r.start(ctx, zfsArgv, argv, stdin, stdout)
	if err != nil {
		return err
	}
	return p.wait()
}

// start starts argv and returns without waiting; see run.
func (r *runner) start(ctx context.Context, zfsArgv, argv []string, stdin io.Reader, stdout io.Writer) (*process, error) {
	return r.startWith(ctx, zfsArgv, argv, stdin, stdout, nil)
}

// startWith is start for a command that also needs onKill, called with its
// stderr so far whenever zrep ends it, before its local process group is
// signalled (a remote pipeline ends its remote process group so).
func (r *runner) startWith(ctx context.Context, zfsArgv, argv []string, stdin io.Reader, stdout io.Writer, onKill func(stderr string)) (*process, error) {
	r.recordArgv(zfsArgv)
	return r.launch(ctx, zfsArgv, argv, stdin, stdout, onKill)
}

// launch is start without the argv log: for a script of several zfs
// commands, whose caller records those that ran.
func (r *runner) launch(ctx context.Context, zfsArgv, argv []string, stdin io.Reader, stdout io.Writer, onKill func(stderr string)) (*process, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	// zfs's messages are classified by their English text.
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.Stdout = stdout
	st := &stderrTail{}
	cmd.Stderr = st
	p := &process{r: r, ctx: ctx, zfsArgv: zfsArgv, cmd: cmd, stderr: st, done: make(chan struct{}), onKill: onKill}
	// exec's own stdin copying would make Wait wait for a Read on stdin
	// that may never return (a stalled sender), even after the child is
	// gone; zrep feeds the child itself so that Wait does not.
	var childIn *os.File
	switch in := stdin.(type) {
	case nil:
	case *os.File:
		cmd.Stdin = in
	default:
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", describe(zfsArgv, r.host), err)
		}
		growPipe(pw)
		childIn, p.feedW, p.feedSrc = pr, pw, in
		cmd.Stdin = pr
	}
	// Its own process group: a Ctrl-C on the terminal reaches zrep only,
	// which then ends its children in order, and a kill reaches ssh's or
	// zfs's own children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = p.kill
	cmd.WaitDelay = waitDelay
	p.begin = time.Now()
	r.log.Debug("start", "role", r.role, "host", r.host, "argv", argv)
	err := cmd.Start()
	if childIn != nil {
		childIn.Close()
	}
	if err != nil {
		close(p.done)
		if p.feedW != nil {
			p.feedW.Close()
		}
		return nil, pdu.PermanentError(fmt.Errorf("%s: start %s: %w", describe(zfsArgv, r.host), argv[0], err))
	}
	if p.feedW != nil {
		p.fed = make(chan struct{})
		go p.feed()
	}
	return p, nil
}

// runDetached runs argv, an ssh helper command rather than zfs, with stderr
// going to a file: `ssh -f` leaves a background process holding stderr.
func (r *runner) runDetached(ctx context.Context, argv []string, stderr *os.File) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	begin := time.Now()
	r.log.Debug("start", "role", r.role, "host", r.host, "argv", argv)
	err := cmd.Run()
	r.log.Debug("end", "role", r.role, "host", r.host, "argv", argv, "duration", time.Since(begin), "err", err)
	return err
}

// kill ends the process group: SIGTERM now, SIGKILL if it is still there
// after killGrace.
func (p *process) kill() error {
	if p.onKill != nil {
		p.onKill(p.stderr.String())
	}
	pid := p.cmd.Process.Pid
	err := killGroup(pid, syscall.SIGTERM)
	go func() {
		t := time.NewTimer(killGrace)
		defer t.Stop()
		select {
		case <-p.done:
		case <-t.C:
			killGroup(pid, syscall.SIGKILL)
		}
	}()
	return err
}

func killGroup(pid int, sig syscall.Signal) error {
	err := syscall.Kill(-pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// feed copies the caller's stream into the child's stdin until EOF, an
// error, or the child going away (the write fails).
func (p *process) feed() {
	defer close(p.fed)
	io.Copy(feedPipe{p.feedW}, p.feedSrc)
	// EOF for the child; a stream that failed becomes a short stream, which
	// zfs receive reports as incomplete.
	p.feedW.Close()
}

// feedPipe is the write end of the pipe to a child's stdin: a send stream
// that finds it (behind a countingWriter, see sendStream.WriteTo) splices
// into it.
type feedPipe struct{ *os.File }

// stop ends the process because its output is no longer wanted.
func (p *process) stop() {
	p.stopped = true
	p.kill()
}

// wait waits for the process and returns its classified error.
func (p *process) wait() error {
	p.waitOnce.Do(func() {
		err := p.cmd.Wait()
		close(p.done)
		if p.fed != nil {
			// Unblocks a feed stuck writing; one stuck reading ends when
			// the caller's stream does, and is not waited for once the
			// context is done.
			p.feedW.Close()
			select {
			case <-p.fed:
			case <-p.ctx.Done():
			}
		}
		d := time.Since(p.begin)
		st := statusOf(err)
		p.r.log.Debug("end", "role", p.r.role, "host", p.r.host, "argv", p.cmd.Args,
			"duration", d, "exit", st.code, "signal", st.signal, "err", err)
		switch {
		case err == nil && p.onKill != nil && stageFailed(p.stderr.String()):
			// A remote pipeline that exited 0 because its last program
			// did, after an earlier one failed.
			p.waitErr = classify(p.zfsArgv, p.r.host, st, p.stderr.String())
		case err == nil:
		case p.ctx.Err() != nil:
			p.waitErr = fmt.Errorf("%s: %w", describe(p.zfsArgv, p.r.host), context.Cause(p.ctx))
		case p.stopped && st.signal != 0:
			p.waitErr = pdu.RetryableError(fmt.Errorf("%s: stopped before the end of its output, which was no longer read", describe(p.zfsArgv, p.r.host)))
		case st.code == -1 && st.signal == 0:
			// Not an exit status: an I/O error, or the WaitDelay expired.
			p.waitErr = pdu.RetryableError(fmt.Errorf("%s: %w", describe(p.zfsArgv, p.r.host), err))
		default:
			p.waitErr = classify(p.zfsArgv, p.r.host, st, p.stderr.String())
		}
	})
	return p.waitErr
}

// recordArgv appends zfsArgv to the argv log, one whole line per write so
// concurrent writers (two endpoints, two zrep processes) do not interleave.
// Other programs zrep runs on a side (a codec's version probe) are not
// zfs invocations and are not recorded.
func (r *runner) recordArgv(zfsArgv []string) {
	if r.argvLog == "" || len(zfsArgv) == 0 || zfsArgv[0] != "zfs" {
		return
	}
	line, err := json.Marshal(struct {
		Role string   `json:"role"`
		Host string   `json:"host"`
		Argv []string `json:"argv"`
	}{r.role, r.host, zfsArgv})
	if err != nil {
		return
	}
	line = append(line, '\n')
	r.argvLogMu.Lock()
	defer r.argvLogMu.Unlock()
	// Never through a symbolic link, and readable by its owner only: the
	// log is for tests, but the variable works in every build.
	f, err := os.OpenFile(r.argvLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		r.log.Warn("cannot write argv log", "file", r.argvLog, "err", err)
		return
	}
	defer f.Close()
	if _, err := f.Write(line); err != nil {
		r.log.Warn("cannot write argv log", "file", r.argvLog, "err", err)
	}
}

// exitStatus is how a process ended.
type exitStatus struct {
	code   int            // exit code; -1 if killed by a signal or not run
	signal syscall.Signal // the signal that killed it, or 0
}

func statusOf(err error) exitStatus {
	if err == nil {
		return exitStatus{}
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return exitStatus{code: -1}
	}
	st := exitStatus{code: ee.ExitCode()}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		st.signal = ws.Signal()
	}
	return st
}

// stderrTail keeps the first and the last stderrKeep bytes written to it.
type stderrTail struct {
	mu      sync.Mutex
	head    []byte
	tail    []byte
	dropped int64
}

func (s *stderrTail) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(b)
	if room := stderrKeep - len(s.head); room > 0 {
		k := min(room, len(b))
		s.head = append(s.head, b[:k]...)
		b = b[k:]
	}
	s.tail = append(s.tail, b...)
	if len(s.tail) > 2*stderrKeep {
		cut := len(s.tail) - stderrKeep
		s.dropped += int64(cut)
		s.tail = append(s.tail[:0], s.tail[cut:]...)
	}
	return n, nil
}

func (s *stderrTail) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dropped == 0 {
		return string(s.head) + string(s.tail)
	}
	return fmt.Sprintf("%s\n[... %d bytes ...]\n%s", s.head, s.dropped, s.tail)
}
