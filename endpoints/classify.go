package endpoints

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/zrep/zrep/pdu"
)

// Reasons a CommandError can unwrap to, for callers that decide on them
// with errors.Is.
var (
	// ErrDatasetNotExist: zfs said a dataset, snapshot or bookmark does not exist.
	ErrDatasetNotExist = errors.New("dataset does not exist")
	// ErrUnsupported: zfs did not know a subcommand, option or property;
	// the platform lacks the feature.
	ErrUnsupported = errors.New("not supported by this zfs")
	// ErrKeyNotLoaded: zfs needed the encryption key of a dataset that is
	// not loaded: a send with --decrypt, a receive that is not raw below
	// an encrypted parent, a create below one.
	ErrKeyNotLoaded = errors.New("encryption key not loaded")
	// ErrConnection: ssh could not reach or stay connected to the host.
	ErrConnection = errors.New("ssh connection failed")
	// ErrPermission: zfs refused the command to an account without the
	// delegated permission.
	ErrPermission = errors.New("permission denied")
	// ErrSudo: sudo would not run zfs without a password (--sudo).
	ErrSudo = errors.New("sudo refused to run zfs")
	// ErrHoldExists: zfs hold found the snapshot holding that tag already.
	ErrHoldExists = errors.New("hold tag already exists")
	// ErrNoSuchHold: zfs release found no hold with that tag on the snapshot.
	ErrNoSuchHold = errors.New("no such hold tag")
	// ErrAlreadyExists: the dataset or snapshot zfs was asked to create is
	// there already.
	ErrAlreadyExists = errors.New("already exists")
)

// CommandError is a zfs command (run here or over ssh) that failed. It is
// always wrapped in a pdu class by classify.
type CommandError struct {
	// Argv is the zfs command, without the ssh wrapping.
	Argv []string
	// Host is the ssh host, or "" for this machine.
	Host string
	// ExitCode is the exit status, -1 if the process was killed.
	ExitCode int
	// Signal is the signal that killed the process, or 0.
	Signal syscall.Signal
	// Stderr is the command's stderr, bounded.
	Stderr string
	// Hint, when set, tells the operator the way out.
	Hint string

	reason error
}

func (e *CommandError) Error() string {
	var b strings.Builder
	b.WriteString(describe(e.Argv, e.Host))
	b.WriteString(": ")
	switch msg := e.message(); {
	case msg != "":
		b.WriteString(msg)
	case e.Signal != 0:
		fmt.Fprintf(&b, "killed by signal %v", e.Signal)
	default:
		fmt.Fprintf(&b, "exit status %d", e.ExitCode)
	}
	if e.Hint != "" {
		b.WriteString(" (")
		b.WriteString(e.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the reason zrep read from stderr (ErrDatasetNotExist ...),
// or nil.
func (e *CommandError) Unwrap() error { return e.reason }

// message is the part of stderr worth one line: zfs's first lines, or, for
// a failed ssh connection, ssh's last ones (a remote shell's noise may come
// before them).
func (e *CommandError) message() string {
	var lines []string
	for _, l := range strings.Split(e.Stderr, "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "usage:") {
			break
		}
		if l != "" {
			lines = append(lines, l)
		}
	}
	if errors.Is(e.reason, ErrConnection) && len(lines) > 2 {
		lines = lines[len(lines)-2:]
	}
	if len(lines) > 3 {
		lines = lines[:3]
	}
	return strings.Join(lines, " ")
}

// describe names a zfs command for messages: `zfs receive backup/a on host
// X`. The object is the last argument, except for a resume token, which is
// long and says nothing to a reader.
func describe(argv []string, host string) string {
	var b strings.Builder
	if len(argv) > 0 {
		b.WriteString(argv[0])
	}
	if len(argv) > 1 {
		b.WriteString(" ")
		b.WriteString(argv[1])
	}
	if len(argv) > 2 {
		obj := argv[len(argv)-1]
		if argv[len(argv)-2] == "-t" {
			obj = "(resume token)"
		}
		b.WriteString(" ")
		b.WriteString(obj)
	}
	if host != "" {
		b.WriteString(" on host ")
		b.WriteString(host)
	}
	return b.String()
}

// keyHint is the way out of a command that needed an encryption key:
// what it is depends on the command.
func keyHint(argv []string) string {
	if len(argv) > 1 && argv[1] == "send" {
		return "the dataset is encrypted and its key is not loaded on the source: --decrypt needs it loaded (zfs load-key), or leave out --decrypt to send it raw, still encrypted (the destination then needs no key)"
	}
	if len(argv) > 1 && (argv[1] == "receive" || argv[1] == "recv") {
		return "the destination's parent is encrypted and its key is not loaded there: a stream that is not raw is encrypted on receipt with that key; load it on the destination (zfs load-key), or replicate below a parent that is not encrypted"
	}
	return "an encryption key is not loaded (zfs load-key)"
}

// sudoHint is the way out of a --sudo that sudo refuses.
const sudoHint = "--sudo runs zfs through sudo -n, which sudo refused without a password; on that host, let the account run zfs without one: a sudoers line (visudo) such as `ACCOUNT ALL=(root) NOPASSWD: /usr/sbin/zfs`, or delegate instead (zrep allow)"

// stderrRule maps a stderr fragment to a class and reason.
type stderrRule struct {
	fragment string
	class    pdu.Class
	reason   error
	hint     string
}

// stderrRules are tried in order; the first whose fragment occurs in stderr
// decides. A refusal comes before stream damage, because when zfs receive
// refuses a stream the sender's "Broken pipe" follows it.
var stderrRules = []stderrRule{
	// sudo -n (--sudo) where sudo would ask for a password, or where the
	// account may not run zfs through it: the operator must change sudoers.
	{"a password is required", pdu.Permanent, ErrSudo, sudoHint},
	{"is not in the sudoers file", pdu.Permanent, ErrSudo, sudoHint},
	{"is not allowed to execute", pdu.Permanent, ErrSudo, sudoHint},
	// Answers of zfs hold and release that the caller may take as done.
	{"tag already exists", pdu.Permanent, ErrHoldExists, ""},
	{"no such tag", pdu.Permanent, ErrNoSuchHold, ""},
	{"already exists", pdu.Permanent, ErrAlreadyExists, ""},
	{"has been modified", pdu.Permanent, nil, "the destination changed after its newest snapshot; use --rollback to discard those changes"},
	{"must specify -F", pdu.Permanent, nil, "the destination exists and has no snapshot in common with the source; use --rollback only if it may be overwritten"},
	{"does not match incremental source", pdu.Permanent, nil, "the destination's newest snapshot is not the stream's base"},
	{"out of space", pdu.Permanent, nil, "free space on the destination pool"},
	{"No space left", pdu.Permanent, nil, "free space on the destination pool"},
	{"quota exceeded", pdu.Permanent, nil, "raise the destination's quota"},
	// zfs send of an encrypted dataset whose key is not loaded: OpenZFS
	// 2.3 says "cannot send 'fs@s1': dataset key must be loaded"; other
	// versions word it differently, hence the broader fragments.
	// Raw streams: zfs neither continues a decrypted copy with one nor
	// overwrites anything with one.
	{"cannot perform raw receive on top of existing unencrypted dataset", pdu.Permanent, nil,
		"the destination was received decrypted; raw streams cannot continue it: replicate to a new destination, or use --decrypt"},
	{"-F cannot be used to destroy an encrypted filesystem", pdu.Permanent, nil,
		"zfs does not overwrite an existing filesystem with a raw stream, nor an encrypted one with any stream: destroy it, or replicate to a new destination"},
	{"key must be loaded", pdu.Permanent, ErrKeyNotLoaded, ""},
	{"key not loaded", pdu.Permanent, ErrKeyNotLoaded, ""},
	// zfs create below an encryption root whose key is not loaded says
	// "encryption root's key is not loaded or provided".
	{"key is not loaded", pdu.Permanent, ErrKeyNotLoaded, ""},
	{"keystatus is unavailable", pdu.Permanent, ErrKeyNotLoaded, ""},
	{"does not exist", pdu.Permanent, ErrDatasetNotExist, ""},
	// zfs's own "permission denied": an account that is not root lacks a
	// delegated permission (ssh's "Permission denied (publickey)" is
	// classified as the connection's before these rules).
	{"permission denied", pdu.Permanent, ErrPermission, "the account lacks a delegated zfs permission for this command; zrep allow prints what the job needs (README: Running without root)"},
	{"invalid option", pdu.Permanent, ErrUnsupported, ""},
	{"unrecognized command", pdu.Permanent, ErrUnsupported, ""},
	{"bad property list", pdu.Permanent, ErrUnsupported, ""},
	{"usage:", pdu.Permanent, ErrUnsupported, ""},
	{"invalid backup stream", pdu.Retryable, nil, ""},
	{"incomplete stream", pdu.Retryable, nil, ""},
	{"checksum mismatch", pdu.Retryable, nil, ""},
	{"failed to read from stream", pdu.Retryable, nil, ""},
	// OpenZFS's zfs send interrupted (its reader, a compressor, died).
	{"signal received", pdu.Retryable, nil, ""},
	{"dataset is busy", pdu.Retryable, nil, ""},
	// zfs-fuse answers a rollback or a receive -F right after an unmount
	// with "I/O error" now and then; a retry after the wait succeeds. A
	// receive whose snapshot arrived despite it is completed by the engine.
	{"I/O error", pdu.Retryable, nil, ""},
	{"Broken pipe", pdu.Retryable, nil, ""},
	{"Connection reset", pdu.Retryable, ErrConnection, ""},
}

// classify turns a failed zfs command into an error with a pdu class:
// retryable where waiting and trying again can help (a lost connection, a
// killed process, a broken stream, a busy dataset), permanent otherwise.
// Anything not recognised is permanent: retrying the unknown only delays
// the operator.
func classify(argv []string, host string, st exitStatus, stderr string) error {
	remote := host != ""
	// ran: the remote command's own exit status came back through the
	// wrapper (remoteCommand), so a failure is zfs's, not ssh's.
	ran, ranOK := false, false
	if remote {
		stderr = pipelineStatus(stderr)
		if code, rest, ok := remoteStatus(stderr); ok {
			ran, ranOK, stderr = true, code == 0, rest
			if st.signal == 0 && code != 0 {
				st.code = code
			}
		}
	}
	e := &CommandError{Argv: argv, Host: host, ExitCode: st.code, Signal: st.signal, Stderr: stderr}
	switch {
	case st.signal != 0:
		return pdu.RetryableError(e)
	case remote && (!ran || ranOK):
		// ssh failed: before the command started, while it ran (no status
		// came back), or after it ended well.
		e.reason = ErrConnection
		return pdu.RetryableError(e)
	case remote && st.code == 127:
		e.Hint = "is zfs installed and in the PATH of non-interactive ssh sessions on " + host + "?"
		return pdu.PermanentError(e)
	case remote && st.code > 128 && st.code < 255:
		// The remote shell reports a command killed by signal N as 128+N.
		return pdu.RetryableError(e)
	}
	// zfs wraps long messages ("does not\nmatch incremental source").
	flat := strings.Join(strings.Fields(stderr), " ")
	for _, r := range stderrRules {
		if strings.Contains(flat, r.fragment) {
			e.reason = r.reason
			e.Hint = r.hint
			if r.reason == ErrKeyNotLoaded {
				e.Hint = keyHint(argv)
			}
			return pdu.WithClass(e, r.class)
		}
	}
	return pdu.PermanentError(e)
}

// classifySSH classifies the failure of an ssh helper command (starting
// the shared connection), which has no zfs argv.
func classifySSH(host string, st exitStatus, stderr string) error {
	e := &CommandError{Argv: []string{"ssh", "login"}, Host: host, ExitCode: st.code, Signal: st.signal, Stderr: stderr, reason: ErrConnection}
	if st.code == 255 || st.signal != 0 {
		return pdu.RetryableError(e)
	}
	return pdu.PermanentError(e)
}
