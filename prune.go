package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/zrep/zrep/replication"
)

// parsePruneOptions reads prune's command line into the job whose
// snapshots it thins. Every error it returns is a usage error.
func parsePruneOptions(c *cli.Context) (*job, error) {
	j, err := parseJob(c)
	if err != nil {
		return nil, err
	}
	if !j.ret.listsHolds() {
		return nil, usageErrorf("prune needs --keep-source, --keep-dest or --hold")
	}
	j.lockDir = c.String("lock-dir")
	return j, nil
}

func pruneAction(c *cli.Context) error {
	j, err := parsePruneOptions(c)
	if err != nil {
		return err
	}
	lock, err := lockDestination(j.lockDir, j.dst)
	if err != nil {
		return lockFailure(err)
	}
	defer lock.Release()

	ctx, stop := signalContext(c.Context)
	defer stop()
	src, dst := j.openSides()
	defer j.closeSides(src, dst)
	w := j.work()
	w.PruneOnly = true
	if err := j.checkDelegation(ctx, src, dst, w); err != nil {
		return err
	}

	rep, err := replication.Prune(ctx, j.cfg, src, dst, j.ret.prune)
	if err != nil && rep == nil {
		return cancelledAs(ctx, "prune", exitPlanning, fmt.Errorf("prune: %w", err))
	}
	if j.out.json {
		if err := writeJSON(j.out.stdout, rep); err != nil {
			return &exitError{code: exitFailed, err: err}
		}
	} else {
		rep.WriteText(j.out.stdout)
	}
	if err != nil {
		return &exitError{code: exitCode(context.Cause(ctx)), err: fmt.Errorf("prune: %w", err)}
	}
	if rep.HasProblem() {
		return cancelledOr(ctx, &exitError{code: exitFailed})
	}
	return cancelledOr(ctx, nil)
}
