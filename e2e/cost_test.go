package e2e

import (
	"strconv"
	"testing"
)

// costTree makes src with children, each filesystem with snapshots s1 and
// s2, and returns how many filesystems it made: 50 on zfs-fuse, 12 in the
// OpenZFS guest, where every zfs create takes a second and twelve show as
// well that the cost does not grow with the tree.
func costTree(t *testing.T, src string) int {
	t.Helper()
	n := 50
	if lab.target.platform == "openzfs" {
		n = 12
	}
	machineOf(src).script(t, `zfs create "$1"; i=1; while [ "$i" -lt "$2" ]; do zfs create "$1/fs$i"; i=$((i+1)); done
zfs snapshot -r "$1@s1"; zfs snapshot -r "$1@s2"`, src, strconv.Itoa(n))
	return n
}

// A no-op recursive run over ssh costs one login and one start-up command
// per side, whatever the tree's size: at most five zfs invocations in it
// (the probe, and the listing's four: native properties, where zrep's own
// properties are set, their values below the root and those it inherits).
func TestNoOpRunCost(t *testing.T) {
	sp, dp := newPoolSize(t, 256<<20), newPoolSize(t, 256<<20)
	src, dst := sp+"/tree", dp+"/tree"
	m := machineOf(src)
	n := costTree(t, src)
	args := append([]string{"run", "-r", "--json"}, sshFlags()...)
	zrep(t, append(args, remote(src), remote(dst))...).mustExit(t, 0)

	before := m.sshLogins(t)
	r := zrep(t, append(args, remote(src), remote(dst))...).mustExit(t, 0)
	logins := m.sshLogins(t) - before
	perRole := map[string]int{}
	for _, c := range r.argv {
		perRole[c.Role]++
	}
	t.Logf("no-op run -r over ssh on %d filesystems: %d ssh logins, zfs invocations %v", n, logins, perRole)
	if logins != 2 {
		t.Errorf("%d ssh logins, want one per remote side (2)", logins)
	}
	for _, role := range []string{"source", "destination"} {
		if perRole[role] == 0 || perRole[role] > 5 {
			t.Errorf("%d zfs invocations on the %s, want 1 to 5", perRole[role], role)
		}
	}
	rep := jsonOf(t, r)
	if got := len(rep["completed"].([]any)); got != n {
		t.Errorf("report has %d filesystems, want %d", got, n)
	}
	if rep["bytes"].(float64) != 0 {
		t.Errorf("a no-op run sent %v bytes", rep["bytes"])
	}
}
