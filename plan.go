package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/zrep/zrep/endpoints"
	"github.com/zrep/zrep/replication"
)

// parsePlanOptions reads plan's command line into the job it plans: the
// job run would do with the same flags. Every error it returns is a usage
// error.
func parsePlanOptions(c *cli.Context) (*job, error) {
	j, err := parseJob(c)
	if err != nil {
		return nil, err
	}
	if j.hooks, err = parseSnapshotHooks(c); err != nil {
		return nil, err
	}
	j.postRun = c.String("post-run")
	return j, nil
}

func planAction(c *cli.Context) error {
	j, err := parsePlanOptions(c)
	if err != nil {
		return err
	}
	ctx, stop := signalContext(c.Context)
	defer stop()

	src, dst := j.openSides()
	defer j.closeSides(src, dst)
	if err := j.checkDelegation(ctx, src, dst, j.work()); err != nil {
		return err
	}

	plan, err := j.plan(ctx, src, dst)
	if ee := (*exitError)(nil); errors.As(err, &ee) {
		return err
	}
	if err != nil {
		return cancelledAs(ctx, "plan", exitPlanning, fmt.Errorf("planning failed: %w", err))
	}
	plan.Link = j.link.describe(j.src, j.dst) + rawCompressionNote(j, plan)
	plan.Hooks = describeHooks(j.hooks, j.ret.snapshot, j.postRun)
	if j.out.json {
		if err := writeJSON(j.out.stdout, plan); err != nil {
			return &exitError{code: exitFailed, err: err}
		}
	} else {
		plan.WriteText(j.out.stdout)
	}
	if plan.HasProblem() {
		return &exitError{code: exitFailed}
	}
	return nil
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
