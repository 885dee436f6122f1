package replication_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/zrep/zrep/replication"
)

func TestSyncOffLeavesFilesystemsOut(t *testing.T) {
	w := newWorld(t, "tank/a", "tank/a/b", "tank/a/c", "tank/d")
	for _, fs := range []string{"tank", "tank/a", "tank/a/b", "tank/a/c", "tank/d"} {
		w.src.Snapshot(fs, "s1")
	}
	w.src.SetSync("tank/a", "off")
	w.src.SetSync("tank/a/c", "on")
	cfg := w.config()

	plan, err := replication.Plan(context.Background(), cfg, w.src.Sender("tank", true), w.dst.Receiver("backup/tank", true))
	if err != nil {
		t.Fatal(err)
	}
	var planned []string
	for _, f := range plan.Filesystems {
		planned = append(planned, f.Filesystem)
	}
	if want := []string{"tank", "tank/a/c", "tank/d"}; !slices.Equal(planned, want) {
		t.Errorf("planned %v, want %v", planned, want)
	}
	var left []string
	for _, l := range plan.LeftOut {
		left = append(left, l.Filesystem)
		if !strings.Contains(l.Reason, "zrep:sync") {
			t.Errorf("%s left out for %q, want the reason to name zrep:sync", l.Filesystem, l.Reason)
		}
	}
	if want := []string{"tank/a", "tank/a/b"}; !slices.Equal(left, want) {
		t.Errorf("left out %v, want %v", left, want)
	}

	r := replication.NewReplication(cfg)
	r.Drive(context.Background(), w.src.Sender("tank", true), w.dst.Receiver("backup/tank", true))
	if rep := r.Report(); rep.Failed() {
		t.Fatalf("run failed: %+v", rep)
	}
	if !w.dst.IsPlaceholder("backup/tank/a") || w.dst.Exists("backup/tank/a/b") || !w.dst.Exists("backup/tank/a/c") {
		t.Errorf("destination: tank/a placeholder %v, tank/a/b exists %v, tank/a/c exists %v; want a placeholder, nothing, a copy",
			w.dst.IsPlaceholder("backup/tank/a"), w.dst.Exists("backup/tank/a/b"), w.dst.Exists("backup/tank/a/c"))
	}
}
