package replication

import (
	"regexp"
	"time"

	"github.com/zrep/zrep/pdu"
)

// Retention is what pruning keeps on each side, and which snapshots it
// may consider at all.
type Retention struct {
	// Source and Dest are the policies of each side; nil prunes nothing
	// on that side.
	Source, Dest *RetentionPolicy
	// Match selects the snapshots, by name after '@', that pruning may
	// destroy; nil means none. Config.Snapshots narrows it further.
	Match *regexp.Regexp
	// Location is the time zone of the policies' periods; nil is time.Local.
	Location *time.Location
}

// Enabled reports whether pruning destroys anything on either side.
func (r *Retention) Enabled() bool { return r != nil && (r.Source != nil || r.Dest != nil) }

// PruneInput is one filesystem pair as pruning sees it.
type PruneInput struct {
	// Source and Dest are the two sides' listings; Dest is nil when the
	// destination does not exist.
	Source, Dest *pdu.Filesystem
	// Failed says the filesystem's replication failed in this run.
	Failed bool
	// Snapshots is Config.Snapshots: only the snapshots it selects take part.
	Snapshots *regexp.Regexp
}

// PruneDecision is what pruning does to one filesystem pair.
type PruneDecision struct {
	// Source and Dest are the snapshots to destroy on each side, oldest first.
	Source, Dest []*pdu.FilesystemVersion
	// HeldSource and HeldDest are snapshots the policy would destroy but
	// that carry a user hold: they are left alone and reported.
	HeldSource, HeldDest []*pdu.FilesystemVersion
	// Reason says why nothing may be destroyed, when that is so.
	Reason string
}

// DecidePrune decides which snapshots of one filesystem pair to destroy.
// It is pure: the listings, the policies and the selection in, the
// snapshots to destroy out. Whatever the policies say, it never destroys
//   - anything when the replication of the filesystem failed in this run,
//     when the two sides share no snapshot, or on a placeholder;
//   - the newest snapshot both sides share (the incremental base);
//   - a source snapshot newer than that one (not replicated yet), or a
//     destination snapshot newer than it (a divergence for --rollback to
//     decide);
//   - a snapshot Match or Snapshots does not select (another tool's, or
//     one made by hand), and a bookmark;
//   - a snapshot with a user hold (reported in Held*).
//
// Every selected snapshot counts in the policy, destroyable or not, so a
// protected snapshot fills a period as it would in a plain `forget`.
func DecidePrune(ret *Retention, in PruneInput) PruneDecision {
	var d PruneDecision
	switch {
	case !ret.Enabled():
		return d
	case in.Failed:
		d.Reason = "replication failed in this run"
		return d
	case in.Source == nil || in.Dest == nil:
		d.Reason = "nothing replicated yet"
		return d
	}
	base := newestCommon(in.Source.Versions, in.Dest.Versions)
	if base == nil {
		d.Reason = "the two sides share no snapshot"
		return d
	}
	candidate := func(v *pdu.FilesystemVersion) bool {
		return v.Type == pdu.Snapshot && ret.Match != nil && ret.Match.MatchString(v.Name) &&
			(in.Snapshots == nil || in.Snapshots.MatchString(v.Name))
	}
	side := func(fs *pdu.Filesystem, policy *RetentionPolicy) (destroy, held []*pdu.FilesystemVersion) {
		if policy == nil || fs.Placeholder {
			return nil, nil
		}
		var dated []DatedSnapshot
		for _, v := range fs.Versions {
			if candidate(v) {
				dated = append(dated, DatedSnapshot{Snapshot: v, Time: SnapshotTime(v, "")})
			}
		}
		keep := policy.Keep(dated, ret.Location)
		for i, ds := range dated {
			v := ds.Snapshot
			switch {
			case keep[i], v.Guid == base.Guid, v.CreateTXG > baseTXG(fs, base):
			case v.UserRefs > 0:
				held = append(held, v)
			default:
				destroy = append(destroy, v)
			}
		}
		return SortVersions(destroy), SortVersions(held)
	}
	d.Source, d.HeldSource = side(in.Source, ret.Source)
	d.Dest, d.HeldDest = side(in.Dest, ret.Dest)
	return d
}

// newestCommon is the newest source snapshot whose guid the destination
// has as a snapshot.
func newestCommon(src, dst []*pdu.FilesystemVersion) *pdu.FilesystemVersion {
	have := map[uint64]bool{}
	for _, v := range dst {
		if v.Type == pdu.Snapshot {
			have[v.Guid] = true
		}
	}
	var best *pdu.FilesystemVersion
	for _, v := range src {
		if v.Type == pdu.Snapshot && have[v.Guid] && (best == nil || v.CreateTXG > best.CreateTXG) {
			best = v
		}
	}
	return best
}

// baseTXG is the createtxg of base on fs (each pool has its own txgs).
func baseTXG(fs *pdu.Filesystem, base *pdu.FilesystemVersion) uint64 {
	for _, v := range fs.Versions {
		if v.Type == pdu.Snapshot && v.Guid == base.Guid {
			return v.CreateTXG
		}
	}
	return 0
}
