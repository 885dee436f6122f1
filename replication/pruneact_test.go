package replication_test

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zrep/zrep/pdu"
	"github.com/zrep/zrep/replication"
	"github.com/zrep/zrep/replication/memzfs"
)

// hourly names one snapshot an hour from 2026-11-27 00:00 UTC.
func hourly(i int) string {
	return replication.SnapshotName("zrep_", time.Date(2026, 11, 27, i, 0, 0, 0, time.UTC))
}

func retention(t *testing.T, src, dst string) *replication.Retention {
	t.Helper()
	r := &replication.Retention{Match: regexp.MustCompile(`^zrep_`), Location: time.UTC}
	var err error
	if src != "" {
		if r.Source, err = replication.ParseRetentionPolicy(src); err != nil {
			t.Fatal(err)
		}
	}
	if dst != "" {
		if r.Dest, err = replication.ParseRetentionPolicy(dst); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func driveAndPrune(t *testing.T, w *world, cfg replication.Config, opts replication.PruneOptions) *replication.Report {
	t.Helper()
	r := replication.NewReplication(cfg)
	r.Drive(context.Background(), w.sender(), w.receiver())
	r.Prune(context.Background(), w.sender(), w.receiver(), opts)
	return r.Report()
}

func TestRunPrunesBothSides(t *testing.T) {
	w := newWorld(t, "tank/a")
	for i := 0; i < 6; i++ {
		w.src.Snapshot("tank", hourly(i))
		w.src.Snapshot("tank/a", hourly(i))
	}
	w.src.Snapshot("tank", "manual")
	cfg := w.config()
	cfg.Initial = replication.InitialAll
	rep := driveAndPrune(t, w, cfg, replication.PruneOptions{Retention: retention(t, "last=2", "last=4")})
	if rep.Failed() {
		t.Fatalf("run failed: %+v", rep)
	}
	if got, want := w.src.SnapshotNames("tank"), []string{hourly(4), hourly(5), "manual"}; !slices.Equal(got, want) {
		t.Errorf("source tank: %v, want %v", got, want)
	}
	if got, want := w.dst.SnapshotNames("backup/tank/a"), []string{hourly(2), hourly(3), hourly(4), hourly(5)}; !slices.Equal(got, want) {
		t.Errorf("destination tank/a: %v, want %v", got, want)
	}
	fs := allFilesystems(rep)["tank/a"]
	if want := []string{hourly(0), hourly(1), hourly(2), hourly(3)}; !slices.Equal(fs.Pruned.Source, want) {
		t.Errorf("report pruned source %v, want %v", fs.Pruned.Source, want)
	}
	if want := []string{hourly(0), hourly(1)}; !slices.Equal(fs.Pruned.Destination, want) {
		t.Errorf("report pruned destination %v, want %v", fs.Pruned.Destination, want)
	}
}

func TestRunPrunesNothingOnAFailedFilesystem(t *testing.T) {
	w := newWorld(t, "tank/a", "tank/b")
	for i := 0; i < 3; i++ {
		for _, fs := range []string{"tank", "tank/a", "tank/b"} {
			w.src.Snapshot(fs, hourly(i))
		}
	}
	cfg := w.config()
	w.drive(t, cfg)
	for i := 3; i < 6; i++ {
		for _, fs := range []string{"tank", "tank/a", "tank/b"} {
			w.src.Snapshot(fs, hourly(i))
		}
	}
	w.dst.Hook = func(op memzfs.Op, fs string) error {
		if op == memzfs.OpReceive && fs == "backup/tank/b" {
			return pdu.PermanentError(errors.New("out of space"))
		}
		return nil
	}
	before := w.src.SnapshotNames("tank/b")
	rep := driveAndPrune(t, w, cfg, replication.PruneOptions{Retention: retention(t, "last=1", "last=1")})
	if !rep.Failed() {
		t.Fatal("tank/b should have failed")
	}
	if got := w.src.SnapshotNames("tank/b"); !slices.Equal(got, before) {
		t.Errorf("failed tank/b lost snapshots: %v, had %v", got, before)
	}
	if got := w.dst.SnapshotNames("backup/tank/b"); len(got) != 1 {
		t.Errorf("failed destination tank/b: %v", got)
	}
	if got, want := w.src.SnapshotNames("tank/a"), []string{hourly(5)}; !slices.Equal(got, want) {
		t.Errorf("tank/a: %v, want %v", got, want)
	}
}

func TestRunDestroyFailureIsTheFilesystemsProblem(t *testing.T) {
	w := newWorld(t)
	for i := 0; i < 3; i++ {
		w.src.Snapshot("tank", hourly(i))
	}
	cfg := w.config()
	cfg.Initial = replication.InitialAll
	w.dst.FailNext(memzfs.OpDestroy, 1, pdu.PermanentError(errors.New("permission denied")))
	rep := driveAndPrune(t, w, cfg, replication.PruneOptions{Retention: retention(t, "last=1", "last=1")})
	fs := allFilesystems(rep)["tank"]
	if !rep.Failed() || !strings.Contains(fs.Problem, "permission denied") || !strings.Contains(fs.Problem, "prune destination") {
		t.Errorf("want the destroy failure as the filesystem's problem: %+v", fs)
	}
	if got := w.dst.SnapshotNames("backup/tank"); len(got) != 3 {
		t.Errorf("destination: %v, want all three (the destroy failed, nothing undone)", got)
	}
	for _, s := range fs.Steps {
		if s.Status != "Completed" {
			t.Errorf("step to %s: %s, want Completed", s.To, s.Status)
		}
	}
}

func TestHoldMovesForward(t *testing.T) {
	w := newWorld(t)
	w.src.Snapshot("tank", hourly(0))
	cfg := w.config()
	cfg.CursorID = "0123456789abcdef"
	tag := replication.HoldTag(cfg.CursorID)
	opts := replication.PruneOptions{Hold: true}
	driveAndPrune(t, w, cfg, opts)
	if got := w.src.Holds("tank", hourly(0)); !slices.Equal(got, []string{tag}) {
		t.Fatalf("holds on the replicated snapshot: %v", got)
	}
	w.src.Hold("tank", hourly(0), "other-tool")
	w.src.Snapshot("tank", hourly(1))
	driveAndPrune(t, w, cfg, opts)
	if got := w.src.Holds("tank", hourly(1)); !slices.Equal(got, []string{tag}) {
		t.Errorf("holds on the newest: %v", got)
	}
	if got := w.src.Holds("tank", hourly(0)); !slices.Equal(got, []string{"other-tool"}) {
		t.Errorf("holds on the older one: %v, want only the other tool's", got)
	}
}

func TestHeldSnapshotIsSkippedAndReported(t *testing.T) {
	w := newWorld(t)
	for i := 0; i < 3; i++ {
		w.src.Snapshot("tank", hourly(i))
	}
	w.src.Hold("tank", hourly(0), "keep")
	cfg := w.config()
	rep := driveAndPrune(t, w, cfg, replication.PruneOptions{Retention: retention(t, "last=1", "")})
	fs := allFilesystems(rep)["tank"]
	if rep.Failed() {
		t.Errorf("a held snapshot is no failure: %+v", fs)
	}
	if got := w.src.SnapshotNames("tank"); !slices.Equal(got, []string{hourly(0), hourly(2)}) {
		t.Errorf("source: %v", got)
	}
	if !slices.Equal(fs.Held.Source, []string{hourly(0)}) || !slices.Equal(fs.Pruned.Source, []string{hourly(1)}) {
		t.Errorf("report: pruned %v held %v", fs.Pruned, fs.Held)
	}
}

func TestPruneStandalone(t *testing.T) {
	w := newWorld(t, "tank/a", "tank/x")
	for i := 0; i < 4; i++ {
		for _, fs := range []string{"tank", "tank/a", "tank/x"} {
			w.src.Snapshot(fs, hourly(i))
		}
	}
	cfg := w.config()
	cfg.Initial = replication.InitialAll
	w.drive(t, cfg)
	// A sibling of the destination outside DST, with snapshots of the
	// same names, is never touched.
	w.dst.CreateFilesystem("backup/other")
	for i := 0; i < 4; i++ {
		w.dst.Snapshot("backup/other", hourly(i))
	}
	cfg.Exclude = []*regexp.Regexp{regexp.MustCompile(`^tank/x$`)}
	before := len(w.src.Calls()) + len(w.dst.Calls())
	rep, err := replication.Prune(context.Background(), cfg, w.sender(), w.receiver(), replication.PruneOptions{Retention: retention(t, "last=2", "last=3")})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(w.src.Calls()) + len(w.dst.Calls()) - before; got != 2*2+2*1 {
		t.Errorf("%d snapshots destroyed, want 6: %v", got, append(w.src.Calls(), w.dst.Calls()...))
	}
	if got := len(rep.Filesystems); got != 2 {
		t.Errorf("report has %d filesystems, want tank and tank/a", got)
	}
	if got := w.src.SnapshotNames("tank/x"); len(got) != 4 {
		t.Errorf("excluded tank/x: %v", got)
	}
	if got := w.dst.SnapshotNames("backup/other"); len(got) != 4 {
		t.Errorf("backup/other, outside DST: %v", got)
	}
	if got, want := w.dst.SnapshotNames("backup/tank/a"), []string{hourly(1), hourly(2), hourly(3)}; !slices.Equal(got, want) {
		t.Errorf("destination tank/a: %v, want %v", got, want)
	}
}
