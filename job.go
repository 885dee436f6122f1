package main

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/zrep/zrep/endpoints"
	"github.com/zrep/zrep/replication"
)

// job is one job between a source and a destination, read once from the
// command line of plan, run or prune (parseJob and the command's own
// options) and checked before anything is contacted. A command leaves at
// zero what it has no flag for.
type job struct {
	src, dst       endpoints.Side
	recursive      bool
	cfg            replication.Config
	ssh            endpoints.SSHOptions
	sudo           bool // zfs through sudo -n on remote sides
	commandTimeout time.Duration
	link           link
	out            output
	ret            *retention

	hooks       snapshotHooks
	postRun     string        // --post-run
	lockDir     string        // --lock-dir
	metricsFile string        // --metrics-file
	timeout     time.Duration // --timeout, 0 for none
	progress    bool          // draw a progress bar on stderr
}

// laterSnapshotNames bounds how many seconds run --snapshot moves its
// set's name on when the name is taken: by another run from the same
// source (another destination's crontab line) in the same second.
const laterSnapshotNames = 60

// snapshotConfig is the snapshot set of a job on its source: run --snapshot
// (and plan, which shows it) takes the next free name rather than fail.
func (j *job) snapshotConfig() replication.SnapshotConfig {
	return replication.SnapshotConfig{Recursive: j.recursive, Exclude: j.cfg.Exclude, Prefix: j.ret.prefix, Now: time.Now(), LaterNames: laterSnapshotNames}
}

// run runs the job end to end: it takes the destination's lock, the
// snapshot set between its hooks, replicates, prunes, prints the Report,
// writes the metrics file and runs the post-run hook. Its error carries
// the exit status (SPEC section 5).
func (j *job) run(parent context.Context) (err error) {
	// From here on, every outcome is written to the metrics file and told
	// to the post-run hook, after the Report.
	start := time.Now()
	var rep *replication.Report
	if j.postRun != "" {
		defer func() { runPostRun(parent, j.out.logger, j.postRun, j.hooks.timeout, err, rep) }()
	}
	lock, err := lockDestination(j.lockDir, j.dst)
	if err != nil {
		return j.finishMetrics(start, nil, lockFailure(err))
	}
	defer lock.Release()

	ctx, stop := signalContext(parent)
	defer stop()
	if j.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, j.timeout, errTimeout)
		defer cancel()
	}

	src, dst := j.openSides()
	defer j.closeSides(src, dst)
	// On a signal or the timeout, end the shared ssh connections at once: a
	// remote command that cannot notice its ssh client is gone (a stalled
	// sender) keeps the client's output open through the connection, and
	// zrep would wait for it.
	defer context.AfterFunc(ctx, func() { j.closeSides(src, dst) })()
	if err := checkLink(ctx, src, dst); err != nil {
		return j.finishMetrics(start, nil, cancelledOr(ctx, &exitError{code: exitFailed, err: err}))
	}
	if err := j.checkDelegation(ctx, src, dst, j.work()); err != nil {
		return j.finishMetrics(start, nil, err)
	}
	set, hookErr, err := j.takeSnapshot(ctx, src)
	if err != nil {
		return j.finishMetrics(start, nil, err)
	}

	r := replication.NewReplication(j.cfg)
	var bar *progress
	if j.progress {
		bar = startProgress(j.out.stderr, r)
	}
	r.Drive(ctx, src, dst)
	if bar != nil {
		bar.Stop()
	}
	r.Prune(ctx, src, dst, j.ret.prune)

	rep = r.Report()
	j.releaseSnapshot(ctx, set, rep, src)
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
	outcome := j.finishMetrics(start, rep, result)
	// With -q a successful run prints nothing (cron mails any output), a
	// failed one prints the Report. --json asks for the Report explicitly
	// and always gets it.
	if j.out.quiet && !j.out.json && outcome == nil {
		return nil
	}
	if j.out.json {
		if err := writeJSON(j.out.stdout, rep); err != nil && !errors.Is(err, syscall.EPIPE) {
			// A reader that went away (| head) loses the Report, and the
			// exit status stays the run's.
			return &exitError{code: exitFailed, err: err}
		}
	} else {
		rep.WriteText(j.out.stdout)
	}
	return outcome
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

// finishMetrics writes the metrics file, if the job has one, for a run
// that ends with outcome, and returns the outcome. rep is nil for a run
// that ended before replicating (its lock, the link check, its snapshot):
// the file then has the run's exit code and times, no run state but
// ContextDone for an interrupted one, and keeps the last success times. A
// file that cannot be written makes a successful run exit 1.
func (j *job) finishMetrics(start time.Time, rep *replication.Report, outcome error) error {
	if j.metricsFile == "" {
		return outcome
	}
	code := exitCode(outcome)
	if rep == nil {
		rep = &replication.Report{}
		if code == exitInterrupted || code == exitTimeout {
			rep.Status = replication.ContextDone.String()
		}
	}
	m := runMetrics{source: j.src.String(), destination: j.dst.String(), start: start, end: time.Now(), exitCode: code, report: rep}
	if err := writeMetricsFile(j.metricsFile, m); err != nil {
		j.out.logger.Error("cannot write the metrics file", "err", err)
		if outcome == nil {
			return &exitError{code: exitFailed, err: err}
		}
	}
	return outcome
}

// takeSnapshot takes run --snapshot's set before planning, between the
// snapshot hooks; its error ends the run (exit 1) before anything is
// sent. A post-snapshot hook that failed after the set was taken does not
// stop the run: it is returned as postErr, for the exit status. With
// --hold the set is held until the run has replicated it
// (releaseSnapshot).
func (j *job) takeSnapshot(ctx context.Context, src *endpoints.Endpoint) (set *replication.SnapshotSet, postErr error, err error) {
	if !j.ret.snapshot {
		return nil, nil, nil
	}
	log := j.out.logger
	cfg := j.snapshotConfig()
	set, err = takeSnapshotWithHooks(ctx, log, src, cfg, j.hooks)
	var he *hookError
	if set != nil && errors.As(err, &he) {
		log.Error("post-snapshot hook failed; replicating the snapshot set anyway", "err", err)
		postErr, err = err, nil
	}
	if err != nil {
		return nil, nil, cancelledAs(ctx, "snapshot", exitFailed, fmt.Errorf("snapshot of %s failed, nothing replicated: %w", j.src, err))
	}
	if first := replication.SnapshotName(cfg.Prefix, cfg.Now); set.Name != first {
		log.Info("the snapshot name of this second is taken (by another run from this source?); took the set under the next free name",
			"taken", first, "snapshot", set.Name)
	}
	logSnapshotSet(log, set)
	if j.ret.prune.Hold {
		// Until this run has replicated the set, the other destinations'
		// runs from this source must not prune it.
		if err := replication.HoldSet(ctx, src, set, replication.HoldTag(j.cfg.CursorID)); err != nil {
			log.Warn("cannot hold the new snapshot set until it is replicated; another destination's run may prune it",
				"snapshot", set.Name, "err", err)
		}
	}
	return set, postErr, nil
}

// releaseSnapshot takes --hold's hold off the run's set where it was not
// replicated.
func (j *job) releaseSnapshot(ctx context.Context, set *replication.SnapshotSet, rep *replication.Report, src *endpoints.Endpoint) {
	if set == nil || !j.ret.prune.Hold || ctx.Err() != nil {
		return
	}
	if err := replication.ReleaseUnreplicatedSet(ctx, src, set, replication.HoldTag(j.cfg.CursorID), rep); err != nil {
		j.out.logger.Warn("cannot release the hold on the snapshot set where it was not replicated; release it by hand (zfs release) before destroying it",
			"snapshot", set.Name, "tag", replication.HoldTag(j.cfg.CursorID), "err", err)
	}
}

// plan is the job's planning, changing nothing: with --snapshot and
// --keep-*, the would-be snapshot and what would be pruned.
func (j *job) plan(ctx context.Context, src, dst *endpoints.Endpoint) (*replication.PlanReport, error) {
	if !j.ret.snapshot && !j.ret.prune.Retention.Enabled() {
		return replication.Plan(ctx, j.cfg, src, dst)
	}
	var set *replication.SnapshotSet
	if j.ret.snapshot {
		var err error
		set, err = replication.PlanSnapshot(ctx, src, j.snapshotConfig())
		var nc *replication.NameCollisionError
		if errors.As(err, &nc) {
			return nil, &exitError{code: exitFailed, err: err}
		}
		if err != nil {
			return nil, err
		}
	}
	return replication.PlanWithRetention(ctx, j.cfg, src, dst, set, j.ret.prune)
}
