package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zrep/zrep/pdu"
)

func snap(name string, txg uint64, created time.Time) *pdu.FilesystemVersion {
	return &pdu.FilesystemVersion{Name: name, Type: pdu.Snapshot, Guid: txg, CreateTXG: txg, Creation: created.Unix()}
}

func TestJudgeStatus(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	check := statusConfig{prefix: "zrep_", maxAge: 2 * time.Hour, warnAge: time.Hour}
	cases := []struct {
		name      string
		fss       []*pdu.Filesystem
		cfg       statusConfig
		state     string
		summary   string // a part of it
		perf      string // a part of the check line's perfdata
		newest    string
		ageSecond float64
	}{
		{"fresh by creation", []*pdu.Filesystem{{Path: "b/a", Versions: []*pdu.FilesystemVersion{
			snap("old", 1, now.Add(-5*time.Hour)), snap("new", 2, now.Add(-10*time.Minute))}}},
			check, "OK", "1 filesystem, newest snapshots at most 10m0s old (stalest b/a@new)", "oldest_age=600s;3600;7200;0 filesystems=1 critical=0 warning=0", "new", 600},
		{"the name's time wins over creation", []*pdu.Filesystem{{Path: "b/a", Versions: []*pdu.FilesystemVersion{
			snap("zrep_20261130T083000Z", 7, now)}}},
			check, "CRITICAL", "b/a: newest snapshot @zrep_20261130T083000Z is 3h30m old, more than 2h0m", "critical=1", "zrep_20261130T083000Z", 3.5 * 3600},
		{"another prefix is read by creation", []*pdu.Filesystem{{Path: "b/a", Versions: []*pdu.FilesystemVersion{
			snap("auto_20201130T083000Z", 7, now.Add(-90*time.Minute))}}},
			check, "WARNING", "is 1h30m old, more than 1h0m", "warning=1", "auto_20201130T083000Z", 5400},
		{"newest by creation order, not name", []*pdu.Filesystem{{Path: "b/a", Versions: []*pdu.FilesystemVersion{
			snap("b", 1, now.Add(-3*time.Hour)), snap("a", 2, now.Add(-time.Minute)),
			{Name: "bm", Type: pdu.Bookmark, CreateTXG: 3, Creation: now.Unix()}}}},
			check, "OK", "at most 1m0s old (stalest b/a@a)", "oldest_age=60s", "a", 60},
		{"no snapshot", []*pdu.Filesystem{{Path: "b/a"}}, check, "CRITICAL", "b/a: no snapshot", "filesystems=1 critical=1", "", 0},
		{"a placeholder needs none", []*pdu.Filesystem{{Path: "b", Placeholder: true},
			{Path: "b/a", Versions: []*pdu.FilesystemVersion{snap("s", 1, now.Add(-time.Minute))}}},
			check, "OK", "2 filesystems", "filesystems=2 critical=0", "", 0},
		{"partial receive state", []*pdu.Filesystem{{Path: "b/a", ResumeToken: "1-abc",
			Versions: []*pdu.FilesystemVersion{snap("s", 1, now.Add(-time.Minute))}}},
			check, "CRITICAL", "b/a: partial receive state", "critical=1", "s", 60},
		{"missing", nil, check, "CRITICAL", "b/a does not exist", "filesystems=0", "", 0},
		{"--snapshots chooses", []*pdu.Filesystem{{Path: "b/a", Versions: []*pdu.FilesystemVersion{
			snap("zrep_20261130T110000Z", 1, now), snap("manual", 2, now)}}},
			statusConfig{prefix: "zrep_", maxAge: 2 * time.Hour, snapshots: regexp.MustCompile("^zrep_")}, "OK", "at most 1h0m old (stalest b/a@zrep_20261130T110000Z)", "oldest_age=3600s;;7200;0", "zrep_20261130T110000Z", 3600},
		{"no check without --max-age", []*pdu.Filesystem{{Path: "b/a", Versions: []*pdu.FilesystemVersion{
			snap("s", 1, now.Add(-100*time.Hour))}}}, statusConfig{prefix: "zrep_"}, "", "4d4h old", "", "s", 360000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := judgeStatus("b/a", tc.fss, now, tc.cfg)
			if rep.Check != tc.state {
				t.Errorf("state %q, want %q (%s)", rep.Check, tc.state, rep.Summary)
			}
			if !strings.Contains(rep.Summary, tc.summary) {
				t.Errorf("summary %q lacks %q", rep.Summary, tc.summary)
			}
			if tc.cfg.maxAge > 0 {
				line := rep.checkLine(tc.cfg)
				if !regexp.MustCompile(`^ZREP (OK|WARNING|CRITICAL) - [^|\n]+ \| [^|\n]+$`).MatchString(line) || !strings.Contains(line, tc.perf) {
					t.Errorf("check line %q, want perfdata with %q", line, tc.perf)
				}
			}
			if tc.newest != "" {
				f := rep.Filesystems[len(rep.Filesystems)-1]
				if f.NewestSnapshot == nil || *f.NewestSnapshot != tc.newest || *f.AgeSeconds != tc.ageSecond {
					t.Errorf("newest %v age %v, want %s %v", f.NewestSnapshot, f.AgeSeconds, tc.newest, tc.ageSecond)
				}
			}
		})
	}
}

// In check mode a usage error exits 3 (UNKNOWN) with one line on stdout;
// outside it, 2 as everywhere else.
func TestStatusUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want int
	}{
		{[]string{"zrep", "status", "--max-age", "1h"}, 3},
		{[]string{"zrep", "status", "--max-age", "1h", "--bogus", "b/a"}, 3},
		{[]string{"zrep", "status", "--bogus", "--max-age=1h", "b/a"}, 3},
		{[]string{"zrep", "status", "--max-age", "1h", "--warn-age", "2h", "b/a"}, 3},
		{[]string{"zrep", "status", "--max-age", "soon", "b/a"}, 3},
		{[]string{"zrep", "status", "--warn-age", "1h", "b/a"}, 2},
		{[]string{"zrep", "status"}, 2},
		{[]string{"zrep", "status", "b/a", "b/c"}, 2},
	}
	for _, tc := range cases {
		var stdout, stderr bytes.Buffer
		code := runApp(context.Background(), tc.args, &stdout, &stderr)
		if code != tc.want {
			t.Errorf("%q: exit %d, want %d (%s)", tc.args, code, tc.want, stderr.String())
		}
		if tc.want == 3 && !strings.HasPrefix(stdout.String(), "ZREP UNKNOWN - usage: ") || strings.Count(stdout.String(), "\n") > 1 {
			t.Errorf("%q: stdout %q", tc.args, stdout.String())
		}
	}
}
