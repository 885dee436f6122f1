package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/zrep/zrep/endpoints"
	"github.com/zrep/zrep/replication"
)

func planCommand() *cli.Command {
	return &cli.Command{
		Name:         "plan",
		Usage:        "show what run would send; changes nothing",
		ArgsUsage:    "SRC DST",
		Flags:        append(append(append(commonFlags(), retentionFlags(true)...), snapshotHookFlags()...), postRunFlag()),
		OnUsageError: onUsageError,
		Action:       planAction,
	}
}

func planAction(c *cli.Context) error {
	j, err := parseJob(c, c.App.ErrWriter)
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
	ctx, stop := signalContext(c.Context)
	defer stop()

	src, dst := retentionEndpoints(j, c.Bool("recursive"), ret)
	defer closeEndpoints(j, src, dst)

	plan, err := planWithRetention(ctx, j, ret, c.Bool("recursive"), src, dst)
	if ee := (*exitError)(nil); errors.As(err, &ee) {
		return err
	}
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return &exitError{code: exitCode(cause), err: fmt.Errorf("plan: %w", cause)}
		}
		return &exitError{code: exitPlanning, err: fmt.Errorf("planning failed: %w", err)}
	}
	plan.Link = j.link.describe(j.src, j.dst) + rawCompressionNote(j, plan)
	plan.Hooks = describeHooks(hooks, ret.snapshot, c.String("post-run"))
	if j.json {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		if err := enc.Encode(plan); err != nil {
			return &exitError{code: exitFailed, err: err}
		}
	} else {
		plan.WriteText(c.App.Writer)
	}
	if plan.HasProblem() {
		return &exitError{code: exitFailed}
	}
	return nil
}

// closeEndpoints ends each side's ssh connection, logging failures.
func closeEndpoints(j *job, sides ...*endpoints.Endpoint) {
	for _, e := range sides {
		if err := e.Close(); err != nil && !errors.Is(err, context.Canceled) {
			j.logger.Warn("closing endpoint", "endpoint", e.Side().String(), "err", err)
		}
	}
}

// rawCompressionNote says, where the link compresses and a filesystem goes
// raw, that compressing its encrypted stream only costs CPU.
func rawCompressionNote(j *job, plan *replication.PlanReport) string {
	if j.link.codec == endpoints.CodecNone || j.src.Local() && j.dst.Local() {
		return ""
	}
	for _, f := range plan.Filesystems {
		if f.Send == replication.SendRaw {
			return "; raw streams are encrypted and do not compress: compressing them only costs CPU (--compress none saves it)"
		}
	}
	return ""
}
