package e2e

import (
	"slices"
	"strings"
	"testing"
)

// Restore and failback (README "Restore and failback"): the backup is
// replicated back with zrep run BACKUP SOURCE, and the normal direction
// goes on incrementally afterwards.

// backedUp makes SRC (root with a child, two snapshots, a file each) and
// replicates it with -r --initial all to DST, as a backup would have.
func backedUp(t *testing.T, src, dst string) {
	t.Helper()
	createFS(t, src, "home, first")
	createFS(t, src+"/kid", "kid, first")
	history(t, src, "s1")
	history(t, src+"/kid", "s1")
	writeFile(t, src, "f", "home, second")
	writeFile(t, src+"/kid", "f", "kid, second")
	history(t, src, "s2")
	history(t, src+"/kid", "s2")
	zrep(t, "run", "-r", "--initial", "all", side(src), side(dst)).mustExit(t, 0)
	mustMatch(t, dst, snapshots(t, src))
	mustMatch(t, dst+"/kid", snapshots(t, src+"/kid"))
}

// mount mounts fs (a received filesystem is not mounted: zfs receive -u).
func mount(t *testing.T, fs string) {
	t.Helper()
	machineOf(fs).script(t, `[ "$(zfs get -H -o value mounted "$1")" = yes ] || zfs mount "$1"`, fs)
}

// mustBeIncremental fails unless every filesystem of the Report has steps
// and every step has a from: nothing was sent in full.
func mustBeIncremental(t *testing.T, r result) {
	t.Helper()
	rep := r.report(t)
	if len(rep.Completed) == 0 {
		t.Fatalf("the Report has no filesystem:\n%s", r.stdout)
	}
	for _, f := range rep.Completed {
		if len(f.Steps) == 0 || slices.ContainsFunc(f.Steps, func(s stepReport) bool { return s.From == nil }) {
			t.Errorf("%s: steps %v, want incremental ones only", f.Filesystem, f.Steps)
		}
	}
}

// goesOn writes on the mounted source, snapshots it and backs it up: the
// backup goes on incrementally and ends equal to the source.
func goesOn(t *testing.T, src, dst, srcSide, dstSide, snap, data string) {
	t.Helper()
	for _, fs := range []string{src, src + "/kid"} {
		mount(t, fs)
		writeFile(t, fs, "f", data)
		history(t, fs, snap)
	}
	mustBeIncremental(t, zrep(t, "run", "-r", "--json", srcSide, dstSide).mustExit(t, 0))
	mustMatch(t, dst, snapshots(t, src))
	mustMatch(t, dst+"/kid", snapshots(t, src+"/kid"))
	if got := readFile(t, dst+"/kid", "f"); got != data {
		t.Errorf("%s/kid holds %q after the next backup, want %q", dst, got, data)
	}
}

// TestRestoreDestroyedSource: the source tree is destroyed; zrep run
// BACKUP SOURCE brings it back with the same guids and contents, and the
// next backup goes on incrementally.
func TestRestoreDestroyedSource(t *testing.T) {
	platformIndependent(t)
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/home", dp+"/home"
	backedUp(t, src, dst)
	destroy(t, src)

	zrep(t, "run", "-r", "--initial", "all", side(dst), side(src)).mustExit(t, 0)
	for _, fs := range []string{"", "/kid"} {
		mustMatch(t, src+fs, snapshots(t, dst+fs))
	}
	if got := readFile(t, src, "f"); got != "home, second" {
		t.Errorf("restored %s holds %q", src, got)
	}
	if got := readFile(t, src+"/kid", "f"); got != "kid, second" {
		t.Errorf("restored %s/kid holds %q", src, got)
	}
	goesOn(t, src, dst, side(src), side(dst), "s3", "after the restore")
}

// TestRestoreToANewPoolOverSSH: the backup is restored into a new pool on
// a machine reached over ssh, and that machine is then backed up
// incrementally to the same backup.
func TestRestoreToANewPoolOverSSH(t *testing.T) {
	sp, dp, np := newPool(t), newPool(t), newPool(t)
	src, dst, restored := sp+"/home", dp+"/home", np+"/home"
	backedUp(t, src, dst)

	zrep(t, "run", "-r", "--initial", "all", side(dst), remote(restored)).mustExit(t, 0)
	for _, fs := range []string{"", "/kid"} {
		mustMatch(t, restored+fs, snapshots(t, dst+fs))
	}
	if got := readFile(t, restored+"/kid", "f"); got != "kid, second" {
		t.Errorf("%s/kid holds %q", restored, got)
	}
	goesOn(t, restored, dst, remote(restored), side(dst), "s3", "on the new pool")
}

// TestFailbackAfterFailover: the backup side took over (new data, its own
// snapshot) while the old source, back again, took a snapshot of its own
// (its crontab line with --snapshot --hold, failing against the backup).
// Failback to the old source is refused without --rollback (exit 1,
// nothing destroyed) and works with it; then the normal direction goes on
// with nothing sent in full.
func TestFailbackAfterFailover(t *testing.T) {
	platformIndependent(t)
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/home", dp+"/home"
	backedUp(t, src, dst)

	// Failover: the backup tree is mounted and serves; before failing
	// back, its last state becomes a snapshot set.
	for _, fs := range []string{dst, dst + "/kid"} {
		mount(t, fs)
	}
	for _, fs := range []string{dst, dst + "/kid"} {
		writeFile(t, fs, "f", "written during the failover")
	}
	zrep(t, "snapshot", "-r", side(dst)).mustExit(t, 0)
	// The old source comes back, and its crontab line runs before it is
	// stopped: it snapshots what it has, and fails to send it to the
	// backup, which has diverged.
	for _, fs := range []string{src, src + "/kid"} {
		writeFile(t, fs, "f", "the old source's own")
	}
	cron := zrepUTC(t, "run", "-r", "--json", "--snapshot", "--hold", side(src), side(dst)).mustExit(t, 1)
	own := *cron.report(t).Snapshot
	before := map[string][]string{src: snapshots(t, src), src + "/kid": snapshots(t, src+"/kid")}
	for fs := range before {
		// Its set was not replicated: no hold of the run is left on it to
		// stop the failback's rollback.
		if refs, _ := property(t, fs+"@"+own, "userrefs"); refs != "0" {
			t.Errorf("%s@%s, not replicated, keeps %s holds", fs, own, refs)
		}
	}

	r := zrep(t, "run", "-r", side(dst), side(src)).mustExit(t, 1)
	if out := r.stdout + r.stderr; !strings.Contains(out, own) || !strings.Contains(out, "--rollback") {
		t.Errorf("the refusal does not name the old source's snapshot and --rollback:\n%s", out)
	}
	for fs, snaps := range before {
		mustMatch(t, fs, snaps)
		if got := readLive(t, fs, "f"); got != "the old source's own" {
			t.Errorf("%s holds %q after the refused failback", fs, got)
		}
	}

	zrep(t, "run", "-r", "--rollback", side(dst), side(src)).mustExit(t, 0)
	for _, fs := range []string{"", "/kid"} {
		mustMatch(t, src+fs, snapshots(t, dst+fs))
		if got := readFile(t, src+fs, "f"); got != "written during the failover" {
			t.Errorf("%s%s holds %q after the failback", src, fs, got)
		}
	}

	// Back to normal: the backup is a backup again, not mounted.
	for _, fs := range []string{dst + "/kid", dst} {
		zfs(t, "umount", fs)
	}
	goesOn(t, src, dst, side(src), side(dst), "s3", "after the failback")
}
