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
			{Name: "plan", Usage: "show what run would send; changes nothing", ArgsUsage: "SRC DST", Flags: withEnvVars(planFlags()), Action: planAction, OnUsageError: onUsageError},
			{Name: "run", Usage: "replicate SRC to DST, retrying, then print the Report", ArgsUsage: "SRC DST", Flags: withEnvVars(runFlags()), Action: runAction, OnUsageError: onUsageError},
			{Name: "snapshot", Usage: "take one snapshot set <prefix>YYYYMMDDTHHMMSSZ over DATASET (and with -r its descendants)", ArgsUsage: "DATASET", Flags: withEnvVars(snapshotFlags()), Action: snapshotAction, OnUsageError: onUsageError},
			{Name: "prune", Usage: "thin the snapshots of SRC and DST by --keep-source and --keep-dest, replicating nothing", ArgsUsage: "SRC DST", Flags: withEnvVars(pruneFlags()), Action: pruneAction, OnUsageError: onUsageError},
			{Name: "status", Usage: "show each filesystem's newest snapshot and its age; with --max-age, a monitoring check", Description: statusDescription, ArgsUsage: "DATASET", Flags: withEnvVars(statusFlags()), Action: statusAction, OnUsageError: onUsageError},
			// No environment variables: an ssh client may be allowed to set
			// some (AcceptEnv), and none may widen what a key can do.
			{Name: "serve", Usage: "be the restricted side of an ssh key: run only what zrep needs under one dataset", Description: serveDescription, Flags: serveFlags(), Action: serveAction, OnUsageError: onUsageError},
			generateCommand(func() *cli.App { return newApp(io.Discard, io.Discard) }),
			{Name: "allow", Usage: "print the zfs allow commands that let each side's account run this job without root", Description: allowDescription, ArgsUsage: "SRC DST", Flags: withEnvVars(allowFlags()), Action: allowAction, OnUsageError: onUsageError},
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
