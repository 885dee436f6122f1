package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/zrep/zrep/endpoints"
	"github.com/zrep/zrep/replication"
)

// defaultHookTimeout bounds a hook unless --hook-timeout says otherwise.
const defaultHookTimeout = time.Minute

// snapshotHooks are the parsed hooks around a snapshot set.
type snapshotHooks struct {
	pre, post string
	timeout   time.Duration
}

// any says whether a hook is set.
func (h snapshotHooks) any() bool { return h.pre != "" || h.post != "" }

// hookError is a snapshot hook that failed: the run exits 1 naming it.
type hookError struct{ err error }

func (e *hookError) Error() string { return e.err.Error() }
func (e *hookError) Unwrap() error { return e.err }

// takeSnapshotWithHooks takes cfg's snapshot set on src between the
// hooks: the pre hook first (its failure means no snapshot), then the set,
// then the post hook whenever the pre hook ran, even after a failed
// snapshot, so an application frozen by the pre hook is always thawed.
// A failed post hook is returned as a *hookError beside the set.
func takeSnapshotWithHooks(ctx context.Context, log *slog.Logger, src *endpoints.Endpoint, cfg replication.SnapshotConfig, h snapshotHooks) (*replication.SnapshotSet, error) {
	dataset := src.Side().Dataset
	env := func(snapshot string) []string {
		return []string{"ZREP_SNAPSHOT=" + snapshot, "ZREP_DATASET=" + dataset}
	}
	// The post hook runs even when the run was interrupted: it thaws.
	post := func(snapshot string) error {
		if h.post == "" {
			return nil
		}
		return src.RunHook(context.WithoutCancel(ctx), endpoints.Hook{Name: "post-snapshot", Command: h.post, Timeout: h.timeout, Env: env(snapshot)})
	}
	planned := replication.SnapshotName(cfg.Prefix, cfg.Now)
	if h.pre != "" {
		err := src.RunHook(ctx, endpoints.Hook{Name: "pre-snapshot", Command: h.pre, Timeout: h.timeout, Env: env(planned)})
		if err != nil {
			// The pre hook may have frozen something before it failed.
			if perr := post(planned); perr != nil {
				log.Error("post-snapshot hook failed", "err", perr)
			}
			return nil, &hookError{fmt.Errorf("no snapshot taken: %w", err)}
		}
	}
	set, err := replication.TakeSnapshot(ctx, src, cfg)
	taken := planned
	if set != nil {
		taken = set.Name
	}
	perr := post(taken)
	if err != nil {
		if perr != nil {
			log.Error("post-snapshot hook failed", "err", perr)
		}
		return nil, err
	}
	if perr != nil {
		return set, &hookError{perr}
	}
	return set, nil
}

func logSnapshotSet(log *slog.Logger, set *replication.SnapshotSet) {
	if set.Atomic {
		log.Info("snapshot set taken", "snapshot", set.Name, "filesystems", len(set.Filesystems))
	} else {
		log.Warn("snapshot set taken one filesystem at a time (this zfs takes one name per command): not atomic",
			"snapshot", set.Name, "filesystems", len(set.Filesystems))
	}
}

// describeHooks says which hooks a run with these flags would run, for
// plan, which runs none.
func describeHooks(h snapshotHooks, snapshot bool, postRun string) []string {
	var out []string
	if snapshot && h.pre != "" {
		out = append(out, "pre-snapshot: "+h.pre)
	}
	if snapshot && h.post != "" {
		out = append(out, "post-snapshot: "+h.post)
	}
	if postRun != "" {
		out = append(out, "post-run: "+postRun)
	}
	return out
}

// runPostRun runs --post-run's command on this machine after the Report,
// with the run's exit status, status word and JSON Report; a run that
// ended before replicating (the lock, the link, the snapshot) gives an
// empty Report whose problem says why. Its failure is logged and changes
// nothing else.
func runPostRun(ctx context.Context, log *slog.Logger, command string, timeout time.Duration, outcome error, rep *replication.Report) {
	code := exitCode(outcome)
	if rep == nil {
		rep = &replication.Report{Completed: []*replication.FilesystemReport{}, Pending: []*replication.FilesystemReport{}}
		if code == exitInterrupted || code == exitTimeout {
			rep.Status = replication.ContextDone.String()
		}
		if outcome != nil {
			rep.Problem = outcome.Error()
		}
	}
	f, err := os.CreateTemp("", "zrep-report-*.json")
	if err != nil {
		log.Error("post-run hook not run: cannot write the Report for it", "err", err)
		return
	}
	defer os.Remove(f.Name())
	werr := writeJSON(f, rep)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		log.Error("post-run hook not run: cannot write the Report for it", "err", werr)
		return
	}
	status := ""
	if rep != nil {
		status = rep.Status
	}
	// The run is over: the hook gets its own bound even after a signal.
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	cmd := exec.CommandContext(hctx, "sh", "-c", command)
	cmd.Env = append(os.Environ(), "ZREP_EXIT="+strconv.Itoa(code), "ZREP_STATUS="+status, "ZREP_REPORT="+f.Name())
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	switch {
	case err == nil:
		log.Info("post-run hook ran", "command", command, "output", strings.TrimSpace(string(out)))
	case errors.Is(hctx.Err(), context.DeadlineExceeded):
		log.Error("post-run hook did not finish within --hook-timeout and was ended", "command", command, "timeout", timeout)
	default:
		log.Error("post-run hook failed", "command", command, "err", err, "output", strings.TrimSpace(string(out)))
	}
}
