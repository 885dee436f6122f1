package endpoints

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Hook is an operator's command run around a snapshot (SPEC 15).
type Hook struct {
	// Name says which hook it is in messages: "pre-snapshot".
	Name string
	// Command is run by `sh -c` on the side's machine.
	Command string
	// Env are NAME=VALUE pairs added to the command's environment.
	Env []string
	// Timeout bounds the command; 0 means no bound of its own.
	Timeout time.Duration
}

// errHookTimeout is the cause of a hook's context that outlasted Timeout.
var errHookTimeout = errors.New("hook timeout")

// hookArgv is the argv that runs h: env with its variables, then sh -c.
func hookArgv(h Hook) []string {
	argv := append([]string{"env"}, h.Env...)
	return append(argv, "sh", "-c", h.Command)
}

// RunHook runs h on this side's machine, over the side's shared ssh
// connection when it is remote, and waits for it. What the command prints
// is logged. A command that fails, or outlasts h.Timeout, is an error
// naming the hook; a remote command is ended with its whole process group
// when zrep gives up on it, so it never outlives the run.
func (e *Endpoint) RunHook(ctx context.Context, h Hook) error {
	hctx, cancel := ctx, context.CancelFunc(func() {})
	if h.Timeout > 0 {
		hctx, cancel = context.WithTimeoutCause(ctx, h.Timeout, errHookTimeout)
	}
	defer cancel()
	argv := hookArgv(h)
	run, onKill := argv, (func(string))(nil)
	if e.ssh != nil {
		var err error
		run, err = e.ssh.wrapScript(hctx, remotePipeline([][]string{argv}))
		if err != nil {
			return fmt.Errorf("%s hook on %s: %w", h.Name, e.where(e.side.Dataset), err)
		}
		onKill = e.ssh.killGroup
	}
	var out bytes.Buffer
	p, err := e.door.startWith(hctx, argv, run, nil, &out, onKill)
	if err != nil {
		return fmt.Errorf("%s hook %q on %s: %w", h.Name, h.Command, e.where(e.side.Dataset), err)
	}
	werr := p.wait()
	stderr := p.stderr.String()
	if e.ssh != nil {
		stderr = pipelineOutput(stderr)
	}
	e.log.Info("hook ran", "hook", h.Name, "command", h.Command, "host", e.side.Host,
		"stdout", strings.TrimSpace(out.String()), "stderr", strings.TrimSpace(stderr), "ok", werr == nil)
	switch {
	case werr == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("%s hook %q: %w", h.Name, h.Command, context.Cause(ctx))
	case errors.Is(context.Cause(hctx), errHookTimeout):
		return fmt.Errorf("%s hook %q on %s did not finish within %s and was ended (raise --hook-timeout if it needs longer)",
			h.Name, h.Command, e.machine(), h.Timeout)
	}
	code := p.cmd.ProcessState.ExitCode()
	if e.ssh != nil {
		if c, _, ok := remoteStatus(p.stderr.String()); ok {
			code = c
		}
	}
	msg := strings.TrimSpace(stderr)
	if msg != "" {
		msg = ": " + oneLine(msg)
	}
	return fmt.Errorf("%s hook %q on %s exited with status %d%s", h.Name, h.Command, e.machine(), code, msg)
}

// machine names the side's machine in a message.
func (e *Endpoint) machine() string {
	if e.side.Host == "" {
		return "this host"
	}
	return e.side.Host
}

// pipelineOutput is a remote pipeline's stderr without zrep's own status
// and pid lines.
func pipelineOutput(stderr string) string {
	var b strings.Builder
	for _, line := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(line, exitMarker) || strings.HasPrefix(line, pidMarker) {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return strings.TrimSpace(b.String())
}

// oneLine joins the lines of s, keeping the last 300 bytes.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = "…" + s[len(s)-300:]
	}
	return s
}
