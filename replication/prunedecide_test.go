package replication_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zrep/zrep/pdu"
	"github.com/zrep/zrep/replication"
)

func TestParseRetentionPolicy(t *testing.T) {
	tests := []struct {
		in   string
		want string // the policy written back; "" for an error
	}{
		{"last=4,hourly=24,daily=14,weekly=8,monthly=12", "last=4,hourly=24,daily=14,weekly=8,monthly=12"},
		{"yearly=75", "yearly=75"},
		{" daily=7 , hourly=24 ", "hourly=24,daily=7"},
		{"within=2d", "within=2d"},
		{"within=1y2m3d4h", "within=1y2m3d4h"},
		{"within=2w", "within=14d"},
		{"last=1,within=36h", "last=1,within=36h"},
		{"", ""},
		{"   ", ""},
		{"last=0", ""},
		{"daily", ""},
		{"daily=-1", ""},
		{"daily=x", ""},
		{"daily=7,daily=8", ""},
		{"minutely=5", ""},
		{"within=", ""},
		{"within=5", ""},
		{"within=5s", ""},
		{"within=0d", ""},
		{"within=2d3", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := replication.ParseRetentionPolicy(tt.in)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("ParseRetentionPolicy(%q) = %v, want an error", tt.in, p)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseRetentionPolicy(%q): %v", tt.in, err)
			}
			if got := p.String(); got != tt.want {
				t.Errorf("ParseRetentionPolicy(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

// at reads "2006-01-02 15:04" in UTC.
func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04", s)
	if err != nil {
		panic(err)
	}
	return t
}

// dated makes snapshots named for their times, created in the order given.
func dated(times ...string) []replication.DatedSnapshot {
	var out []replication.DatedSnapshot
	for i, s := range times {
		tm := at(s)
		out = append(out, replication.DatedSnapshot{
			Snapshot: &pdu.FilesystemVersion{Name: replication.SnapshotName("zrep_", tm), Type: pdu.Snapshot, Guid: uint64(i + 1), CreateTXG: uint64(10 * (i + 1))},
			Time:     tm,
		})
	}
	return out
}

// hourlySeries is one snapshot an hour, on the hour, from start for n hours.
func hourlySeries(start string, n int) []string {
	t0 := at(start)
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, t0.Add(time.Duration(i)*time.Hour).Format("2006-01-02 15:04"))
	}
	return out
}

// dailySeries is one snapshot a day at 12:00, from start for n days.
func dailySeries(start string, n int) []string {
	t0 := at(start)
	var out []string
	for i := 0; i < n; i++ {
		out = append(out, t0.AddDate(0, 0, i).Format("2006-01-02 15:04"))
	}
	return out
}

func kept(p *replication.RetentionPolicy, snaps []replication.DatedSnapshot, loc *time.Location) []string {
	keep := p.Keep(snaps, loc)
	var out []string
	for i, s := range snaps {
		if keep[i] {
			out = append(out, s.Time.UTC().Format("2006-01-02 15:04"))
		}
	}
	return out
}

func TestRetentionKeep(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	tokyo := time.FixedZone("JST", 9*3600)
	tests := []struct {
		name   string
		policy string
		loc    *time.Location
		snaps  []string
		want   []string
	}{
		{
			name:   "last keeps the newest N",
			policy: "last=3",
			snaps:  []string{"2026-11-01 10:00", "2026-11-01 11:00", "2026-11-01 12:00", "2026-11-01 13:00", "2026-11-01 14:00"},
			want:   []string{"2026-11-01 12:00", "2026-11-01 13:00", "2026-11-01 14:00"},
		},
		{
			name:   "last larger than the history keeps all",
			policy: "last=10",
			snaps:  []string{"2026-11-01 10:00", "2026-11-01 11:00"},
			want:   []string{"2026-11-01 10:00", "2026-11-01 11:00"},
		},
		{
			// restic: "--keep-hourly n: for the last n hours which have
			// one or more snapshots, keep only the most recent one for
			// each hour".
			name:   "hourly keeps the newest of each hour",
			policy: "hourly=3",
			snaps:  []string{"2026-11-01 10:00", "2026-11-01 10:30", "2026-11-01 11:00", "2026-11-01 11:30", "2026-11-01 12:00"},
			want:   []string{"2026-11-01 10:30", "2026-11-01 11:30", "2026-11-01 12:00"},
		},
		{
			name:   "daily counts only days that have a snapshot",
			policy: "daily=2",
			snaps:  []string{"2026-11-01 23:00", "2026-11-04 01:00", "2026-11-04 05:00"},
			want:   []string{"2026-11-01 23:00", "2026-11-04 05:00"},
		},
		{
			// restic: rules are combined; a snapshot kept by one rule also
			// fills the other rules' periods.
			name:   "three days of hourly snapshots, hourly=24,daily=7",
			policy: "hourly=24,daily=7",
			snaps:  hourlySeries("2026-11-27 00:00", 72),
			want:   append([]string{"2026-11-27 23:00", "2026-11-28 23:00"}, hourlySeries("2026-11-29 00:00", 24)...),
		},
		{
			name:   "three days of hourly snapshots, hourly=48,daily=30",
			policy: "hourly=48,daily=30",
			snaps:  hourlySeries("2026-11-27 00:00", 72),
			want:   append([]string{"2026-11-27 23:00"}, hourlySeries("2026-11-28 00:00", 48)...),
		},
		{
			// restic's example: daily backups with --keep-daily 7
			// --keep-weekly 5 keep the 7 last days, then the last day of
			// each week before them until 5 weeks are covered (the week of
			// today counts as one of the five).
			name:   "daily=7,weekly=5 over six weeks of daily snapshots",
			policy: "daily=7,weekly=5",
			snaps:  dailySeries("2026-10-19 12:00", 42), // Mon 19 Oct .. Sun 29 Nov
			want: []string{
				"2026-11-01 12:00", // Sun, week 44
				"2026-11-08 12:00", // Sun, week 45
				"2026-11-15 12:00", // Sun, week 46
				"2026-11-22 12:00", // Sun, week 47 (also one of the 7 days)
				"2026-11-23 12:00", "2026-11-24 12:00", "2026-11-25 12:00", "2026-11-26 12:00",
				"2026-11-27 12:00", "2026-11-28 12:00", "2026-11-29 12:00",
			},
		},
		{
			name:   "weeks start on Monday",
			policy: "weekly=2",
			snaps:  []string{"2026-11-28 12:00", "2026-11-29 23:00", "2026-11-30 00:30"}, // Sat, Sun, Mon
			want:   []string{"2026-11-29 23:00", "2026-11-30 00:30"},
		},
		{
			name:   "month ends: 31 January and a leap 29 February",
			policy: "monthly=3",
			snaps:  []string{"2028-01-30 12:00", "2028-01-31 23:59", "2028-02-01 00:00", "2028-02-29 23:00", "2028-03-01 00:00"},
			want:   []string{"2028-01-31 23:59", "2028-02-29 23:00", "2028-03-01 00:00"},
		},
		{
			name:   "yearly keeps the last of each year",
			policy: "yearly=2",
			snaps:  []string{"2024-12-31 23:00", "2025-06-01 00:00", "2025-12-31 23:59", "2026-01-01 00:00"},
			want:   []string{"2025-12-31 23:59", "2026-01-01 00:00"},
		},
		{
			name:   "days in UTC",
			policy: "daily=2",
			loc:    time.UTC,
			snaps:  []string{"2026-11-30 22:00", "2026-11-30 23:30", "2026-12-01 00:30"},
			want:   []string{"2026-11-30 23:30", "2026-12-01 00:30"},
		},
		{
			name:   "days in another time zone: all three fall on 1 December in Tokyo",
			policy: "daily=2",
			loc:    tokyo,
			snaps:  []string{"2026-11-30 22:00", "2026-11-30 23:30", "2026-12-01 00:30"},
			want:   []string{"2026-12-01 00:30"},
		},
		{
			// On 25 October 2026 Berlin's clocks go back from 03:00 CEST
			// to 02:00 CET: 00:15Z and 01:15Z are both 02:15 local, one
			// local hour, so hourly keeps one of the two real hours.
			name:   "hours across the end of daylight saving time",
			policy: "hourly=5",
			loc:    berlin,
			snaps:  []string{"2026-10-24 23:45", "2026-10-25 00:15", "2026-10-25 00:45", "2026-10-25 01:15", "2026-10-25 01:45"},
			want:   []string{"2026-10-24 23:45", "2026-10-25 01:45"},
		},
		{
			name:   "the same hours in UTC",
			policy: "hourly=5",
			loc:    time.UTC,
			snaps:  []string{"2026-10-24 23:45", "2026-10-25 00:15", "2026-10-25 00:45", "2026-10-25 01:15", "2026-10-25 01:45"},
			want:   []string{"2026-10-24 23:45", "2026-10-25 00:45", "2026-10-25 01:45"},
		},
		{
			name:   "within keeps what is younger than the span before the newest",
			policy: "within=1d",
			snaps:  []string{"2026-11-01 10:00", "2026-11-02 11:59", "2026-11-02 12:00", "2026-11-02 12:01", "2026-11-03 12:00"},
			want:   []string{"2026-11-02 12:01", "2026-11-03 12:00"},
		},
		{
			name:   "rules are a union",
			policy: "last=1,daily=2,within=3h",
			snaps:  []string{"2026-11-01 10:00", "2026-11-02 10:00", "2026-11-02 20:00", "2026-11-03 08:00", "2026-11-03 09:00", "2026-11-03 10:00"},
			want:   []string{"2026-11-02 20:00", "2026-11-03 08:00", "2026-11-03 09:00", "2026-11-03 10:00"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := replication.ParseRetentionPolicy(tt.policy)
			if err != nil {
				t.Fatal(err)
			}
			loc := tt.loc
			if loc == nil {
				loc = time.UTC
			}
			snaps := dated(tt.snaps...)
			got := kept(p, snaps, loc)
			if !slices.Equal(got, tt.want) {
				t.Errorf("%s kept\n  %s\nwant\n  %s", tt.policy, strings.Join(got, ", "), strings.Join(tt.want, ", "))
			}
			// The order of the input does not matter.
			slices.Reverse(snaps)
			got = kept(p, snaps, loc)
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("%s on reversed input kept %v, want %v", tt.policy, got, tt.want)
			}
		})
	}
}

// snap is a snapshot for the pruning tables: name, guid, createtxg.
func snap(name string, guid, txg uint64) *pdu.FilesystemVersion {
	return &pdu.FilesystemVersion{Name: name, Type: pdu.Snapshot, Guid: guid, CreateTXG: txg}
}

func TestDecidePrune(t *testing.T) {
	last1 := &replication.RetentionPolicy{Last: 1}
	match := regexp.MustCompile(`^zrep_`)
	// Source: h1 < h2 < h3 < h4, replicated up to h3; destination holds
	// h1..h3 under its own txgs.
	src := func(mod ...func(*pdu.Filesystem)) *pdu.Filesystem {
		fs := &pdu.Filesystem{Path: "tank/a", Versions: []*pdu.FilesystemVersion{
			snap("zrep_20261101T000000Z", 1, 10), snap("zrep_20261101T010000Z", 2, 20),
			snap("zrep_20261101T020000Z", 3, 30), snap("zrep_20261101T030000Z", 4, 40),
		}}
		for _, m := range mod {
			m(fs)
		}
		return fs
	}
	dst := func(mod ...func(*pdu.Filesystem)) *pdu.Filesystem {
		fs := &pdu.Filesystem{Path: "backup/a", Versions: []*pdu.FilesystemVersion{
			snap("zrep_20261101T000000Z", 1, 5), snap("zrep_20261101T010000Z", 2, 6), snap("zrep_20261101T020000Z", 3, 7),
		}}
		for _, m := range mod {
			m(fs)
		}
		return fs
	}
	add := func(v *pdu.FilesystemVersion) func(*pdu.Filesystem) {
		return func(fs *pdu.Filesystem) { fs.Versions = append(fs.Versions, v) }
	}
	hold := func(name string) func(*pdu.Filesystem) {
		return func(fs *pdu.Filesystem) {
			for _, v := range fs.Versions {
				if v.Name == name {
					v.UserRefs = 1
				}
			}
		}
	}
	both := &replication.Retention{Source: last1, Dest: last1, Match: match}
	tests := []struct {
		name             string
		ret              *replication.Retention
		in               replication.PruneInput
		src, dst         []string
		heldSrc, heldDst []string
		reason           string
	}{
		{
			name: "last=1 both sides: the common base stays on both, the unreplicated h4 on the source",
			ret:  both,
			in:   replication.PruneInput{Source: src(), Dest: dst()},
			src:  []string{"@zrep_20261101T000000Z", "@zrep_20261101T010000Z"},
			dst:  []string{"@zrep_20261101T000000Z", "@zrep_20261101T010000Z"},
		},
		{
			name: "destination behind: nothing after the common base goes on the source",
			ret:  both,
			in: replication.PruneInput{Source: src(), Dest: &pdu.Filesystem{Path: "backup/a", Versions: []*pdu.FilesystemVersion{
				snap("zrep_20261101T000000Z", 1, 5)}}},
			src: nil,
			dst: nil,
		},
		{
			name: "only the source policy",
			ret:  &replication.Retention{Source: last1, Match: match},
			in:   replication.PruneInput{Source: src(), Dest: dst()},
			src:  []string{"@zrep_20261101T000000Z", "@zrep_20261101T010000Z"},
		},
		{
			name:   "failed filesystem: nothing",
			ret:    both,
			in:     replication.PruneInput{Source: src(), Dest: dst(), Failed: true},
			reason: "replication failed in this run",
		},
		{
			name:   "no destination yet: nothing",
			ret:    both,
			in:     replication.PruneInput{Source: src()},
			reason: "nothing replicated yet",
		},
		{
			name: "no common snapshot: nothing",
			ret:  both,
			in: replication.PruneInput{Source: src(), Dest: &pdu.Filesystem{Path: "backup/a", Versions: []*pdu.FilesystemVersion{
				snap("zrep_20261101T000000Z", 99, 5)}}},
			reason: "the two sides share no snapshot",
		},
		{
			name: "placeholder destination: nothing there",
			ret:  both,
			in:   replication.PruneInput{Source: src(), Dest: dst(func(fs *pdu.Filesystem) { fs.Placeholder = true })},
			src:  []string{"@zrep_20261101T000000Z", "@zrep_20261101T010000Z"},
		},
		{
			name:    "held snapshots are skipped and reported",
			ret:     both,
			in:      replication.PruneInput{Source: src(hold("zrep_20261101T000000Z")), Dest: dst(hold("zrep_20261101T010000Z"))},
			src:     []string{"@zrep_20261101T010000Z"},
			heldSrc: []string{"@zrep_20261101T000000Z"},
			dst:     []string{"@zrep_20261101T000000Z"},
			heldDst: []string{"@zrep_20261101T010000Z"},
		},
		{
			name: "foreign names are not candidates under the default match",
			ret:  both,
			in: replication.PruneInput{
				Source: src(add(snap("autosnap_2026-11-01_00:30:00_hourly", 11, 15)), add(snap("manual", 12, 16))),
				Dest:   dst(add(snap("autosnap_2026-11-01_00:30:00_hourly", 11, 5)), add(snap("before-upgrade", 13, 8))),
			},
			src: []string{"@zrep_20261101T000000Z", "@zrep_20261101T010000Z"},
			dst: []string{"@zrep_20261101T000000Z", "@zrep_20261101T010000Z"},
		},
		{
			name: "--prune-match for another tool's names",
			ret:  &replication.Retention{Source: last1, Dest: last1, Match: regexp.MustCompile(`^autosnap_`)},
			in: replication.PruneInput{
				Source: src(add(snap("autosnap_a", 11, 15)), add(snap("autosnap_b", 12, 16))),
				Dest:   dst(),
			},
			src: []string{"@autosnap_a"},
		},
		{
			name: "--snapshots narrows the candidates",
			ret:  both,
			// Only T00 and T01 take part: last=1 keeps T01, so T00 goes;
			// T02 (the base) and T03 do not count.
			in:  replication.PruneInput{Source: src(), Dest: dst(), Snapshots: regexp.MustCompile(`T0[01]`)},
			src: []string{"@zrep_20261101T000000Z"},
			dst: []string{"@zrep_20261101T000000Z"},
		},
		{
			name: "destination snapshots after the common base stay (divergence is --rollback's)",
			ret:  both,
			in:   replication.PruneInput{Source: src(), Dest: dst(add(snap("zrep_20261101T023000Z", 77, 8)))},
			src:  []string{"@zrep_20261101T000000Z", "@zrep_20261101T010000Z"},
			dst:  []string{"@zrep_20261101T000000Z", "@zrep_20261101T010000Z"},
		},
		{
			name: "bookmarks are never pruned",
			ret:  both,
			in: replication.PruneInput{
				Source: src(add(&pdu.FilesystemVersion{Name: "zrep_old", Type: pdu.Bookmark, Guid: 1, CreateTXG: 10})),
				Dest:   dst(),
			},
			src: []string{"@zrep_20261101T000000Z", "@zrep_20261101T010000Z"},
			dst: []string{"@zrep_20261101T000000Z", "@zrep_20261101T010000Z"},
		},
		{
			name: "no policy: nothing",
			ret:  &replication.Retention{Match: match},
			in:   replication.PruneInput{Source: src(), Dest: dst()},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := replication.DecidePrune(tt.ret, tt.in)
			for _, c := range []struct {
				what      string
				got       []*pdu.FilesystemVersion
				wantNames []string
			}{
				{"source", d.Source, tt.src},
				{"destination", d.Dest, tt.dst},
				{"held on source", d.HeldSource, tt.heldSrc},
				{"held on destination", d.HeldDest, tt.heldDst},
			} {
				if got := names(c.got); !slices.Equal(got, c.wantNames) && !(len(got) == 0 && len(c.wantNames) == 0) {
					t.Errorf("%s: destroy %v, want %v", c.what, got, c.wantNames)
				}
			}
			if d.Reason != tt.reason {
				t.Errorf("reason %q, want %q", d.Reason, tt.reason)
			}
		})
	}
}
