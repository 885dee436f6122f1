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
