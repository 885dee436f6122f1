package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// Snapshots, retention and holds (SPEC section 8). Histories are made of
// names that carry past times, and zrep runs with TZ=UTC, so that what a
// policy keeps does not depend on when or where the test runs.

var utc = []string{"TZ=UTC"}

// zrepUTC runs zrep with TZ=UTC.
func zrepUTC(t *testing.T, args ...string) result {
	t.Helper()
	return zrepCtx(t.Context(), t, utc, args...)
}

// hourlyNames are n zrep names an hour apart from start (UTC).
func hourlyNames(start time.Time, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = "zrep_" + start.Add(time.Duration(i)*time.Hour).UTC().Format("20060102T150405Z")
	}
	return names
}

// history snapshots fs with each of names, in order, in one script.
func history(t *testing.T, fs string, names ...string) {
	t.Helper()
	machineOf(fs).script(t, `fs=$1; shift; for n in "$@"; do zfs snapshot "$fs@$n"; done`, append([]string{fs}, names...)...)
}

// snapshotNames lists fs's snapshot names in creation order.
func snapshotNames(t *testing.T, fs string) []string {
	t.Helper()
	var names []string
	for _, s := range snapshots(t, fs) {
		n, _, _ := strings.Cut(s, "=")
		names = append(names, n)
	}
	return names
}

func mustNames(t *testing.T, fs string, want []string) {
	t.Helper()
	if got := snapshotNames(t, fs); !slices.Equal(got, want) {
		t.Errorf("snapshots of %s:\n got %v\nwant %v", fs, got, want)
	}
}

// concat joins name lists.
func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

var day1 = time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)

// TestRetentionThreeDaysOfHourlySnapshots: 72 hourly snapshots, thinned
// to hourly=24,daily=7 on the source and hourly=48,daily=30 on the
// destination.
func TestRetentionThreeDaysOfHourlySnapshots(t *testing.T) {
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/h", dp+"/h"
	createFS(t, src, "x")
	all := hourlyNames(day1, 72)
	history(t, src, all...)

	r := zrepUTC(t, "run", "--json", "--initial", "all", "--keep-source", "hourly=24,daily=7", "--keep-dest", "hourly=48,daily=30",
		side(src), side(dst)).mustExit(t, 0)
	// The source keeps the 24 hours of 29 November and the last of each
	// earlier day; the destination two whole days and the last of 27.
	wantSrc := concat([]string{all[23], all[47]}, all[48:])
	wantDst := concat([]string{all[23]}, all[24:])
	mustNames(t, src, wantSrc)
	mustNames(t, dst, wantDst)
	fs := r.report(t).filesystem(t, src)
	if len(fs.Pruned.Source) != 72-26 || len(fs.Pruned.Destination) != 72-49 {
		t.Errorf("report pruned %d on source, %d on destination; want 46 and 23", len(fs.Pruned.Source), len(fs.Pruned.Destination))
	}
	// The survivors on the destination are the replicated ones, by guid.
	srcGuids := map[string]bool{}
	for _, s := range snapshots(t, src) {
		srcGuids[s] = true
	}
	for _, s := range snapshots(t, dst) {
		if n, _, _ := strings.Cut(s, "="); slices.Contains(wantSrc, n) && !srcGuids[s] {
			t.Errorf("destination %s does not share the source's guid", s)
		}
	}
	// A second prune changes nothing.
	r = zrepUTC(t, "prune", "--json", "--keep-source", "hourly=24,daily=7", "--keep-dest", "hourly=48,daily=30", side(src), side(dst)).mustExit(t, 0)
	if slices.Contains(r.subcommands("source"), "destroy") || slices.Contains(r.subcommands("destination"), "destroy") {
		t.Errorf("pruning again destroyed something: %v", r.argv)
	}
}

// TestSnapshotAtomicSetOver50Filesystems: zrep snapshot -r takes one
// snapshot of 51 filesystems in one command, all in one transaction
// group; with one excluded, OpenZFS still takes the rest in one command,
// while zfs-fuse, which takes one name per command, says the set is not
// atomic.
func TestSnapshotAtomicSetOver50Filesystems(t *testing.T) {
	sp := newPool(t)
	root := sp + "/tree"
	machineOf(root).script(t, `zfs create -o mountpoint=none "$1"; for i in $(seq -w 1 50); do zfs create "$1/fs$i"; done`, root)

	r := zrepUTC(t, "snapshot", "-r", "--json", side(root)).mustExit(t, 0)
	var set struct {
		Snapshot    string   `json:"snapshot"`
		Filesystems []string `json:"filesystems"`
		Atomic      bool     `json:"atomic"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &set); err != nil {
		t.Fatalf("zrep snapshot --json: %v\n%s", err, r.stdout)
	}
	if len(set.Filesystems) != 51 || !set.Atomic || !strings.HasPrefix(set.Snapshot, "zrep_") {
		t.Fatalf("set %+v", set)
	}
	if n := countSub(r, "snapshot"); n != 1 {
		t.Errorf("%d zfs snapshot commands, want 1 (zfs snapshot -r)", n)
	}
	if txgs := createTXGs(t, root, set.Snapshot); len(txgs) != 1 || txgs[0] == "" {
		t.Errorf("the set's snapshots have createtxg %v, want one", txgs)
	}

	// With one filesystem excluded, -r cannot be used.
	waitNextSecond(set.Snapshot)
	r = zrepUTC(t, "snapshot", "-r", "--json", "--exclude", "/fs07$", side(root)).mustExit(t, 0)
	if err := json.Unmarshal([]byte(r.stdout), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Filesystems) != 50 || exists(t, root+"/fs07@"+set.Snapshot) {
		t.Fatalf("excluded set %+v", set)
	}
	txgs := createTXGs(t, root, set.Snapshot)
	if machineOf(root).platform == "openzfs" {
		if !set.Atomic || countSub(r, "snapshot") != 1 || len(txgs) != 1 {
			t.Errorf("OpenZFS: atomic %v in %d commands, createtxgs %v; want one command, one txg", set.Atomic, countSub(r, "snapshot"), txgs)
		}
	} else if set.Atomic || countSub(r, "snapshot") != 50 || !strings.Contains(r.stderr, "not atomic") {
		t.Errorf("zfs-fuse: atomic %v in %d commands; want 50 commands, said to be not atomic:\n%s", set.Atomic, countSub(r, "snapshot"), r.stderr)
	}
}

func countSub(r result, sub string) int {
	n := 0
	for _, c := range r.argv {
		if len(c.Argv) > 1 && c.Argv[1] == sub {
			n++
		}
	}
	return n
}

// createTXGs are the distinct createtxgs of snapshot name under root.
func createTXGs(t *testing.T, root, name string) []string {
	t.Helper()
	out := zfs(t, "get", "-H", "-p", "-r", "-o", "name,value", "createtxg", root)
	var txgs []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		n, v, _ := strings.Cut(line, "\t")
		if strings.HasSuffix(n, "@"+name) && !slices.Contains(txgs, v) {
			txgs = append(txgs, v)
		}
	}
	return txgs
}

// waitNextSecond waits until the clock has left the second of a snapshot
// name, so that the next set gets another name.
func waitNextSecond(name string) {
	ts, err := time.Parse("20060102T150405Z", name[len(name)-16:])
	if err != nil {
		panic(err)
	}
	waitUntil(5*time.Second, func() bool { return time.Now().After(ts.Add(time.Second)) })
}

// TestSnapshotNameCollision: when the name is taken on one filesystem,
// zrep snapshot says which and takes nothing.
func TestSnapshotNameCollision(t *testing.T) {
	platformIndependent(t)
	sp := newPool(t)
	root := sp + "/c"
	const kids = 60
	m := machineOf(root)
	m.script(t, `zfs create -o mountpoint=none "$1"; for i in $(seq -w 0 $(($2 - 1))); do zfs create "$1/k$i"; done`, root, fmt.Sprint(kids))
	// The names of the coming minute are taken, one second on each child,
	// in one command where the platform allows.
	now := time.Now().UTC()
	var taken []string
	for i := range kids {
		taken = append(taken, fmt.Sprintf("%s/k%02d@zrep_%s", root, i, now.Add(time.Duration(i)*time.Second).Format("20060102T150405Z")))
	}
	if m.platform == "openzfs" {
		m.must(t, append([]string{"zfs", "snapshot"}, taken...)...)
	} else {
		m.script(t, `for s in "$@"; do zfs snapshot "$s"; done`, taken...)
	}

	r := zrepUTC(t, "snapshot", "-r", side(root)).mustExit(t, 1)
	if !strings.Contains(r.stderr, root+"/k") || !strings.Contains(r.stderr, "@zrep_") || !strings.Contains(r.stderr, "already exists") || !strings.Contains(r.stderr, "nothing was taken") {
		t.Errorf("the error does not name the taken snapshot:\n%s", r.stderr)
	}
	if n := countSub(r, "snapshot"); n != 0 {
		t.Errorf("%d zfs snapshot commands ran", n)
	}
	got := strings.Fields(zfs(t, "list", "-H", "-o", "name", "-t", "snapshot", "-r", root))
	slices.Sort(got)
	if !slices.Equal(got, taken) {
		t.Errorf("snapshots under %s after the refused set:\n got %v\nwant %v", root, got, taken)
	}
}

// TestPruneDestinationBehindLastOne: with last=1 on both sides and a
// destination behind, the newest common snapshot stays on both sides and
// the source keeps every snapshot not yet replicated.
func TestPruneDestinationBehindLastOne(t *testing.T) {
	platformIndependent(t)
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/b", dp+"/b"
	createFS(t, src, "x")
	names := hourlyNames(day1, 6)
	history(t, src, names[:4]...)
	zrepUTC(t, "run", "--initial", "all", side(src), side(dst)).mustExit(t, 0)
	history(t, src, names[4:]...)

	r := zrepUTC(t, "prune", "--json", "--keep-source", "last=1", "--keep-dest", "last=1", side(src), side(dst)).mustExit(t, 0)
	mustNames(t, src, names[3:])
	mustNames(t, dst, names[3:4])
	var rep struct {
		Filesystems []struct {
			Pruned sides `json:"pruned"`
		} `json:"filesystems"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || len(rep.Filesystems) != 1 {
		t.Fatalf("prune --json: %v\n%s", err, r.stdout)
	}
	if p := rep.Filesystems[0].Pruned; !slices.Equal(p.Source, names[:3]) || !slices.Equal(p.Destination, names[:3]) {
		t.Errorf("pruned %+v, want %v on both sides", p, names[:3])
	}
}

// TestPruneSkipsHeldSnapshots: a snapshot another tool holds is left and
// reported, and is no failure.
func TestPruneSkipsHeldSnapshots(t *testing.T) {
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/h", dp+"/h"
	createFS(t, src, "x")
	names := hourlyNames(day1, 4)
	history(t, src, names...)
	zfs(t, "hold", "othertool", src+"@"+names[0])
	t.Cleanup(func() { machineOf(src).ok("zfs", "release", "othertool", src+"@"+names[0]) })

	r := zrepUTC(t, "run", "--json", "--initial", "all", "--keep-source", "last=1", side(src), side(dst)).mustExit(t, 0)
	mustNames(t, src, []string{names[0], names[3]})
	fs := r.report(t).filesystem(t, src)
	if !slices.Equal(fs.Held.Source, names[:1]) || !slices.Equal(fs.Pruned.Source, names[1:3]) || fs.Problem != "" {
		t.Errorf("report: pruned %+v held %+v problem %q", fs.Pruned, fs.Held, fs.Problem)
	}
}

// TestRunPrunesNothingOnAFailedFilesystem: a filesystem whose replication
// fails keeps every snapshot on both sides; the others are pruned.
func TestRunPrunesNothingOnAFailedFilesystem(t *testing.T) {
	platformIndependent(t)
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/t", dp+"/t"
	createFS(t, src+"/a", "a")
	createFS(t, src+"/b", "b")
	names := hourlyNames(day1, 5)
	history(t, src+"/a", names[:3]...)
	history(t, src+"/b", names[:3]...)
	zrepUTC(t, "run", "-r", "--initial", "all", "--exclude", "^"+sp+"/t$", side(src), side(dst)).mustExit(t, 0)
	history(t, src+"/a", names[3:]...)
	history(t, src+"/b", names[3:]...)
	// The destination of b changes after its newest snapshot: without
	// --rollback its replication fails.
	writeLiveChange(t, dst+"/b")
	srcB, dstB := snapshotNames(t, src+"/b"), snapshotNames(t, dst+"/b")

	r := zrepUTC(t, "run", "-r", "--json", "--exclude", "^"+sp+"/t$", "--keep-source", "last=1", "--keep-dest", "last=1",
		side(src), side(dst)).mustExit(t, 1)
	mustNames(t, src+"/b", srcB)
	mustNames(t, dst+"/b", dstB)
	mustNames(t, src+"/a", names[4:])
	mustNames(t, dst+"/a", names[4:])
	if fs := r.report(t).filesystem(t, src+"/b"); fs.Status != "PermanentError" || len(fs.Pruned.Source)+len(fs.Pruned.Destination) != 0 {
		t.Errorf("b: %s, pruned %+v", fs.Status, fs.Pruned)
	}
}

// writeLiveChange writes a file into fs, mounting it for the moment.
func writeLiveChange(t *testing.T, fs string) {
	t.Helper()
	machineOf(fs).script(t, `
mp=$(zfs get -H -o value mountpoint "$1")
[ "$(zfs get -H -o value mounted "$1")" = yes ] || zfs mount "$1"
echo changed >"$mp/local-change"; sync
zfs umount "$1" || true`, fs)
}

// TestPruneLeavesPlaceholders: the snapshots on a placeholder (here one
// made by hand) are never pruned.
func TestPruneLeavesPlaceholders(t *testing.T) {
	platformIndependent(t)
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/p", dp+"/p"
	createFS(t, src+"/kid", "k")
	names := hourlyNames(day1, 3)
	history(t, src+"/kid", names...)
	zrepUTC(t, "run", "-r", "--initial", "all", side(src), side(dst)).mustExit(t, 0)
	if v, s := property(t, dst, "zrep:placeholder"); v != "on" || s != "local" {
		t.Fatalf("%s is no placeholder: %s (%s)", dst, v, s)
	}
	history(t, dst, names...)

	zrepUTC(t, "prune", "-r", "--keep-dest", "last=1", side(src), side(dst)).mustExit(t, 0)
	mustNames(t, dst, names)
	mustNames(t, dst+"/kid", names[2:])
}

// TestPruneNeverOutsideSourceAndDestination: siblings of SRC and DST with
// the same snapshot names are left alone, and no destroy names them.
func TestPruneNeverOutsideSourceAndDestination(t *testing.T) {
	platformIndependent(t)
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/in", dp+"/in"
	createFS(t, src, "x")
	createFS(t, src+"/kid", "k")
	createFS(t, sp+"/inside", "sibling sharing a prefix")
	createFS(t, dp+"/in2", "y")
	names := hourlyNames(day1, 3)
	for _, fs := range []string{src, src + "/kid", sp + "/inside"} {
		history(t, fs, names...)
	}
	zrepUTC(t, "run", "--initial", "all", side(src), side(dst)).mustExit(t, 0)
	history(t, dp+"/in2", names...)

	// Not recursive: src/kid is outside too.
	r := zrepUTC(t, "prune", "--keep-source", "last=1", "--keep-dest", "last=1", side(src), side(dst)).mustExit(t, 0)
	for _, fs := range []string{src + "/kid", sp + "/inside", dp + "/in2"} {
		mustNames(t, fs, names)
	}
	mustNames(t, src, names[2:])
	mustNames(t, dst, names[2:])
	for _, c := range r.argv {
		if len(c.Argv) > 2 && c.Argv[1] == "destroy" {
			if target := c.Argv[len(c.Argv)-1]; !strings.HasPrefix(target, src+"@") && !strings.HasPrefix(target, dst+"@") {
				t.Errorf("destroy outside SRC and DST: %s", c)
			}
		}
	}
}

// TestPruneLeavesForeignSnapshots: under the default --prune-match only
// zrep's names are candidates; --prune-match takes over another tool's.
func TestPruneLeavesForeignSnapshots(t *testing.T) {
	platformIndependent(t)
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/f", dp+"/f"
	createFS(t, src, "x")
	ours := hourlyNames(day1, 3)
	theirs := []string{"autosnap_2026-11-27_00:30:00_hourly", "autosnap_2026-11-27_01:30:00_hourly"}
	history(t, src, ours[0], theirs[0], "before-upgrade", ours[1], theirs[1], ours[2])
	zrepUTC(t, "run", "--initial", "all", side(src), side(dst)).mustExit(t, 0)

	zrepUTC(t, "prune", "--keep-source", "last=1", "--keep-dest", "last=1", side(src), side(dst)).mustExit(t, 0)
	want := []string{theirs[0], "before-upgrade", theirs[1], ours[2]}
	mustNames(t, src, want)
	mustNames(t, dst, want)

	zrepUTC(t, "prune", "--keep-source", "last=1", "--prune-match", "^autosnap_", side(src), side(dst)).mustExit(t, 0)
	mustNames(t, src, []string{"before-upgrade", theirs[1], ours[2]})
	mustNames(t, dst, want)
}

// TestHoldStopsAnOutsideDestroy: --hold keeps zrep's hold on the newest
// replicated snapshot, so a plain zfs destroy of it fails; the next run
// moves the hold forward and the old base can go.
func TestHoldStopsAnOutsideDestroy(t *testing.T) {
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/hold", dp+"/hold"
	createFS(t, src, "x")
	names := hourlyNames(day1, 2)
	history(t, src, names[0])
	t.Cleanup(func() { releaseAll(t, src) })
	zrepUTC(t, "run", "--hold", side(src), side(dst)).mustExit(t, 0)
	if v, _ := property(t, src+"@"+names[0], "userrefs"); v != "1" {
		t.Fatalf("userrefs of the replicated snapshot: %s, want 1", v)
	}
	if machineOf(src).ok("zfs", "destroy", src+"@"+names[0]) {
		t.Fatal("zfs destroy of the held incremental base succeeded")
	}

	history(t, src, names[1])
	zrepUTC(t, "run", "--hold", side(src), side(dst)).mustExit(t, 0)
	if v, _ := property(t, src+"@"+names[1], "userrefs"); v != "1" {
		t.Errorf("userrefs of the new base: %s, want 1", v)
	}
	if v, _ := property(t, src+"@"+names[0], "userrefs"); v != "0" {
		t.Errorf("userrefs of the old base: %s, want 0", v)
	}
	if !machineOf(src).ok("zfs", "destroy", src+"@"+names[0]) {
		t.Error("the old base is still held")
	}
	if machineOf(src).ok("zfs", "destroy", src+"@"+names[1]) {
		t.Error("zfs destroy of the new base succeeded")
	}
}

// releaseAll releases zrep's holds under fs so that its pool can go.
func releaseAll(t *testing.T, fs string) {
	machineOf(fs).run(t.Context(), nil, "bash", "-c", `
for s in $(zfs list -H -o name -t snapshot -r "$1"); do
  for tag in $(zfs holds -H "$s" 2>/dev/null | cut -f2); do zfs release "$tag" "$s"; done
done; true`, "release", fs)
}

// TestCronTwiceWithSnapshotAndRetention: the crontab line run twice: each
// run takes a set, sends one step per filesystem after the first, and
// prunes what the policies say.
func TestCronTwiceWithSnapshotAndRetention(t *testing.T) {
	platformIndependent(t)
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/cron", dp+"/cron"
	createFS(t, src, "x")
	createFS(t, src+"/kid", "k")
	old := hourlyNames(day1, 3)
	history(t, src, old...)
	history(t, src+"/kid", old...)
	cron := []string{"run", "-r", "--json", "--snapshot", "--keep-source", "last=2", "--keep-dest", "last=3", side(src), side(dst)}

	r1 := zrepUTC(t, cron...).mustExit(t, 0)
	rep1 := r1.report(t)
	if rep1.Snapshot == nil {
		t.Fatalf("the Report names no snapshot:\n%s", r1.stdout)
	}
	n1 := *rep1.Snapshot
	for _, fs := range []string{src, src + "/kid"} {
		// The new set is the newest: the first run sends it in full
		// (--initial newest), then the source keeps it and the newest
		// old one.
		mustNames(t, fs, []string{old[2], n1})
		mustNames(t, dst+strings.TrimPrefix(fs, src), []string{n1})
		if f := rep1.filesystem(t, fs); !slices.Equal(f.Pruned.Source, old[:2]) {
			t.Errorf("%s: first run pruned %v on the source, want %v", fs, f.Pruned.Source, old[:2])
		}
	}

	waitNextSecond(n1)
	r2 := zrepUTC(t, cron...).mustExit(t, 0)
	rep2 := r2.report(t)
	if rep2.Snapshot == nil || *rep2.Snapshot == n1 {
		t.Fatalf("second run's snapshot: %v", rep2.Snapshot)
	}
	n2 := *rep2.Snapshot
	for _, fs := range []string{src, src + "/kid"} {
		f := rep2.filesystem(t, fs)
		if len(f.Steps) != 1 || f.Steps[0].From == nil || *f.Steps[0].From != n1 || f.Steps[0].To != n2 {
			t.Errorf("%s: second run's steps %v, want %s>%s", fs, f.Steps, n1, n2)
		}
		if !slices.Equal(f.Pruned.Source, old[2:]) || len(f.Pruned.Destination) != 0 {
			t.Errorf("%s: second run pruned %+v, want %s on the source only", fs, f.Pruned, old[2])
		}
		mustNames(t, fs, []string{n1, n2})
		mustNames(t, dst+strings.TrimPrefix(fs, src), []string{n1, n2})
	}
	if n := countSub(r2, "snapshot"); n != 1 {
		t.Errorf("second run ran %d zfs snapshot commands, want 1", n)
	}
}

// TestPlanShowsSnapshotAndPruningAndChangesNothing: plan with the crontab
// flags names the set it would take and what it would prune, and runs no
// snapshot, destroy or hold (assertSafe checks the argv log of plan).
func TestPlanShowsSnapshotAndPruningAndChangesNothing(t *testing.T) {
	platformIndependent(t)
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/plan", dp+"/plan"
	createFS(t, src, "x")
	names := hourlyNames(day1, 4)
	history(t, src, names...)
	zrepUTC(t, "run", "--initial", "all", side(src), side(dst)).mustExit(t, 0)
	before, beforeDst := snapshots(t, src), snapshots(t, dst)

	r := zrepUTC(t, "plan", "--json", "--snapshot", "--hold", "--keep-source", "last=1", "--keep-dest", "last=2", side(src), side(dst)).mustExit(t, 0)
	var plan struct {
		Snapshot    *string `json:"snapshot"`
		Filesystems []struct {
			Steps []struct {
				To string `json:"to"`
			} `json:"steps"`
			Pruned sides `json:"pruned"`
		} `json:"filesystems"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil || plan.Snapshot == nil || len(plan.Filesystems) != 1 {
		t.Fatalf("plan --json: %v\n%s", err, r.stdout)
	}
	f := plan.Filesystems[0]
	if len(f.Steps) != 1 || f.Steps[0].To != *plan.Snapshot {
		t.Errorf("plan steps %+v, want one to %s", f.Steps, *plan.Snapshot)
	}
	if !slices.Equal(f.Pruned.Source, names) || !slices.Equal(f.Pruned.Destination, names[:3]) {
		t.Errorf("plan would prune %+v; want all four old ones on the source, three on the destination", f.Pruned)
	}
	for _, sub := range []string{"snapshot", "destroy", "hold", "release"} {
		if n := countSub(r, sub); n != 0 {
			t.Errorf("plan ran zfs %s %d times", sub, n)
		}
	}
	mustMatch(t, src, before)
	mustMatch(t, dst, beforeDst)
}
