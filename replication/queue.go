package replication

import (
	"strings"
	"time"
)

// nextFilesystem picks the filesystem to work on next: a ready one in
// planned order (parents before children), else the one whose retry wait
// ended first. It skips active filesystems and those whose destination's
// parent is still to be created by an ancestor's first receive. It returns
// nil when nothing can run now. r.mu must be held.
func (r *Replication) nextFilesystem(now time.Time) *fsReplication {
	var retry *fsReplication
	for _, f := range r.filesystems {
		if f.active || f.done() || r.waitsForAncestor(f) {
			continue
		}
		switch f.state {
		case FilesystemReady:
			return f
		case FilesystemRetryWait:
			if !f.retryAt.After(now) && (retry == nil || f.retryAt.Before(retry.retryAt)) {
				retry = f
			}
		}
	}
	return retry
}

// earliestRetry is the earliest end of a retry wait. Filesystems waiting
// for an ancestor do not count: the ancestor's progress wakes them. r.mu
// must be held.
func (r *Replication) earliestRetry() (at time.Time, ok bool) {
	for _, f := range r.filesystems {
		if f.state == FilesystemRetryWait && !f.active && !r.waitsForAncestor(f) && (!ok || f.retryAt.Before(at)) {
			at, ok = f.retryAt, true
		}
	}
	return at, ok
}

// waitsForAncestor reports whether an unfinished filesystem of this run will
// create one of f's destination's ancestors with its first receive: f must
// not create a placeholder there first. r.mu must be held.
func (r *Replication) waitsForAncestor(f *fsReplication) bool {
	for _, a := range r.filesystems {
		if a == f || a.done() || !strings.HasPrefix(f.pf.dst, a.pf.dst+"/") || len(a.steps) == 0 {
			continue
		}
		if !r.destinationExists(a.pf.dst) {
			return true
		}
	}
	return false
}

func (r *Replication) destinationExists(ds string) bool {
	r.destMu.Lock()
	defer r.destMu.Unlock()
	return r.destinations[ds].exists
}
