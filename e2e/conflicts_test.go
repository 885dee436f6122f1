package e2e

import (
	"strings"
	"testing"
)

// replicated makes src with snapshots s1 and s2 and replicates it to dst.
func replicated(t *testing.T) (src, dst string) {
	t.Helper()
	sp, dp := newPool(t), newPool(t)
	src, dst = sp+"/c", dp+"/c"
	createFS(t, src, "one")
	snapshot(t, src, "s1")
	writeFile(t, src, "f", "two")
	snapshot(t, src, "s2")
	zrep(t, "run", "--initial", "all", side(src), side(dst)).mustExit(t, 0)
	mustMatch(t, dst, snapshots(t, src))
	return src, dst
}

func TestDivergedDestination(t *testing.T) {
	src, dst := replicated(t)
	snapshot(t, dst, "local")
	writeFile(t, src, "f", "three")
	snapshot(t, src, "s3")
	before := snapshots(t, dst)

	for _, cmd := range []string{"plan", "run"} {
		r := zrep(t, cmd, side(src), side(dst)).mustExit(t, 1)
		out := r.stdout + r.stderr
		for _, want := range []string{"local", "s2", "--rollback"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: the message lacks %q:\n%s", cmd, want, out)
			}
		}
		mustMatch(t, dst, before)
	}

	zrep(t, "run", "--rollback", side(src), side(dst)).mustExit(t, 0)
	mustMatch(t, dst, snapshots(t, src))
	if got := readFile(t, dst, "f"); got != "three" {
		t.Fatalf("after rollback the destination holds %q", got)
	}
}

func TestUnrelatedDestination(t *testing.T) {
	platformIndependent(t)
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/u", dp+"/u"
	createFS(t, src, "source")
	snapshot(t, src, "s1")
	createFS(t, dst, "someone else's")
	snapshot(t, dst, "theirs")
	before := snapshots(t, dst)

	for _, args := range [][]string{{"plan"}, {"run"}, {"run", "--rollback"}} {
		r := zrep(t, append(args, side(src), side(dst))...).mustExit(t, 1)
		if !strings.Contains(r.stdout+r.stderr, "theirs") {
			t.Errorf("%v: the message does not name the destination's snapshot:\n%s%s", args, r.stdout, r.stderr)
		}
		mustMatch(t, dst, before)
		if got := readLive(t, dst, "f"); got != "someone else's" {
			t.Fatalf("%v: destination data changed to %q", args, got)
		}
	}
}

func TestExistingDestinationWithoutSnapshots(t *testing.T) {
	platformIndependent(t)
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/e", dp+"/e"
	createFS(t, src, "source")
	snapshot(t, src, "s1")
	createFS(t, dst, "precious")

	zrep(t, "run", side(src), side(dst)).mustExit(t, 1)
	if got := readLive(t, dst, "f"); got != "precious" {
		t.Fatalf("destination data changed to %q", got)
	}
	zrep(t, "run", "--rollback", side(src), side(dst)).mustExit(t, 0)
	mustMatch(t, dst, snapshots(t, src))
}

func TestModifiedDestination(t *testing.T) {
	src, dst := replicated(t)
	zfs(t, "mount", dst)
	writeFile(t, dst, "f", "changed on the destination")
	zfs(t, "umount", dst)
	writeFile(t, src, "f", "three")
	snapshot(t, src, "s3")
	before := snapshots(t, dst)

	r := zrep(t, "run", side(src), side(dst)).mustExit(t, 1)
	out := r.stdout + r.stderr
	if !strings.Contains(out, "modified") || !strings.Contains(out, "--rollback") {
		t.Errorf("the message does not say the destination was modified and how to proceed:\n%s", out)
	}
	mustMatch(t, dst, before)
	if got := readLive(t, dst, "f"); got != "changed on the destination" {
		t.Fatalf("destination data changed to %q without --rollback", got)
	}

	zrep(t, "run", "--rollback", side(src), side(dst)).mustExit(t, 0)
	mustMatch(t, dst, snapshots(t, src))
	if got := readFile(t, dst, "f"); got != "three" {
		t.Fatalf("after rollback the destination holds %q", got)
	}
}

func TestSourceWithoutSnapshots(t *testing.T) {
	platformIndependent(t)
	sp, dp := newPool(t), newPool(t)
	root := sp + "/r"
	createFS(t, root+"/good", "g")
	createFS(t, root+"/empty", "e")
	snapshot(t, root, "s1")
	snapshot(t, root+"/good", "s1")

	r := zrep(t, "run", "-r", "--json", side(root), side(dp+"/r")).mustExit(t, 1)
	mustMatch(t, dp+"/r/good", snapshots(t, root+"/good"))
	rep := jsonOf(t, r)
	status := map[string]string{}
	for _, f := range rep["completed"].([]any) {
		fs := f.(map[string]any)
		status[fs["filesystem"].(string)] = fs["status"].(string) + ": " + fs["problem"].(string)
	}
	if !strings.HasPrefix(status[root+"/empty"], "PermanentError") || !strings.Contains(status[root+"/empty"], "does not have any versions") {
		t.Errorf("%s/empty: %q", root, status[root+"/empty"])
	}
	if status[root+"/good"] != "Completed: " || status[root] != "Completed: " {
		t.Errorf("statuses: %v", status)
	}
}
