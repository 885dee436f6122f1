package endpoints

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ServeEnv names the environment variable that zrep serve sets for the
// shell it starts, to the policy it serves: a later kill request ends
// only a process group that it finds there.
const ServeEnv = "ZREP_SERVE"

// ServeRefusedStatus is zrep serve's exit status for a refused request:
// the shell's "found but cannot run".
const ServeRefusedStatus = 126

// factTimeout bounds each question zrep serve asks the host before it
// decides (is it a placeholder, what does a token send).
const factTimeout = time.Minute

// Server serves one key's requests: ssh's forced command.
type Server struct {
	Policy ServePolicy
	// Log records every request and its verdict, one line each.
	Log func(line string)
	// Stderr is where a refusal is told to the client.
	Stderr io.Writer
}

// Serve decides on cmdline (SSH_ORIGINAL_COMMAND) and, when the policy
// allows it, runs it in place of this process: the request's template
// under /bin/sh, with stdin, stdout and stderr as they are, so that a
// stream goes straight from zfs to ssh. It returns only when it refused
// the request, or could not run it, with the exit status to end with.
func (s *Server) Serve(cmdline string) int {
	client := "a local user"
	if f := strings.Fields(os.Getenv("SSH_CONNECTION")); len(f) >= 2 {
		client = f[0] + " port " + f[1]
	}
	req, err := ParseRequest(cmdline)
	if cmdline == "" {
		err = refuse("no command: this key runs only zrep's requests (zrep serve %s)", s.Policy)
	} else if err != nil {
		err = refuse("%v: this key runs only zrep's requests (zrep serve %s)", err, s.Policy)
	}
	if err == nil {
		err = s.Policy.Check(req, hostFacts{policy: s.Policy})
	}
	if err != nil {
		s.Log(fmt.Sprintf("%s from %s: %s", err, client, describeRequest(req, cmdline)))
		s.refused(err)
		return ServeRefusedStatus
	}
	s.Log(fmt.Sprintf("accepted from %s: %s", client, describeRequest(req, cmdline)))
	// The shell leads a process group of its own, which its pipeline's
	// pid line names and a later kill request ends whole.
	if syscall.Getpgrp() != os.Getpid() {
		if err := syscall.Setpgid(0, 0); err != nil {
			s.Log(fmt.Sprintf("cannot start a process group: %v", err))
		}
	}
	env := make([]string, 0, len(os.Environ())+1)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, ServeEnv+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, ServeEnv+"="+s.Policy.String())
	err = syscall.Exec("/bin/sh", req.Argv(), env)
	s.Log(fmt.Sprintf("cannot run /bin/sh: %v", err))
	s.refused(fmt.Errorf("cannot run /bin/sh: %w", err))
	return ServeRefusedStatus
}

// refused tells the client why, then reports the status as a request's
// template does, so that zrep on the other side reads it as the
// command's failure (permanent, with this message) and not as a lost
// connection.
func (s *Server) refused(err error) {
	fmt.Fprintf(s.Stderr, "zrep serve: %s\n\n%s%d\n", strings.Join(strings.Fields(err.Error()), " "), exitMarker, ServeRefusedStatus)
}

// describeRequest is a request for the log: its kind and argvs, each word
// quoted, or the start of a command line that did not parse.
func describeRequest(req Request, cmdline string) string {
	var argvs [][]string
	switch req.Kind {
	case 0:
		if len(cmdline) > 200 {
			return fmt.Sprintf("%q... (%d bytes)", cmdline[:200], len(cmdline))
		}
		return strconv.Quote(cmdline)
	case RequestRun:
		argvs = [][]string{req.Words}
	case RequestKill:
		return "kill process group " + strings.Join(req.Words, " ")
	default:
		var err error
		if argvs, err = req.Groups(); err != nil {
			return fmt.Sprintf("malformed request of %d words", len(req.Words))
		}
	}
	parts := make([]string, len(argvs))
	for i, argv := range argvs {
		parts[i] = describeArgv(argv)
	}
	kind := map[RequestKind]string{RequestRun: "run", RequestPipeline: "pipeline", RequestStartup: "start-up", RequestListing: "listing"}[req.Kind]
	line := kind + ": " + strings.Join(parts, " | ")
	if len(line) > 4096 {
		line = line[:4096] + "..."
	}
	return line
}

// hostFacts asks this host, through the runner, what a check needs.
type hostFacts struct{ policy ServePolicy }

func (h hostFacts) output(argv []string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), factTimeout)
	defer cancel()
	var out bytes.Buffer
	r := newRunner(slog.New(slog.DiscardHandler), "serve", "")
	err := r.run(ctx, argv, argv, nil, &out)
	return out.String(), err
}

// Placeholder asks zfs for fs's zrep:placeholder and where it is set.
func (h hostFacts) Placeholder(fs string) (bool, error) {
	out, err := h.output([]string{"zfs", "get", "-H", "-o", "value,source", propPlaceholder, fs})
	if err != nil {
		return false, err
	}
	return strings.TrimSuffix(out, "\n") == "on\tlocal", nil
}

// ResumeTarget asks zfs what token sends.
func (h hostFacts) ResumeTarget(token string) (string, error) {
	argv, err := resumeInfoArgv(token)
	if err != nil {
		return "", err
	}
	out, err := h.output(argv)
	if err != nil {
		return "", err
	}
	ri, err := parseResumeInfo(out)
	if err != nil {
		return "", err
	}
	return ri.ToName, nil
}

// ServedGroup reads /proc: pid must lead its process group, belong to
// this user, and be the shell of a request that reports its pid (a
// pipeline, a listing, a start-up) that zrep serve started under the same
// policy.
func (h hostFacts) ServedGroup(pid int) error {
	dir := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return fmt.Errorf("no such process here (%v)", errors.Unwrap(err))
	}
	// pid (comm) state ppid pgrp ...: comm may hold anything but ends at the last ')'.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(fields) < 3 || fields[2] != strconv.Itoa(pid) {
		return errors.New("it does not lead a process group")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil || int(st.Uid) != os.Getuid() {
		return errors.New("it belongs to another user")
	}
	cmdline, err := os.ReadFile(dir + "/cmdline")
	if err != nil {
		return err
	}
	args := strings.Split(strings.TrimSuffix(string(cmdline), "\x00"), "\x00")
	if len(args) < 3 || args[1] != "-c" || args[2] != pipelineTemplate && args[2] != listingTemplate && args[2] != startupTemplate {
		return errors.New("it is not a request that zrep serve started")
	}
	environ, err := os.ReadFile(dir + "/environ")
	if err != nil {
		return err
	}
	want := ServeEnv + "=" + h.policy.String()
	for _, kv := range strings.Split(string(environ), "\x00") {
		if kv == want {
			return nil
		}
	}
	return fmt.Errorf("it is not a request that zrep serve %s started", h.policy)
}
