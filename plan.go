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
		Flags:        commonFlags(),
		OnUsageError: onUsageError,
		Action:       planAction,
	}
}

func planAction(c *cli.Context) error {
	j, err := parseJob(c, c.App.ErrWriter)
	if err != nil {
		return err
	}
	ctx, stop := signalContext(c.Context)
	defer stop()

	src, dst := j.endpoints(c.Bool("recursive"))
	defer closeEndpoints(j, src, dst)
	logCapabilities(ctx, j, src, dst)

	plan, err := replication.Plan(ctx, j.cfg, src, dst)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return &exitError{code: exitCode(cause), err: fmt.Errorf("plan: %w", cause)}
		}
		return &exitError{code: exitPlanning, err: fmt.Errorf("planning failed: %w", err)}
	}
	plan.Link = j.link.describe(j.src, j.dst)
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

// logCapabilities logs what each side's zfs offers, at debug level.
func logCapabilities(ctx context.Context, j *job, sides ...*endpoints.Endpoint) {
	if !j.logger.Enabled(ctx, -4) {
		return
	}
	for _, e := range sides {
		caps, err := e.Capabilities(ctx)
		if err != nil {
			j.logger.Debug("capability probe failed", "endpoint", e.Side().String(), "err", err)
			continue
		}
		j.logger.Debug("capabilities", "endpoint", e.Side().String(), "zfs", caps.String())
	}
}

// closeEndpoints ends each side's ssh connection, logging failures.
func closeEndpoints(j *job, sides ...*endpoints.Endpoint) {
	for _, e := range sides {
		if err := e.Close(); err != nil && !errors.Is(err, context.Canceled) {
			j.logger.Warn("closing endpoint", "endpoint", e.Side().String(), "err", err)
		}
	}
}
