package main

import "github.com/zrep/zrep/replication"

// retention is the snapshotting and pruning of a job.
type retention struct {
	snapshot bool
	prefix   string
	prune    replication.PruneOptions
}

// listsHolds says whether the sides must list user holds.
func (r *retention) listsHolds() bool { return r.prune.Retention.Enabled() || r.prune.Hold }
