package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/zrep/zrep/endpoints"
	"github.com/zrep/zrep/pdu"
	"github.com/zrep/zrep/replication"
)

// retentionFlags are the flags of snapshotting and pruning (SPEC section
// 8) on run, plan (withSnapshot) and prune.
func retentionFlags(withSnapshot bool) []cli.Flag {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "prefix", Value: replication.DefaultSnapshotPrefix, EnvVars: envVar("prefix"),
			Usage: "`PREFIX` of the snapshots zrep takes (<prefix>YYYYMMDDTHHMMSSZ), and of those it prunes by default"},
		&cli.StringFlag{Name: "keep-source", EnvVars: envVar("keep-source"),
			Usage: "prune the source to `POLICY`, e.g. last=4,hourly=24,daily=7,weekly=4,monthly=12,yearly=2,within=2d"},
		&cli.StringFlag{Name: "keep-dest", EnvVars: envVar("keep-dest"),
			Usage: "prune the destination to `POLICY` (as --keep-source)"},
		&cli.StringFlag{Name: "prune-match", EnvVars: envVar("prune-match"),
			Usage: "prune only snapshots whose name after @ matches `REGEX` (default: starts with the prefix)"},
		&cli.BoolFlag{Name: "hold", EnvVars: envVar("hold"),
			Usage: "keep a user hold zrep_<id> on the newest replicated snapshot of each source filesystem"},
	}
	if withSnapshot {
		flags = append(flags, &cli.BoolFlag{Name: "snapshot", EnvVars: envVar("snapshot"),
			Usage: "take a snapshot set on the source first (as zrep snapshot)"})
	}
	return flags
}

// retention is the parsed snapshotting and pruning of a command line.
type retention struct {
	snapshot bool
	prefix   string
	prune    replication.PruneOptions
}

// parseRetention checks the flags of retentionFlags. Every error it
// returns is a usage error.
func parseRetention(c *cli.Context) (*retention, error) {
	r := &retention{snapshot: c.Bool("snapshot"), prefix: c.String("prefix")}
	if err := replication.CheckSnapshotPrefix(r.prefix); err != nil {
		return nil, usageErrorf("--prefix: %v", err)
	}
	ret := &replication.Retention{Location: time.Local}
	for _, p := range []struct {
		flag string
		dst  **replication.RetentionPolicy
	}{{"keep-source", &ret.Source}, {"keep-dest", &ret.Dest}} {
		if !c.IsSet(p.flag) {
			continue
		}
		policy, err := replication.ParseRetentionPolicy(c.String(p.flag))
		if err != nil {
			return nil, usageErrorf("--%s: %v", p.flag, err)
		}
		*p.dst = policy
	}
	match := "^" + regexp.QuoteMeta(r.prefix)
	if c.IsSet("prune-match") {
		match = c.String("prune-match")
	}
	re, err := regexp.Compile(match)
	if err != nil {
		return nil, usageErrorf("--prune-match %q is not a valid regular expression: %v", match, err)
	}
	ret.Match = re
	r.prune = replication.PruneOptions{Retention: ret, Hold: c.Bool("hold")}
	return r, nil
}

// listsHolds says whether the sides must list user holds.
func (r *retention) listsHolds() bool { return r.prune.Retention.Enabled() || r.prune.Hold }

// retentionEndpoints opens the two sides as job.endpoints does, listing
// user holds when pruning needs them.
func retentionEndpoints(j *job, recursive bool, r *retention) (src, dst *endpoints.Endpoint) {
	return j.openEndpoints(recursive, r.listsHolds())
}

// laterSnapshotNames bounds how many seconds run --snapshot moves its
// set's name on when the name is taken: by another run from the same
// source (another destination's crontab line) in the same second.
const laterSnapshotNames = 60

// snapshotConfig is the snapshot set of a job on its source: run --snapshot
// (and plan, which shows it) takes the next free name rather than fail.
func (r *retention) snapshotConfig(j *job, recursive bool) replication.SnapshotConfig {
	return replication.SnapshotConfig{Recursive: recursive, Exclude: j.cfg.Exclude, Prefix: r.prefix, Now: time.Now(), LaterNames: laterSnapshotNames}
}

// takeRunSnapshot takes run --snapshot's set before planning, between
// the snapshot hooks; its error ends the run (exit 1) before anything is
// sent. A post-snapshot hook that failed after the set was taken does not
// stop the run: it is returned as postErr, for the exit status. With
// --hold the set is held until the run has replicated it
// (releaseRunSnapshot).
func takeRunSnapshot(ctx context.Context, j *job, r *retention, h snapshotHooks, recursive bool, src *endpoints.Endpoint) (set *replication.SnapshotSet, postErr error, err error) {
	if !r.snapshot {
		return nil, nil, nil
	}
	cfg := r.snapshotConfig(j, recursive)
	set, err = takeSnapshotWithHooks(ctx, j.logger, src, cfg, h)
	var he *hookError
	if set != nil && errors.As(err, &he) {
		j.logger.Error("post-snapshot hook failed; replicating the snapshot set anyway", "err", err)
		postErr, err = err, nil
	}
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			return nil, nil, &exitError{code: exitCode(cause), err: fmt.Errorf("snapshot: %w", cause)}
		}
		return nil, nil, &exitError{code: exitFailed, err: fmt.Errorf("snapshot of %s failed, nothing replicated: %w", j.src, err)}
	}
	if first := replication.SnapshotName(cfg.Prefix, cfg.Now); set.Name != first {
		j.logger.Info("the snapshot name of this second is taken (by another run from this source?); took the set under the next free name",
			"taken", first, "snapshot", set.Name)
	}
	logSnapshotSet(j.logger, set)
	if r.prune.Hold {
		// Until this run has replicated the set, the other destinations'
		// runs from this source must not prune it.
		if err := replication.HoldSet(ctx, src, set, replication.HoldTag(j.cfg.CursorID)); err != nil {
			j.logger.Warn("cannot hold the new snapshot set until it is replicated; another destination's run may prune it",
				"snapshot", set.Name, "err", err)
		}
	}
	return set, postErr, nil
}

// releaseRunSnapshot takes --hold's hold off the run's set where it was
// not replicated.
func releaseRunSnapshot(ctx context.Context, j *job, r *retention, set *replication.SnapshotSet, rep *replication.Report, src *endpoints.Endpoint) {
	if set == nil || !r.prune.Hold || ctx.Err() != nil {
		return
	}
	if err := replication.ReleaseUnreplicatedSet(ctx, src, set, replication.HoldTag(j.cfg.CursorID), rep); err != nil {
		j.logger.Warn("cannot release the hold on the snapshot set where it was not replicated; release it by hand (zfs release) before destroying it",
			"snapshot", set.Name, "tag", replication.HoldTag(j.cfg.CursorID), "err", err)
	}
}

func logSnapshotSet(log *slog.Logger, set *replication.SnapshotSet) {
	if set.Atomic {
		log.Info("snapshot set taken", "snapshot", set.Name, "filesystems", len(set.Filesystems))
	} else {
		log.Warn("snapshot set taken one filesystem at a time (this zfs takes one name per command): not atomic",
			"snapshot", set.Name, "filesystems", len(set.Filesystems))
	}
}

// planWithRetention is plan's planning with --snapshot and --keep-*: the
// would-be snapshot and what would be pruned, and nothing changed.
func planWithRetention(ctx context.Context, j *job, r *retention, recursive bool, src, dst *endpoints.Endpoint) (*replication.PlanReport, error) {
	if !r.snapshot && !r.prune.Retention.Enabled() {
		return replication.Plan(ctx, j.cfg, src, dst)
	}
	var set *replication.SnapshotSet
	if r.snapshot {
		var err error
		set, err = replication.PlanSnapshot(ctx, src, r.snapshotConfig(j, recursive))
		var nc *replication.NameCollisionError
		if errors.As(err, &nc) {
			return nil, &exitError{code: exitFailed, err: err}
		}
		if err != nil {
			return nil, err
		}
	}
	return replication.PlanWithRetention(ctx, j.cfg, src, dst, set, r.prune)
}

func snapshotCommand() *cli.Command {
	return &cli.Command{
		Name:      "snapshot",
		Usage:     "take one snapshot set <prefix>YYYYMMDDTHHMMSSZ over DATASET (and with -r its descendants)",
		ArgsUsage: "DATASET",
		Flags: append(append(pickFlags(commonFlags(), "recursive", "exclude", "ssh-port", "ssh-identity", "ssh-option", "json", "log-level", "quiet", "command-timeout"),
			&cli.StringFlag{Name: "prefix", Value: replication.DefaultSnapshotPrefix, EnvVars: envVar("prefix"),
				Usage: "`PREFIX` of the snapshot name"}), snapshotHookFlags()...),
		OnUsageError: onUsageError,
		Action:       snapshotAction,
	}
}

// snapshotResult is `zrep snapshot --json`'s output.
type snapshotResult struct {
	Snapshot    string   `json:"snapshot"`
	Filesystems []string `json:"filesystems"`
	Atomic      bool     `json:"atomic"`
}

func snapshotAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageErrorf("snapshot needs one argument, DATASET (got %d): zrep snapshot [flags] DATASET", c.NArg())
	}
	side, err := endpoints.ParseSide(c.Args().First())
	if err != nil {
		return usageErrorf("DATASET: %v", err)
	}
	prefix := c.String("prefix")
	if err := replication.CheckSnapshotPrefix(prefix); err != nil {
		return usageErrorf("--prefix: %v", err)
	}
	cfg := replication.SnapshotConfig{Recursive: c.Bool("recursive"), Prefix: prefix, Now: time.Now()}
	for _, expr := range repeated(c, "exclude") {
		re, err := regexp.Compile(expr)
		if err != nil {
			return usageErrorf("--exclude %q is not a valid regular expression: %v", expr, err)
		}
		cfg.Exclude = append(cfg.Exclude, re)
	}
	hooks, err := parseSnapshotHooks(c)
	if err != nil {
		return err
	}
	ssh, err := parseSSHOptions(c)
	if err != nil {
		return err
	}
	timeout, err := commandTimeout(c)
	if err != nil {
		return err
	}
	level, err := parseLevel(c.String("log-level"))
	if err != nil {
		return err
	}
	if c.Bool("quiet") {
		level = slog.LevelError
	}
	log := slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level}))

	ctx, stop := signalContext(c.Context)
	defer stop()
	e := endpoints.New(side, endpoints.Options{Role: "source", Recursive: cfg.Recursive, Logger: log, SSH: ssh, CommandTimeout: timeout})
	defer e.Close()
	set, err := takeSnapshotWithHooks(ctx, log, e, cfg, hooks)
	var postErr *hookError
	if set != nil && errors.As(err, &postErr) {
		err = nil
	}
	if err != nil {
		var he *hookError
		if errors.As(err, &he) {
			return &exitError{code: exitFailed, err: err}
		}
		if cause := context.Cause(ctx); cause != nil {
			return &exitError{code: exitCode(cause), err: fmt.Errorf("snapshot: %w", cause)}
		}
		code := exitFailed
		if pdu.IsRetryable(err) {
			// Contacting the side failed: nothing was taken.
			code = exitPlanning
		}
		return &exitError{code: code, err: err}
	}
	logSnapshotSet(log, set)
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		err = enc.Encode(snapshotResult{Snapshot: set.Name, Filesystems: set.Filesystems, Atomic: set.Atomic})
	} else {
		_, err = fmt.Fprintln(c.App.Writer, set.Name)
	}
	if postErr != nil {
		return &exitError{code: exitFailed, err: fmt.Errorf("snapshot %s taken, but %w", set.Name, postErr)}
	}
	return err
}
