package replication

import (
	"fmt"
	"strings"
	"time"
)

// nextFilesystem picks the filesystem to work on next: a ready one in
// planned order (parents before children), else the one whose retry wait
// ended first. It skips active filesystems, those whose destination's
// parent is still to be created by an ancestor's first receive, and clones
// whose origin snapshot is still to be received. It returns nil when
// nothing can run now. r.mu must be held.
func (r *Replication) nextFilesystem(now time.Time) *fsReplication {
	var retry *fsReplication
	for _, f := range r.filesystems {
		if f.active || f.done() || r.waitsForAncestor(f) || r.waitsForOrigin(f) {
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
		// waitsForOrigin first: it may give f up.
		if !r.waitsForOrigin(f) && f.state == FilesystemRetryWait && !f.active && !r.waitsForAncestor(f) && (!ok || f.retryAt.Before(at)) {
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

// waitsForOrigin reports whether f is a clone whose origin snapshot is still
// to be received by its origin's filesystem. When that filesystem has
// given up before receiving it, f is given up too: it would have to be
// sent in full, which needs a new plan. r.mu must be held.
func (r *Replication) waitsForOrigin(f *fsReplication) bool {
	dep, o := f.pf.origin, f.origin
	if dep == nil || !dep.wait || o == nil || f.done() {
		return false
	}
	for _, s := range o.steps {
		if s.to.Guid == dep.guid && s.state == StepCompleted {
			return false
		}
	}
	if !o.done() {
		return true
	}
	err := fmt.Errorf("%s: not sent: it is received as a clone of %s, which did not reach the destination because %s failed; run again once %s replicates (the clone is then sent in full if its origin still cannot be sent)",
		f.pf.src, *fromName(f.steps[0].from, f.steps[0].fromFS), o.pf.src, o.pf.src)
	f.state, f.problem = FilesystemPermanentError, err
	f.steps[0].state = StepPermanentError
	r.completed = append(r.completed, f)
	return false
}
