package e2e

import (
	"testing"
)

// A no-op recursive run over ssh costs one login and one start-up command
// per side, whatever the tree's size: at most five zfs invocations in it
// (the probe, and the listing's four: native properties, where zrep's own
// properties are set, their values below the root and those it inherits).
func TestNoOpRunCost(t *testing.T) {
	sp, dp := newPoolSize(t, 256<<20), newPoolSize(t, 256<<20)
	src, dst := sp+"/tree", dp+"/tree"
	m := machineOf(src)
	m.script(t, `zfs create "$1"; for i in $(seq -w 0 48); do zfs create "$1/fs$i"; done
zfs snapshot -r "$1@s1"; zfs snapshot -r "$1@s2"`, src)
	args := append([]string{"run", "-r", "--json"}, sshFlags()...)
	zrep(t, append(args, remote(src), remote(dst))...).mustExit(t, 0)

	before := m.sshLogins(t)
	r := zrep(t, append(args, remote(src), remote(dst))...).mustExit(t, 0)
	logins := m.sshLogins(t) - before
	perRole := map[string]int{}
	for _, c := range r.argv {
		perRole[c.Role]++
	}
	t.Logf("no-op run -r over ssh on 50 filesystems: %d ssh logins, zfs invocations %v", logins, perRole)
	if logins != 2 {
		t.Errorf("%d ssh logins, want one per remote side (2)", logins)
	}
	for _, role := range []string{"source", "destination"} {
		if perRole[role] == 0 || perRole[role] > 5 {
			t.Errorf("%d zfs invocations on the %s, want 1 to 5", perRole[role], role)
		}
	}
	rep := jsonOf(t, r)
	if n := len(rep["completed"].([]any)); n != 50 {
		t.Errorf("report has %d filesystems, want 50", n)
	}
	if rep["bytes"].(float64) != 0 {
		t.Errorf("a no-op run sent %v bytes", rep["bytes"])
	}
}
