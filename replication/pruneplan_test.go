package replication_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/zrep/zrep/replication"
)

func TestPlanWithRetentionChangesNothing(t *testing.T) {
	w := newWorld(t)
	for i := 0; i < 3; i++ {
		w.src.Snapshot("tank", hourly(i))
	}
	cfg := w.config()
	cfg.Initial = replication.InitialAll
	w.drive(t, cfg)
	w.src.Snapshot("tank", hourly(3))
	set, err := replication.PlanSnapshot(context.Background(), w.sender(), replication.SnapshotConfig{Recursive: true, Prefix: "zrep_", Now: time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	srcCalls, dstCalls := len(w.src.Calls()), len(w.dst.Calls())
	p, err := replication.PlanWithRetention(context.Background(), cfg, w.sender(), w.receiver(), set, replication.PruneOptions{Retention: retention(t, "last=1", "last=2")})
	if err != nil {
		t.Fatal(err)
	}
	if len(w.src.Calls()) != srcCalls || len(w.dst.Calls()) != dstCalls {
		t.Errorf("plan changed something: %v %v", w.src.Calls()[srcCalls:], w.dst.Calls()[dstCalls:])
	}
	f := p.Filesystems[0]
	if p.Snapshot == nil || *p.Snapshot != hourly(4) || len(f.Steps) != 2 || f.Steps[1].To != hourly(4) {
		t.Fatalf("plan %+v steps %+v", p, f.Steps)
	}
	if want := []string{hourly(0), hourly(1), hourly(2), hourly(3)}; !slices.Equal(f.Pruned.Source, want) {
		t.Errorf("would prune on source %v, want %v", f.Pruned.Source, want)
	}
	if want := []string{hourly(0), hourly(1), hourly(2)}; !slices.Equal(f.Pruned.Destination, want) {
		t.Errorf("would prune on destination %v, want %v", f.Pruned.Destination, want)
	}
}
