package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/zrep/zrep/pdu"
	"github.com/zrep/zrep/replication"
)

// snapshotOptions is snapshot's command line.
type snapshotOptions struct {
	oneSide
	cfg   replication.SnapshotConfig
	hooks snapshotHooks
}

// parseSnapshotOptions reads snapshot's command line. Every error it
// returns is a usage error.
func parseSnapshotOptions(c *cli.Context) (o snapshotOptions, err error) {
	if o.oneSide, err = parseOneSide(c); err != nil {
		return o, err
	}
	o.cfg = replication.SnapshotConfig{Recursive: o.recursive, Now: time.Now()}
	if o.cfg.Prefix, err = parsePrefix(c); err != nil {
		return o, err
	}
	if o.cfg.Exclude, err = parseExclude(c); err != nil {
		return o, err
	}
	o.hooks, err = parseSnapshotHooks(c)
	return o, err
}

// snapshotResult is `zrep snapshot --json`'s output.
type snapshotResult struct {
	Snapshot    string   `json:"snapshot"`
	Filesystems []string `json:"filesystems"`
	Atomic      bool     `json:"atomic"`
}

func snapshotAction(c *cli.Context) error {
	o, err := parseSnapshotOptions(c)
	if err != nil {
		return err
	}
	log := o.out.logger
	ctx, stop := signalContext(c.Context)
	defer stop()
	e := o.open("source")
	defer e.Close()
	set, err := takeSnapshotWithHooks(ctx, log, e, o.cfg, o.hooks)
	var postErr *hookError
	if set != nil && errors.As(err, &postErr) {
		err = nil
	}
	if err != nil {
		var he *hookError
		if errors.As(err, &he) {
			return &exitError{code: exitFailed, err: err}
		}
		code := exitFailed
		if pdu.IsRetryable(err) {
			// Contacting the side failed: nothing was taken.
			code = exitPlanning
		}
		return cancelledAs(ctx, "snapshot", code, err)
	}
	logSnapshotSet(log, set)
	if o.out.json {
		err = writeJSON(o.out.stdout, snapshotResult{Snapshot: set.Name, Filesystems: set.Filesystems, Atomic: set.Atomic})
	} else {
		_, err = fmt.Fprintln(o.out.stdout, set.Name)
	}
	if postErr != nil {
		return &exitError{code: exitFailed, err: fmt.Errorf("snapshot %s taken, but %w", set.Name, postErr)}
	}
	return err
}
