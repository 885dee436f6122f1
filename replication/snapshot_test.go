package replication_test

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/zrep/zrep/pdu"
	"github.com/zrep/zrep/replication"
)

func TestSnapshotTime(t *testing.T) {
	creation := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	named := time.Date(2026, 11, 30, 10, 45, 0, 0, time.UTC)
	tests := []struct {
		name   string
		prefix string // "": any prefix, as retention reads names
		want   time.Time
	}{
		{"zrep_20261130T104500Z", "", named},
		{"hourly-20261130T104500Z", "", named},
		{"20261130T104500Z", "", named},
		{"zrep_20261130T104500", "", creation},
		{"autosnap_2026-11-30_10:45:00_hourly", "", creation},
		{"zrep_20261331T104500Z", "", creation},
		{"manual", "", creation},
		{"zrep_20261130T104500Z", "zrep_", named},
		{"hourly-20261130T104500Z", "zrep_", creation},
		{"zrep_x20261130T104500Z", "zrep_", creation},
		{"zrep_20261130T104500Zx", "zrep_", creation},
		{"hourly-20261130T104500Z", "hourly-", named},
		{"zrep_20261331T104500Z", "zrep_", creation},
	}
	for _, tt := range tests {
		v := &pdu.FilesystemVersion{Name: tt.name, Type: pdu.Snapshot, Creation: creation.Unix()}
		if got := replication.SnapshotTime(v, tt.prefix); !got.Equal(tt.want) {
			t.Errorf("SnapshotTime(@%s, %q) = %v, want %v", tt.name, tt.prefix, got, tt.want)
		}
	}
	if got := replication.SnapshotName("zrep_", time.Date(2026, 11, 30, 11, 45, 0, 0, time.FixedZone("CET", 3600))); got != "zrep_20261130T104500Z" {
		t.Errorf("SnapshotName = %s, want zrep_20261130T104500Z (UTC)", got)
	}
}

func TestTakeSnapshot(t *testing.T) {
	now := time.Date(2026, 11, 30, 10, 45, 0, 0, time.UTC)
	w := newWorld(t, "tank/a", "tank/b")
	side := w.src.Sender("tank", true)
	set, err := replication.TakeSnapshot(context.Background(), side, replication.SnapshotConfig{Recursive: true, Prefix: "zrep_", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if set.Name != "zrep_20261130T104500Z" || len(set.Filesystems) != 3 || !set.Atomic {
		t.Errorf("set %+v", set)
	}
	for _, fs := range []string{"tank", "tank/a", "tank/b"} {
		if got := w.src.SnapshotNames(fs); !slices.Equal(got, []string{set.Name}) {
			t.Errorf("%s: %v", fs, got)
		}
	}

	// A name already taken on one of them: nothing is taken.
	w.src.Snapshot("tank/b", "zrep_20261130T110000Z")
	calls := len(w.src.Calls())
	_, err = replication.TakeSnapshot(context.Background(), side, replication.SnapshotConfig{Recursive: true, Prefix: "zrep_", Now: now.Add(15 * time.Minute)})
	var nc *replication.NameCollisionError
	if !errors.As(err, &nc) || nc.Snapshot != "tank/b@zrep_20261130T110000Z" {
		t.Errorf("collision: %v", err)
	}
	if len(w.src.Calls()) != calls || len(w.src.SnapshotNames("tank")) != 1 {
		t.Errorf("a collision took something: %v", w.src.Calls()[calls:])
	}

	// Excluded filesystems get nothing.
	set, err = replication.TakeSnapshot(context.Background(), side, replication.SnapshotConfig{
		Recursive: true, Prefix: "hourly-", Now: now, Exclude: []*regexp.Regexp{regexp.MustCompile(`/b$`)}})
	if err != nil || !slices.Equal(set.Filesystems, []string{"tank", "tank/a"}) {
		t.Errorf("excluded: %+v %v", set, err)
	}
	if _, err := replication.TakeSnapshot(context.Background(), side, replication.SnapshotConfig{Prefix: "-x", Now: now}); err == nil {
		t.Error("a prefix starting with - was accepted")
	}
}
