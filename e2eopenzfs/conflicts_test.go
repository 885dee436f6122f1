//go:build openzfs

package e2eopenzfs

import (
	"strings"
	"testing"
)

// The conflict scenarios of the zfs-fuse tier (e2e/conflicts_test.go), on
// OpenZFS: the destination is never touched without --rollback.

func TestUnrelatedDestination(t *testing.T) {
	sp, dp := newTrees(t)
	src, dst := sp+"/u", dp+"/u"
	createFS(t, src, "source")
	snapshot(t, src, "s1")
	createFS(t, dst, "someone else's")
	snapshot(t, dst, "theirs")
	before := snapshots(t, dst)

	for _, args := range [][]string{nil, {"--rollback"}} {
		r := zrep(t, "run", append([]string{"--json"}, args...), src, dst).mustExit(t, 1)
		if fs := r.report(t).filesystem(t, src); !strings.Contains(fs.Problem, "theirs") {
			t.Errorf("%v: the problem does not name the destination's snapshot: %q", args, fs.Problem)
		}
		mustMatch(t, dst, before)
		if got := readFile(t, dst, "f"); got != "someone else's" {
			t.Fatalf("%v: destination data changed to %q", args, got)
		}
	}
}

func TestExistingDestinationWithoutSnapshots(t *testing.T) {
	sp, dp := newTrees(t)
	src, dst := sp+"/e", dp+"/e"
	createFS(t, src, "source")
	snapshot(t, src, "s1")
	createFS(t, dst, "precious")

	zrep(t, "run", nil, src, dst).mustExit(t, 1)
	if got := readFile(t, dst, "f"); got != "precious" {
		t.Fatalf("destination data changed to %q without --rollback", got)
	}
	zrep(t, "run", []string{"--rollback"}, src, dst).mustExit(t, 0)
	mustMatch(t, dst, snapshots(t, src))
}

func TestModifiedDestination(t *testing.T) {
	sp, dp := newTrees(t)
	src, dst := sp+"/m", dp+"/m"
	createFS(t, src, "one")
	snapshot(t, src, "s1")
	zrep(t, "run", nil, src, dst).mustExit(t, 0)

	zfs(t, "mount", dst)
	writeFile(t, dst, "f", "changed on the destination")
	zfs(t, "umount", dst)
	writeFile(t, src, "f", "two")
	snapshot(t, src, "s2")
	before := snapshots(t, dst)

	r := zrep(t, "run", []string{"--json"}, src, dst).mustExit(t, 1)
	if fs := r.report(t).filesystem(t, src); !strings.Contains(fs.Problem, "modified") || !strings.Contains(fs.Problem, "--rollback") {
		t.Errorf("the problem does not say the destination was modified and how to proceed: %q", fs.Problem)
	}
	mustMatch(t, dst, before)
	if got := readFile(t, dst, "f"); got != "changed on the destination" {
		t.Fatalf("destination data changed to %q without --rollback", got)
	}

	zrep(t, "run", []string{"--rollback"}, src, dst).mustExit(t, 0)
	mustMatch(t, dst, snapshots(t, src))
	if got := readFile(t, dst, "f"); got != "two" {
		t.Fatalf("after --rollback the destination holds %q", got)
	}
}
