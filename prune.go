package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/zrep/zrep/replication"
)

func pruneCommand() *cli.Command {
	flags := append(commonFlags(), retentionFlags(false)...)
	flags = append(flags, &cli.StringFlag{Name: "lock-dir", Value: defaultLockDir, EnvVars: envVar("lock-dir"),
		Usage: "`DIR` of the per-destination lock files, shared with run"})
	return &cli.Command{
		Name:         "prune",
		Usage:        "thin the snapshots of SRC and DST by --keep-source and --keep-dest, replicating nothing",
		ArgsUsage:    "SRC DST",
		Flags:        flags,
		OnUsageError: onUsageError,
		Action:       pruneAction,
	}
}

func pruneAction(c *cli.Context) error {
	j, err := parseJob(c, c.App.ErrWriter)
	if err != nil {
		return err
	}
	r, err := parseRetention(c)
	if err != nil {
		return err
	}
	if !r.prune.Retention.Enabled() && !r.prune.Hold {
		return usageErrorf("prune needs --keep-source, --keep-dest or --hold")
	}
	lock, err := lockDestination(c.String("lock-dir"), j.dst)
	if err != nil {
		return lockFailure(err)
	}
	defer lock.Release()

	ctx, stop := signalContext(c.Context)
	defer stop()
	src, dst := retentionEndpoints(j, c.Bool("recursive"), r)
	defer closeEndpoints(j, src, dst)

	rep, err := replication.Prune(ctx, j.cfg, src, dst, r.prune)
	if err != nil && rep == nil {
		if cause := context.Cause(ctx); cause != nil {
			return &exitError{code: exitCode(cause), err: fmt.Errorf("prune: %w", cause)}
		}
		return &exitError{code: exitPlanning, err: fmt.Errorf("prune: %w", err)}
	}
	if j.json {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return &exitError{code: exitFailed, err: err}
		}
	} else {
		rep.WriteText(c.App.Writer)
	}
	if err != nil {
		return &exitError{code: exitCode(context.Cause(ctx)), err: fmt.Errorf("prune: %w", err)}
	}
	if rep.HasProblem() {
		return cancelledOr(ctx, &exitError{code: exitFailed})
	}
	return cancelledOr(ctx, nil)
}
