// Command zrep replicates ZFS filesystems and their snapshots from a source
// to a destination, each local or reached over ssh.
//
// One invocation does one job in the foreground and exits with a status that
// says how it went; see the README for the exit codes.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/zrep/zrep/endpoints"
	"github.com/zrep/zrep/replication"
)

// The endpoints satisfy the engine's interfaces without importing it.
var (
	_ replication.Sender   = (*endpoints.Endpoint)(nil)
	_ replication.Receiver = (*endpoints.Endpoint)(nil)
)

// version and commit are set at build time with -ldflags
// "-X main.version=... -X main.commit=..." (make does); otherwise they come
// from the Go build information.
var version, commit string

// Exit statuses, SPEC section 5.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitPlanning    = 3
	exitLocked      = 4
	exitTimeout     = 124
	exitInterrupted = 130
)

func main() {
	tuneGC()
	survivePipes()
	os.Exit(runApp(context.Background(), os.Args, os.Stdout, os.Stderr))
}

// runApp runs the CLI with args and returns the process exit status.
func runApp(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := app.RunContext(ctx, args)
	code := exitCode(err)
	var ee *exitError
	if code == exitUsage && !errors.As(err, &ee) && statusCheckUsage(args, os.Getenv) {
		// A monitoring plugin's usage error is UNKNOWN, said on stdout.
		fmt.Fprintf(stdout, "ZREP UNKNOWN - usage: %s\n", oneLine(err.Error()))
		code = checkUnknown
	}
	if err != nil && !(errors.As(err, &ee) && ee.err == nil) {
		// One line: what went wrong and what to do about it.
		fmt.Fprintf(stderr, "zrep: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
	}
	return code
}

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:           "zrep",
		Usage:          "replicate ZFS filesystems and snapshots, locally or over ssh",
		UsageText:      "zrep plan [flags] SRC DST\nzrep run [flags] SRC DST\nzrep snapshot [flags] DATASET\nzrep prune [flags] SRC DST\nzrep status [flags] DATASET\nzrep allow [flags] SRC DST\nzrep serve --receive-only|--send-only DATASET\nzrep version",
		Writer:         stdout,
		ErrWriter:      stderr,
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   onUsageError,
		// A flag's value is one value, commas and all; see repeated.
		DisableSliceFlagSeparator: true,
		Commands: []*cli.Command{
			planCommand(),
			runCommand(),
			snapshotCommand(),
			pruneCommand(),
			statusCommand(),
			serveCommand(),
			generateCommand(),
			allowCommand(),
			{
				Name:  "version",
				Usage: "print zrep's version",
				Action: func(c *cli.Context) error {
					_, err := fmt.Fprint(c.App.Writer, versionText())
					return err
				},
			},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageErrorf("unknown command %q: use plan, run, snapshot, prune, status or version", c.Args().First())
			}
			return usageErrorf("a command is needed: zrep plan|run|snapshot|prune|status|version")
		},
	}
	plainDefaults(app)
	return app
}

func onUsageError(c *cli.Context, err error, isSubcommand bool) error {
	return &usageError{err: err}
}

// usageError is a mistake in the command line: nothing was contacted.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, a ...any) error {
	return &usageError{err: fmt.Errorf(format, a...)}
}

// lockedError says another run holds the destination's lock.
type lockedError struct {
	path string
	pid  string
}

func (e *lockedError) Error() string {
	holder := "another zrep run"
	if e.pid != "" {
		holder = "zrep pid " + e.pid
	}
	return fmt.Sprintf("%s holds the lock %s for this destination; wait for it to finish", holder, e.path)
}

// exitError ends zrep with a given status. With a nil err the outcome was
// already printed (the Plan or the Report).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// Causes of a cancelled run, told apart for the exit status.
var (
	errInterrupted = errors.New("interrupted by signal")
	errTimeout     = errors.New("--timeout expired")
)

// exitCode maps an action's error to the exit status of SPEC section 5.
func exitCode(err error) int {
	var (
		ue *usageError
		le *lockedError
		ee *exitError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &le):
		return exitLocked
	case errors.Is(err, errInterrupted):
		return exitInterrupted
	case errors.Is(err, errTimeout):
		return exitTimeout
	}
	// Errors from flag parsing that urfave/cli does not route through
	// OnUsageError (a malformed environment variable, say) come before any
	// action ran.
	return exitUsage
}
