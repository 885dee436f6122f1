package endpoints

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SSHOptions are the ssh settings used for every remote side.
type SSHOptions struct {
	// Port is passed as `ssh -p`; 0 leaves it to the ssh configuration.
	Port int
	// Identity is passed as `ssh -i`; empty leaves it to the configuration.
	Identity string
	// Options are passed as `ssh -o OPT` each, before zrep's own options,
	// so the user's choice wins where ssh takes the first value given.
	Options []string
	// ConnectTimeout bounds the TCP connect and handshake, so a dead host
	// fails in seconds instead of minutes; 0 means 10s.
	ConnectTimeout time.Duration
}

// controlPersist is how long the shared master connection stays up with no
// session using it. zrep ends the master itself in Close; this only bounds
// how long it lingers if zrep is killed with SIGKILL. It must outlast the
// engine's pauses between commands (a retry wait, default 10s) or the next
// command would log in again.
const controlPersist = 60 * time.Second

// shellQuote quotes one argument for the remote user's shell: a single-quoted
// word, with each `'` written as `'\”`. Inside single quotes no shell (sh,
// bash, zsh, csh's `'` aside from newlines in old csh) expands anything, so
// no dataset or snapshot name can run a command on the remote host.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// exitMarker starts the line on which the remote wrapper reports the zfs
// command's own exit status, so that zrep can tell a status 255 of zfs
// (OpenZFS uses it, e.g. for a resume token whose snapshot is gone) from
// ssh's own 255 for a connection that failed.
const exitMarker = "zrep-exit:"

// remoteCommand is the one string ssh hands to the remote shell for argv.
// The command runs under sh, whatever the account's login shell (csh and
// fish included), which then writes the command's exit status on a line of
// its own to stderr, after everything zfs wrote, and exits with it.
// `env LC_ALL=C` keeps zfs's messages in English, which classify reads,
// whatever the remote locale.
func remoteCommand(argv []string) string {
	quoted := make([]string, 0, len(argv)+2)
	quoted = append(quoted, "env", "LC_ALL=C")
	for _, a := range argv {
		quoted = append(quoted, shellQuote(a))
	}
	script := strings.Join(quoted, " ") + `; s=$?; printf '\n` + exitMarker + `%s\n' "$s" >&2; exit "$s"`
	return "exec sh -c " + shellQuote(script)
}

// remoteStatus reads the exit status that remoteCommand's wrapper wrote at
// the end of stderr. ok is false when there is none: the command's status
// never came back, because ssh failed before it started or while it ran.
// rest is stderr without the status line.
func remoteStatus(stderr string) (code int, rest string, ok bool) {
	body := "\n" + stderr
	i := strings.LastIndex(body, "\n"+exitMarker)
	if i < 0 {
		return 0, stderr, false
	}
	line, after, _ := strings.Cut(body[i+1:], "\n")
	code, err := strconv.Atoi(strings.TrimPrefix(line, exitMarker))
	if err != nil || code < 0 || code > 255 {
		return 0, stderr, false
	}
	// What ssh may have written after the command ended stays.
	return code, strings.TrimPrefix(body[:i], "\n") + "\n" + after, true
}

// sshBaseArgv is `ssh` with the user's options and zrep's connection
// sharing options; controlPath "" leaves sharing off.
//
// BatchMode is deliberately not set: host-key checking and authentication
// stay as the user's ssh configuration has them (add `--ssh-option
// BatchMode=yes` for unattended runs). Since all commands share one master
// connection, a password or passphrase prompt appears at most once per run.
func sshBaseArgv(side Side, o SSHOptions, controlPath string) []string {
	argv := []string{"ssh"}
	if o.Port != 0 {
		argv = append(argv, "-p", strconv.Itoa(o.Port))
	}
	if o.Identity != "" {
		argv = append(argv, "-i", o.Identity)
	}
	for _, opt := range o.Options {
		argv = append(argv, "-o", opt)
	}
	timeout := o.ConnectTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	secs := int((timeout + time.Second - 1) / time.Second)
	argv = append(argv, "-o", "ConnectTimeout="+strconv.Itoa(secs))
	// A half-open connection (a peer gone without a word) ends within
	// about a minute instead of never.
	for _, keepAlive := range []string{"ServerAliveInterval=15", "ServerAliveCountMax=4"} {
		if !hasSSHOption(o.Options, keepAlive) {
			argv = append(argv, "-o", keepAlive)
		}
	}
	if controlPath != "" {
		argv = append(argv, "-o", "ControlPath="+controlPath)
	}
	if side.User != "" {
		argv = append(argv, "-l", side.User)
	}
	return argv
}

// hasSSHOption reports whether opts, ssh -o options, set the keyword of
// option (KEY=VALUE): keywords are case-insensitive, and separated from
// their value by '=' or blanks.
func hasSSHOption(opts []string, option string) bool {
	key := func(o string) string {
		k, _, _ := strings.Cut(strings.TrimSpace(o), "=")
		k, _, _ = strings.Cut(k, " ")
		k, _, _ = strings.Cut(k, "\t")
		return strings.ToLower(k)
	}
	want := key(option)
	for _, o := range opts {
		if key(o) == want {
			return true
		}
	}
	return false
}

// sshCommandArgv runs zfsArgv on side's host through the shared master
// connection at controlPath. `--` ends ssh's options, so neither the host
// nor the command can be read as one.
//
// ControlMaster=no: commands only use the master that masterArgv started;
// if it is gone, ssh logs in on its own rather than becoming a master whose
// background process would hold our stderr pipe open.
func sshCommandArgv(side Side, o SSHOptions, controlPath string, zfsArgv []string) []string {
	return sshScriptArgv(side, o, controlPath, remoteCommand(zfsArgv))
}

// sshScriptArgv runs a remote shell script (one line, its words already
// quoted) on side's host through the shared master connection.
func sshScriptArgv(side Side, o SSHOptions, controlPath, script string) []string {
	argv := sshBaseArgv(side, o, controlPath)
	if controlPath != "" {
		argv = append(argv, "-o", "ControlMaster=no")
	}
	return append(argv, "--", side.Host, script)
}

// sshMasterArgv starts the shared master connection: it authenticates, then
// (-f) goes to the background and serves later commands (-N: no command of
// its own). ControlPersist ends it after an idle period should zrep die
// without calling Close.
func sshMasterArgv(side Side, o SSHOptions, controlPath string) []string {
	argv := sshBaseArgv(side, o, controlPath)
	argv = append(argv,
		"-o", "ControlMaster=yes",
		"-o", "ControlPersist="+strconv.Itoa(int(controlPersist/time.Second)),
		"-f", "-N", "--", side.Host)
	return argv
}

// sshExitArgv asks the master at controlPath to end.
func sshExitArgv(side Side, o SSHOptions, controlPath string) []string {
	argv := sshBaseArgv(side, o, controlPath)
	return append(argv, "-O", "exit", "--", side.Host)
}

// sshConn is one remote side's shared ssh connection: a master started on
// first use and ended by close.
type sshConn struct {
	side Side
	opts SSHOptions
	run  *runner

	mu      sync.Mutex
	dir     string // private 0700 directory holding the control socket
	started bool
	closed  bool
}

func (c *sshConn) controlPath() string { return filepath.Join(c.dir, "cm") }

// wrap turns a zfs argv into the argv that runs it on the remote host,
// logging in first if this is the side's first command.
func (c *sshConn) wrap(ctx context.Context, zfsArgv []string) ([]string, error) {
	return c.wrapScript(ctx, remoteCommand(zfsArgv))
}

// wrapScript turns a remote script (remoteCommand's or remotePipeline's)
// into the ssh argv that runs it, logging in first if this is the side's first command.
func (c *sshConn) wrapScript(ctx context.Context, script string) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("ssh %s: endpoint already closed", c.side.Host)
	}
	if !c.started {
		if err := c.startMaster(ctx); err != nil {
			return nil, err
		}
		c.started = true
	}
	return sshScriptArgv(c.side, c.opts, c.controlPath(), script), nil
}

func (c *sshConn) startMaster(ctx context.Context) error {
	if c.dir == "" {
		dir, err := os.MkdirTemp(controlBase(), "zrep-ssh-")
		if err != nil {
			return fmt.Errorf("ssh %s: create control directory: %w", c.side.Host, err)
		}
		if err := os.Chmod(dir, 0o700); err != nil {
			os.RemoveAll(dir)
			return fmt.Errorf("ssh %s: create control directory: %w", c.side.Host, err)
		}
		c.dir = dir
	}
	// The master's stderr goes to a file: ssh -f leaves a background
	// process holding it, and a pipe would never see EOF.
	errFile, err := os.Create(filepath.Join(c.dir, "master.err"))
	if err != nil {
		return fmt.Errorf("ssh %s: %w", c.side.Host, err)
	}
	defer errFile.Close()
	argv := sshMasterArgv(c.side, c.cipherOptions(ctx), c.controlPath())
	err = c.run.runDetached(ctx, argv, errFile)
	if err == nil {
		return nil
	}
	msg, _ := os.ReadFile(errFile.Name())
	st := statusOf(err)
	if ctx.Err() != nil {
		return fmt.Errorf("ssh login to %s: %w", c.side.Host, context.Cause(ctx))
	}
	return classifySSH(c.side.Host, st, string(msg))
}

// controlBase is where the control directory is made: $TMPDIR if ssh can
// take it as it is, else /tmp. ssh refuses control paths longer than a
// unix socket name (~104 bytes), splits an option's value at blanks and
// expands % in ControlPath, so a long $TMPDIR, or one holding anything but
// letters, digits and /._-, is not used.
func controlBase() string {
	base := os.TempDir()
	if len(base) > 40 {
		return "/tmp"
	}
	for _, r := range base {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-", r)) {
			return "/tmp"
		}
	}
	return base
}

// close ends the master connection, if one was started, and removes the
// control directory.
func (c *sshConn) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.dir == "" {
		return nil
	}
	var errs []error
	if c.started {
		// Close runs on every exit path, including after the run's context
		// ended, so it gets a context of its own.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		errFile, err := os.Create(filepath.Join(c.dir, "exit.err"))
		if err == nil {
			if err := c.run.runDetached(ctx, sshExitArgv(c.side, c.opts, c.controlPath()), errFile); err != nil {
				msg, _ := os.ReadFile(errFile.Name())
				// A master that already went away (idle timeout, network)
				// is what we wanted.
				if _, serr := os.Stat(c.controlPath()); serr == nil {
					errs = append(errs, fmt.Errorf("ssh %s: end shared connection: %w: %s", c.side.Host, err, strings.TrimSpace(string(msg))))
				}
			}
			errFile.Close()
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, fmt.Errorf("ssh %s: remove control directory: %w", c.side.Host, err))
	}
	return errors.Join(errs...)
}
