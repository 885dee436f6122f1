package replication_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zrep/zrep/pdu"
	"github.com/zrep/zrep/replication"
	"github.com/zrep/zrep/replication/memzfs"
)

// runSnapshotConfig is run --snapshot's set over tank at the clock's time.
func runSnapshotConfig(w *world) replication.SnapshotConfig {
	return replication.SnapshotConfig{Recursive: true, Prefix: "zrep_", Now: w.clock.Now(), LaterNames: 60, Clock: w.clock}
}

// TestTakeSnapshotNextNameWhenTaken: a second run in the same second finds
// its name taken in the listing and takes the set a second later under the
// next name, atomically, after waiting for that second.
func TestTakeSnapshotNextNameWhenTaken(t *testing.T) {
	w := newWorld(t, "tank/a")
	w.clock.now = w.clock.now.Add(300 * time.Millisecond)
	side := w.src.Sender("tank", true)
	first, err := replication.TakeSnapshot(context.Background(), side, runSnapshotConfig(w))
	if err != nil {
		t.Fatal(err)
	}
	second, err := replication.TakeSnapshot(context.Background(), side, runSnapshotConfig(w))
	if err != nil {
		t.Fatalf("the second set in the same second: %v", err)
	}
	if first.Name != "zrep_20250101T000000Z" || second.Name != "zrep_20250101T000001Z" || !second.Atomic {
		t.Errorf("sets %+v and %+v, want zrep_20250101T000000Z then zrep_20250101T000001Z", first, second)
	}
	if got, want := w.clock.Waits(), []time.Duration{700 * time.Millisecond}; !slices.Equal(got, want) {
		t.Errorf("waits %v, want %v: the name must not lie ahead of the clock", got, want)
	}
	for _, fs := range []string{"tank", "tank/a"} {
		assertSnapshots(t, w.src, fs, first.Name, second.Name)
	}
	var sets int
	for _, c := range w.src.Calls() {
		if strings.HasPrefix(c, "Snapshot ") {
			sets++
		}
	}
	if sets != 2 {
		t.Errorf("%d snapshot commands, want one per set: %v", sets, w.src.Calls())
	}
}

// TestTakeSnapshotNextNameAfterALostRace: the other run takes the name
// between this run's listing and its snapshot command; the command fails
// taking nothing, and the set is taken under the next name.
func TestTakeSnapshotNextNameAfterALostRace(t *testing.T) {
	w := newWorld(t, "tank/a", "tank/b")
	side := w.src.Sender("tank", true)
	raced := false
	w.src.Hook = func(op memzfs.Op, fs string) error {
		if op == memzfs.OpTakeSnapshots && !raced {
			raced = true
			w.src.Snapshot("tank/b", "zrep_20250101T000000Z")
		}
		return nil
	}
	set, err := replication.TakeSnapshot(context.Background(), side, runSnapshotConfig(w))
	if err != nil {
		t.Fatal(err)
	}
	if set.Name != "zrep_20250101T000001Z" || !slices.Equal(set.Filesystems, []string{"tank", "tank/a", "tank/b"}) {
		t.Errorf("set %+v", set)
	}
	assertSnapshots(t, w.src, "tank", set.Name)
	assertSnapshots(t, w.src, "tank/a", set.Name)
	assertSnapshots(t, w.src, "tank/b", "zrep_20250101T000000Z", set.Name)
}

// TestTakeSnapshotLaterNamesBounded: with every name of the allowed
// seconds taken, the set fails naming the first, and nothing is taken;
// without LaterNames (zrep snapshot) a taken name is an error at once.
func TestTakeSnapshotLaterNamesBounded(t *testing.T) {
	w := newWorld(t, "tank/a")
	side := w.src.Sender("tank", true)
	var taken []string
	for i := range 4 {
		taken = append(taken, replication.SnapshotName("zrep_", w.clock.now.Add(time.Duration(i)*time.Second)))
		w.src.Snapshot("tank/a", taken[i])
	}
	cfg := runSnapshotConfig(w)
	cfg.LaterNames = 3
	_, err := replication.TakeSnapshot(context.Background(), side, cfg)
	var nc *replication.NameCollisionError
	if !errors.As(err, &nc) || nc.Snapshot != "tank/a@"+taken[0] {
		t.Errorf("every name taken: %v", err)
	}
	cfg.LaterNames = 0
	if _, err := replication.TakeSnapshot(context.Background(), side, cfg); !errors.As(err, &nc) {
		t.Errorf("without later names: %v", err)
	}
	assertSnapshots(t, w.src, "tank")
	assertSnapshots(t, w.src, "tank/a", taken...)
	if len(w.clock.Waits()) != 0 {
		t.Errorf("waited %v for names that were never free", w.clock.Waits())
	}

	// A race lost on the last allowed name ends the tries too.
	cfg.LaterNames = 4
	w.src.Hook = func(op memzfs.Op, fs string) error {
		if op == memzfs.OpTakeSnapshots {
			w.src.Snapshot("tank", replication.SnapshotName("zrep_", w.clock.Now()))
		}
		return nil
	}
	_, err = replication.TakeSnapshot(context.Background(), side, cfg)
	if !errors.Is(err, pdu.ErrSnapshotExists) {
		t.Errorf("race lost on the last name: %v", err)
	}
}

// TestTakeSnapshotWaitEndsWithTheContext: a cancelled run does not wait
// for a later name.
func TestTakeSnapshotWaitEndsWithTheContext(t *testing.T) {
	w := newWorld(t)
	w.src.Snapshot("tank", replication.SnapshotName("zrep_", w.clock.now))
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := errors.New("stop")
	w.clock.onTimer = func(time.Duration) bool { cancel(stop); return false }
	if _, err := replication.TakeSnapshot(ctx, w.src.Sender("tank", true), runSnapshotConfig(w)); !errors.Is(err, stop) {
		t.Errorf("cancelled wait: %v", err)
	}
	assertSnapshots(t, w.src, "tank", replication.SnapshotName("zrep_", w.clock.now))
}

// destination is one of several backup machines of one source.
type destination struct {
	z  *memzfs.ZFS
	id string
}

// cronRound is one crontab line's run: run --snapshot --hold --keep-source
// last=1 --keep-dest last=2 from w.src to d.
func cronRound(t *testing.T, w *world, d destination) (*replication.Report, *replication.SnapshotSet) {
	t.Helper()
	set := takeHeldSet(t, w, d)
	return replicateAndPrune(t, w, d), set
}

// takeHeldSet is run --snapshot --hold's first part: the set, held for d.
func takeHeldSet(t *testing.T, w *world, d destination) *replication.SnapshotSet {
	t.Helper()
	src := w.src.Sender("tank", true)
	set, err := replication.TakeSnapshot(context.Background(), src, runSnapshotConfig(w))
	if err != nil {
		t.Fatalf("snapshot for destination %s: %v", d.id, err)
	}
	if err := replication.HoldSet(context.Background(), src, set, replication.HoldTag(d.id)); err != nil {
		t.Fatalf("hold the set for destination %s: %v", d.id, err)
	}
	return set
}

// replicateAndPrune is the rest of the run: replicate to d, then move the
// hold and prune with --keep-source last=1 --keep-dest last=2.
func replicateAndPrune(t *testing.T, w *world, d destination) *replication.Report {
	t.Helper()
	src := w.src.Sender("tank", true)
	cfg := w.config()
	cfg.CursorID = d.id
	r := replication.NewReplication(cfg)
	dst := d.z.Receiver("backup/tank", true)
	r.Drive(context.Background(), src, dst)
	r.Prune(context.Background(), src, dst, replication.PruneOptions{Retention: retention(t, "last=1", "last=2"), Hold: true})
	rep := r.Report()
	if rep.Status != replication.Completed.String() || rep.Failed() {
		t.Fatalf("run to destination %s: %+v", d.id, allFilesystems(rep)["tank"])
	}
	return rep
}

// TestFreshSetHeldUntilReplicated: while one destination's run has taken
// its set and not yet replicated it, the other destination's run (later
// set, --keep-source last=1) leaves it alone: it is held; the first run
// then replicates it and moves its hold there.
func TestFreshSetHeldUntilReplicated(t *testing.T) {
	w := newWorld(t, "tank/a")
	dests := []destination{{memzfs.New(), "00000000000000aa"}, {memzfs.New(), "00000000000000bb"}}
	for _, d := range dests {
		d.z.CreateFilesystem("backup")
		cronRound(t, w, d)
		w.clock.now = w.clock.Now().Add(time.Minute)
	}
	slow := takeHeldSet(t, w, dests[0])
	guids := map[string]uint64{}
	for _, fs := range []string{"tank", "tank/a"} {
		guids[fs] = find(w.src.Versions(fs), slow.Name).Guid
	}
	rep, _ := cronRound(t, w, dests[1])
	for _, fs := range []string{"tank", "tank/a"} {
		if f := allFilesystems(rep)[fs]; !slices.Contains(f.Held.Source, slow.Name) {
			t.Errorf("%s: the other run's fresh set %s is not reported held: %+v", fs, slow.Name, f.Held)
		}
	}
	replicateAndPrune(t, w, dests[0])
	for _, fs := range []string{"tank", "tank/a"} {
		if dv := find(dests[0].z.Versions("backup/"+fs), slow.Name); dv == nil || dv.Guid != guids[fs] {
			t.Errorf("%s@%s did not reach its destination: %v", fs, slow.Name, dv)
		}
	}
}

// TestTwoDestinationsInTheSameSecond: two destinations, each its own
// crontab line, started in the same second, round after round: each takes
// its own set, goes on incrementally, and the source keeps each one's
// base under its hold.
func TestTwoDestinationsInTheSameSecond(t *testing.T) {
	for _, bookmarks := range []bool{false, true} {
		t.Run(fmt.Sprintf("bookmarks=%v", bookmarks), func(t *testing.T) {
			w := newWorld(t, "tank/a")
			w.src.NoBookmarks = !bookmarks
			dests := []destination{{memzfs.New(), "00000000000000aa"}, {memzfs.New(), "00000000000000bb"}}
			for _, d := range dests {
				d.z.CreateFilesystem("backup")
			}
			for round := range 3 {
				start := w.clock.Now()
				var names []string
				for _, d := range dests {
					// The second line starts in the first one's second.
					w.clock.now = start
					rep, set := cronRound(t, w, d)
					names = append(names, set.Name)
					for _, fs := range []string{"tank", "tank/a"} {
						f := allFilesystems(rep)[fs]
						if round > 0 && (len(f.Steps) == 0 || f.Steps[0].From == nil) {
							t.Errorf("round %d, destination %s, %s: sent in full: %s", round, d.id, fs, stepsText(f))
						}
						dfs := "backup/" + fs
						if got := d.z.SnapshotNames(dfs); len(got) == 0 || got[len(got)-1] != set.Name {
							t.Errorf("round %d: %s on %s has %v, want %s newest", round, dfs, d.id, got, set.Name)
						}
					}
				}
				if names[0] == names[1] {
					t.Fatalf("round %d: both runs took %s", round, names[0])
				}
				// Every destination's base is on the source, held for it,
				// with the guid the destination has.
				for _, d := range dests {
					for _, fs := range []string{"tank", "tank/a"} {
						base := newest(d.z.Versions("backup/" + fs))
						sv := find(w.src.Versions(fs), base.Name)
						if sv == nil || sv.Guid != base.Guid {
							t.Fatalf("round %d: the source lost %s@%s, the base of %s", round, fs, base.Name, d.id)
						}
						if tags := w.src.Holds(fs, base.Name); !slices.Contains(tags, replication.HoldTag(d.id)) {
							t.Errorf("round %d: %s@%s holds %v, want %s", round, fs, base.Name, tags, replication.HoldTag(d.id))
						}
					}
				}
				w.clock.now = w.clock.Now().Add(time.Minute)
			}
		})
	}
}

func newest(vs []*pdu.FilesystemVersion) *pdu.FilesystemVersion {
	var n *pdu.FilesystemVersion
	for _, v := range vs {
		if v.Type == pdu.Snapshot && (n == nil || v.CreateTXG > n.CreateTXG) {
			n = v
		}
	}
	return n
}

func find(vs []*pdu.FilesystemVersion, name string) *pdu.FilesystemVersion {
	for _, v := range vs {
		if v.Type == pdu.Snapshot && v.Name == name {
			return v
		}
	}
	return nil
}

// TestPlanSnapshotNamesTheNextFreeName: plan --snapshot shows the name a
// run would take, the next free one, and takes and waits for nothing.
func TestPlanSnapshotNamesTheNextFreeName(t *testing.T) {
	w := newWorld(t, "tank/a")
	w.src.Snapshot("tank/a", "zrep_20250101T000000Z")
	w.src.Snapshot("tank", "zrep_20250101T000001Z")
	calls := len(w.src.Calls())
	set, err := replication.PlanSnapshot(context.Background(), w.sender(), runSnapshotConfig(w))
	if err != nil || set.Name != "zrep_20250101T000002Z" {
		t.Fatalf("planned %+v, %v; want zrep_20250101T000002Z", set, err)
	}
	if got := w.src.Calls()[calls:]; slices.ContainsFunc(got, func(c string) bool { return strings.HasPrefix(c, "Snapshot ") }) || len(w.clock.Waits()) != 0 {
		t.Errorf("planning took or waited: calls %v, waits %v", got, w.clock.Waits())
	}
}

// TestReleaseUnreplicatedSet: where the run's set was not replicated (the
// filesystem failed), its hold comes off, so that it cannot block a later
// rollback or pruning; where it was, the hold stays on the new base.
func TestReleaseUnreplicatedSet(t *testing.T) {
	w := newWorld(t, "tank/a")
	d := destination{w.dst, "00000000000000aa"}
	tag := replication.HoldTag(d.id)
	set := takeHeldSet(t, w, d)
	w.dst.Hook = func(op memzfs.Op, fs string) error {
		if op == memzfs.OpReceive && fs == "backup/tank/a" {
			return pdu.PermanentError(errors.New("out of space"))
		}
		return nil
	}
	cfg := w.config()
	cfg.CursorID = d.id
	r := replication.NewReplication(cfg)
	r.Drive(context.Background(), w.sender(), w.receiver())
	r.Prune(context.Background(), w.sender(), w.receiver(), replication.PruneOptions{Hold: true})
	rep := r.Report()
	if !rep.Failed() {
		t.Fatalf("tank/a should have failed: %+v", allFilesystems(rep)["tank/a"])
	}
	if err := replication.ReleaseUnreplicatedSet(context.Background(), w.src.Sender("tank", true), set, tag, rep); err != nil {
		t.Fatal(err)
	}
	if got := w.src.Holds("tank", set.Name); !slices.Equal(got, []string{tag}) {
		t.Errorf("replicated tank@%s holds %v, want %s", set.Name, got, tag)
	}
	if got := w.src.Holds("tank/a", set.Name); len(got) != 0 {
		t.Errorf("unreplicated tank/a@%s still holds %v", set.Name, got)
	}
}

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
