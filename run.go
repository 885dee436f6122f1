package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/urfave/cli/v2"

	"github.com/zrep/zrep/replication"
)

func runCommand() *cli.Command {
	return &cli.Command{
		Name:         "run",
		Usage:        "replicate SRC to DST, retrying, then print the Report",
		ArgsUsage:    "SRC DST",
		Flags:        append(append(append(append(commonFlags(), runFlags()...), metricsFileFlag(), postRunFlag()), retentionFlags(true)...), snapshotHookFlags()...),
		OnUsageError: onUsageError,
		Action:       runAction,
	}
}

func runAction(c *cli.Context) (err error) {
	j, err := parseJob(c, c.App.ErrWriter)
	if err != nil {
		return err
	}
	j.cfg.Retries = c.Int("retries")
	if j.cfg.Retries < 0 {
		return usageErrorf("--retries must be 0 or more, got %d", j.cfg.Retries)
	}
	j.cfg.RetryWait = c.Duration("retry-wait")
	if j.cfg.RetryWait < 0 {
		return usageErrorf("--retry-wait must not be negative, got %s", j.cfg.RetryWait)
	}
	timeout := c.Duration("timeout")
	if timeout < 0 {
		return usageErrorf("--timeout must not be negative, got %s", timeout)
	}
	showProgress, err := wantProgress(c.String("progress"), c.Bool("quiet"))
	if err != nil {
		return err
	}
	ret, err := parseRetention(c)
	if err != nil {
		return err
	}
	hooks, err := parseSnapshotHooks(c)
	if err != nil {
		return err
	}
	if hooks.any() && !ret.snapshot {
		return usageErrorf("--pre-snapshot and --post-snapshot run around --snapshot's set: add --snapshot")
	}

	// From here on, every outcome is written to the metrics file and told
	// to the post-run hook, after the Report.
	start := time.Now()
	var rep *replication.Report
	if cmd := c.String("post-run"); cmd != "" {
		defer func() { runPostRun(c.Context, j.logger, cmd, hooks.timeout, err, rep) }()
	}
	lock, err := lockDestination(c.String("lock-dir"), j.dst)
	if err != nil {
		return finishMetrics(c, j, start, nil, lockFailure(err))
	}
	defer lock.Release()

	ctx, stop := signalContext(c.Context)
	defer stop()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, errTimeout)
		defer cancel()
	}

	src, dst := retentionEndpoints(j, c.Bool("recursive"), ret)
	defer closeEndpoints(j, src, dst)
	// On a signal or the timeout, end the shared ssh connections at once: a
	// remote command that cannot notice its ssh client is gone (a stalled
	// sender) keeps the client's output open through the connection, and
	// zrep would wait for it.
	defer context.AfterFunc(ctx, func() { closeEndpoints(j, src, dst) })()
	if err := checkLink(ctx, src, dst); err != nil {
		return finishMetrics(c, j, start, nil, cancelledOr(ctx, &exitError{code: exitFailed, err: err}))
	}
	set, hookErr, err := takeRunSnapshot(ctx, j, ret, hooks, c.Bool("recursive"), src)
	if err != nil {
		return finishMetrics(c, j, start, nil, err)
	}

	r := replication.NewReplication(j.cfg)
	var bar *progress
	if showProgress {
		bar = startProgress(c.App.ErrWriter, r)
	}
	r.Drive(ctx, src, dst)
	if bar != nil {
		bar.Stop()
	}
	r.Prune(ctx, src, dst, ret.prune)

	rep = r.Report()
	releaseRunSnapshot(ctx, j, ret, set, rep, src)
	if set != nil {
		rep.Snapshot = &set.Name
	}
	if context.Cause(ctx) != nil {
		// Interrupted while pruning, after the replication completed.
		rep.Status = replication.ContextDone.String()
	}
	result := runOutcome(ctx, rep)
	if result == nil && hookErr != nil {
		result = &exitError{code: exitFailed, err: hookErr}
	}
	outcome := finishMetrics(c, j, start, rep, result)
	if quietSuccess(c, outcome) {
		return nil
	}
	if j.json {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil && !errors.Is(err, syscall.EPIPE) {
			// A reader that went away (| head) loses the Report, and the
			// exit status stays the run's.
			return &exitError{code: exitFailed, err: err}
		}
	} else {
		rep.WriteText(c.App.Writer)
	}
	return outcome
}

// quietSuccess says whether a run's Report is left unprinted: with -q a
// successful run prints nothing (cron mails any output), a failed one
// prints the Report. --json asks for the Report explicitly and always gets it.
func quietSuccess(c *cli.Context, outcome error) bool {
	return c.Bool("quiet") && !c.Bool("json") && outcome == nil
}

// runOutcome maps the final Report to the exit status of SPEC section 5.
// A signal or the timeout decides it whatever the phase it came in:
// replicating, or pruning after it.
func runOutcome(ctx context.Context, rep *replication.Report) error {
	if err := cancelledOr(ctx, nil); err != nil {
		return err
	}
	switch rep.Status {
	case replication.ContextDone.String():
		return &exitError{code: exitInterrupted}
	case replication.PlanningError.String():
		return &exitError{code: exitPlanning}
	case replication.Completed.String():
		if rep.Failed() {
			return &exitError{code: exitFailed}
		}
		return nil
	}
	return &exitError{code: exitFailed, err: fmt.Errorf("replication ended in state %s", rep.Status)}
}

// cancelledOr is the exit of a run whose context a signal (130) or
// --timeout (124) ended, and err otherwise.
func cancelledOr(ctx context.Context, err error) error {
	switch context.Cause(ctx) {
	case errTimeout:
		return &exitError{code: exitTimeout, err: err}
	case errInterrupted:
		return &exitError{code: exitInterrupted, err: err}
	}
	return err
}

func wantProgress(mode string, quiet bool) (bool, error) {
	switch mode {
	case "always":
		return true, nil
	case "never":
		return false, nil
	case "auto":
		fd := os.Stderr.Fd()
		return !quiet && (isatty.IsTerminal(fd) || isatty.IsCygwinTerminal(fd)), nil
	}
	return false, usageErrorf("--progress must be auto, always or never, not %q", mode)
}
