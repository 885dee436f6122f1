package replication

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zrep/zrep/pdu"
)

// Pruning, the part that decides (SPEC 8): which snapshots a retention
// policy keeps (RetentionPolicy.Keep) and which of one filesystem pair's
// snapshots may be destroyed (DecidePrune). Pure: listings and policies
// in, decisions out; pruneact.go carries them out, pruneplan.go shows
// them in a plan.

// RetentionPolicy says which snapshots to keep, with the semantics of
// restic's `forget`: a snapshot is kept if any rule keeps it.
type RetentionPolicy struct {
	// Last keeps the Last newest snapshots.
	Last int
	// Hourly, Daily, Weekly, Monthly and Yearly keep the newest snapshot
	// of each of that many most recent periods that have a snapshot.
	// Weeks are ISO weeks, starting on Monday.
	Hourly, Daily, Weekly, Monthly, Yearly int
	// Within keeps every snapshot taken less than Within before the newest.
	Within Within
}

// Within is a span of calendar time, as restic writes it: `1y2m3d4h`
// (years, months, days, hours; `w` for weeks is read as 7 days).
type Within struct {
	Years, Months, Days, Hours int
}

func (w Within) zero() bool { return w == Within{} }

// before is the start of the span that ends at t.
func (w Within) before(t time.Time) time.Time {
	return t.AddDate(-w.Years, -w.Months, -w.Days).Add(-time.Duration(w.Hours) * time.Hour)
}

func (w Within) String() string {
	var b strings.Builder
	for _, p := range []struct {
		n    int
		unit string
	}{{w.Years, "y"}, {w.Months, "m"}, {w.Days, "d"}, {w.Hours, "h"}} {
		if p.n != 0 {
			fmt.Fprintf(&b, "%d%s", p.n, p.unit)
		}
	}
	return b.String()
}

var withinPart = regexp.MustCompile(`^([0-9]+)([ymwdh])`)

// parseWithin reads restic's duration form: one or more NUMBER UNIT with
// units y (years), m (months), w (weeks), d (days), h (hours).
func parseWithin(s string) (Within, error) {
	var w Within
	if s == "" {
		return w, fmt.Errorf("empty duration")
	}
	for rest := s; rest != ""; {
		m := withinPart.FindStringSubmatch(rest)
		if m == nil {
			return w, fmt.Errorf("duration %q: want NUMBER UNIT pairs such as 2d12h, units y, m (months), w, d, h", s)
		}
		n, err := strconv.Atoi(m[1])
		if err != nil {
			return w, fmt.Errorf("duration %q: %w", s, err)
		}
		switch m[2] {
		case "y":
			w.Years += n
		case "m":
			w.Months += n
		case "w":
			w.Days += 7 * n
		case "d":
			w.Days += n
		case "h":
			w.Hours += n
		}
		rest = rest[len(m[0]):]
	}
	if w.zero() {
		return w, fmt.Errorf("duration %q keeps nothing", s)
	}
	return w, nil
}

// ParseRetentionPolicy reads a policy such as
// `last=4,hourly=24,daily=14,weekly=8,monthly=12,within=2d`. An empty
// policy, an unknown or repeated rule, or a policy that keeps nothing is
// an error.
func ParseRetentionPolicy(s string) (*RetentionPolicy, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("empty retention policy: give rules such as last=4,hourly=24,daily=7")
	}
	p := &RetentionPolicy{}
	seen := map[string]bool{}
	for _, rule := range strings.Split(s, ",") {
		key, value, ok := strings.Cut(strings.TrimSpace(rule), "=")
		if !ok {
			return nil, fmt.Errorf("retention rule %q: want NAME=VALUE, e.g. daily=7", rule)
		}
		if seen[key] {
			return nil, fmt.Errorf("retention rule %s given twice", key)
		}
		seen[key] = true
		if key == "within" {
			w, err := parseWithin(value)
			if err != nil {
				return nil, fmt.Errorf("retention rule within: %w", err)
			}
			p.Within = w
			continue
		}
		var dst *int
		switch key {
		case "last":
			dst = &p.Last
		case "hourly":
			dst = &p.Hourly
		case "daily":
			dst = &p.Daily
		case "weekly":
			dst = &p.Weekly
		case "monthly":
			dst = &p.Monthly
		case "yearly":
			dst = &p.Yearly
		default:
			return nil, fmt.Errorf("unknown retention rule %q: use last, hourly, daily, weekly, monthly, yearly or within", key)
		}
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("retention rule %s=%q: want a count, 0 or more", key, value)
		}
		*dst = n
	}
	if *p == (RetentionPolicy{}) {
		return nil, fmt.Errorf("retention policy %q keeps nothing; zrep does not destroy every snapshot", s)
	}
	return p, nil
}

func (p *RetentionPolicy) String() string {
	var parts []string
	for _, r := range []struct {
		name string
		n    int
	}{{"last", p.Last}, {"hourly", p.Hourly}, {"daily", p.Daily}, {"weekly", p.Weekly}, {"monthly", p.Monthly}, {"yearly", p.Yearly}} {
		if r.n > 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", r.name, r.n))
		}
	}
	if !p.Within.zero() {
		parts = append(parts, "within="+p.Within.String())
	}
	return strings.Join(parts, ",")
}

// DatedSnapshot is a snapshot with the time retention reads for it.
type DatedSnapshot struct {
	Snapshot *pdu.FilesystemVersion
	Time     time.Time
}

// period buckets a time into the period a rule counts, in loc.
type period func(t time.Time) int

var (
	hourPeriod  period = func(t time.Time) int { return ((t.Year()*100+int(t.Month()))*100+t.Day())*100 + t.Hour() }
	dayPeriod   period = func(t time.Time) int { return (t.Year()*100+int(t.Month()))*100 + t.Day() }
	weekPeriod  period = func(t time.Time) int { y, w := t.ISOWeek(); return y*100 + w }
	monthPeriod period = func(t time.Time) int { return t.Year()*100 + int(t.Month()) }
	yearPeriod  period = func(t time.Time) int { return t.Year() }
)

// Keep applies the policy to snaps and returns those it keeps, by index
// into snaps. Periods are read in loc (nil: time.Local). Snapshots are
// ranked newest first by Time, ties broken by creation order; the order of
// snaps does not matter.
func (p *RetentionPolicy) Keep(snaps []DatedSnapshot, loc *time.Location) map[int]bool {
	if loc == nil {
		loc = time.Local
	}
	order := make([]int, len(snaps))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if c := snaps[b].Time.Compare(snaps[a].Time); c != 0 {
			return c
		}
		return cmpUint(snaps[b].Snapshot.CreateTXG, snaps[a].Snapshot.CreateTXG)
	})
	type bucket struct {
		left   int
		period period
		last   int
		any    bool
	}
	buckets := []*bucket{
		{left: p.Hourly, period: hourPeriod},
		{left: p.Daily, period: dayPeriod},
		{left: p.Weekly, period: weekPeriod},
		{left: p.Monthly, period: monthPeriod},
		{left: p.Yearly, period: yearPeriod},
	}
	keep := map[int]bool{}
	var bound time.Time
	if len(order) > 0 && !p.Within.zero() {
		bound = p.Within.before(snaps[order[0]].Time)
	}
	for rank, i := range order {
		t := snaps[i].Time.In(loc)
		if rank < p.Last {
			keep[i] = true
		}
		if !bound.IsZero() && snaps[i].Time.After(bound) {
			keep[i] = true
		}
		for _, b := range buckets {
			if b.left == 0 {
				continue
			}
			if v := b.period(t); !b.any || v != b.last {
				b.last, b.any = v, true
				b.left--
				keep[i] = true
			}
		}
	}
	return keep
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

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
