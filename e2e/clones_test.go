package e2e

import (
	"strconv"
	"strings"
	"testing"
)

// templateTree makes SRC with a template (bulk data, then @base and
// @later) and three clones of it, vm1 and "vm 2" of @base, vm3 of @later,
// each with a little data of its own in @s1.
func templateTree(t *testing.T, src string) {
	t.Helper()
	createFS(t, src, "")
	createBulk(t, src+"/tmpl", "big", templateMiB)
	snapshot(t, src+"/tmpl", "base")
	writeFile(t, src+"/tmpl", "f", "later")
	snapshot(t, src+"/tmpl", "later")
	for _, c := range []struct{ fs, origin string }{{"vm1", "base"}, {"vm 2", "base"}, {"vm3", "later"}} {
		zfs(t, "clone", src+"/tmpl@"+c.origin, src+"/"+c.fs)
		writeFile(t, src+"/"+c.fs, "own", "data of "+c.fs)
		snapshot(t, src+"/"+c.fs, "s1")
	}
}

const templateMiB = 8

func usedBytes(t *testing.T, fs string) int64 {
	t.Helper()
	v := strings.TrimSpace(zfs(t, "get", "-H", "-p", "-o", "value", "used", fs))
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("used of %s: %q", fs, v)
	}
	return n
}

// TestClonesKeptAsClones: a recursive run receives each clone as a clone
// of the destination's template snapshot (zfs send -i ORIGIN), so the
// destination shares the template's blocks as the source does; the
// template's initial send includes @base, the older origin, although
// --initial newest would send @later alone. A later incremental of a clone
// is an ordinary one.
func TestClonesKeptAsClones(t *testing.T) {
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/tree", dp+"/tree"
	templateTree(t, src)

	r := zrep(t, "run", "-r", "--json", side(src), side(dst)).mustExit(t, 0)
	rep := r.report(t)
	mustMatch(t, dst+"/tmpl", snapshots(t, src+"/tmpl"))
	for _, c := range []struct{ fs, origin string }{{"vm1", "base"}, {"vm 2", "base"}, {"vm3", "later"}} {
		s, d := src+"/"+c.fs, dst+"/"+c.fs
		mustMatch(t, d, snapshots(t, s))
		if got, _ := property(t, d, "origin"); got != dst+"/tmpl@"+c.origin {
			t.Errorf("origin of %s = %q, want %s", d, got, dst+"/tmpl@"+c.origin)
		}
		su, du := usedBytes(t, s), usedBytes(t, d)
		t.Logf("used: %s %d bytes, %s %d bytes (template %d MiB)", s, su, d, du, templateMiB)
		if du > su+1<<20 || du > templateMiB<<20/2 {
			t.Errorf("%s uses %d bytes, its source %d: the template's data was sent again", d, du, su)
		}
		steps := rep.filesystem(t, s).Steps
		if len(steps) != 1 || steps[0].String() != src+"/tmpl@"+c.origin+">s1:Completed" {
			t.Errorf("steps of %s: %v", s, steps)
		}
		if got := readFile(t, d, "own"); got != "data of "+c.fs {
			t.Errorf("%s holds %q", d, got)
		}
	}

	writeFile(t, src+"/vm1", "own", "changed")
	snapshot(t, src+"/vm1", "s2")
	r = zrep(t, "run", "-r", "--json", side(src), side(dst)).mustExit(t, 0)
	if steps := r.report(t).filesystem(t, src+"/vm1").Steps; len(steps) != 1 || steps[0].String() != "s1>s2:Completed" {
		t.Errorf("incremental of the clone: %v", steps)
	}
	mustMatch(t, dst+"/vm1", snapshots(t, src+"/vm1"))
	if got := readFile(t, dst+"/vm1", "own"); got != "changed" {
		t.Errorf("after the incremental, vm1 holds %q", got)
	}
}

// TestCloneWithExcludedOriginGoesFull: a clone whose origin is excluded is
// sent in full, the plan says why, and its Report entry has no problem.
func TestCloneWithExcludedOriginGoesFull(t *testing.T) {
	platformIndependent(t)
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/tree", dp+"/tree"
	templateTree(t, src)
	args := []string{"-r", "--exclude", "/tmpl$", "--json", side(src), side(dst)}

	plan := jsonOf(t, zrep(t, append([]string{"plan"}, args...)...).mustExit(t, 0))
	var found bool
	for _, f := range plan["filesystems"].([]any) {
		fp := f.(map[string]any)
		if fp["filesystem"] != src+"/vm1" {
			continue
		}
		found = true
		if res := fp["resolution"].(string); !strings.Contains(res, "sent in full, not as a clone of "+src+"/tmpl@base: its origin's filesystem "+src+"/tmpl is excluded") {
			t.Errorf("resolution %q", res)
		}
		if fp["problem"] != "" {
			t.Errorf("problem %q", fp["problem"])
		}
	}
	if !found {
		t.Fatalf("no plan for %s/vm1: %v", src, plan)
	}

	rep := zrep(t, append([]string{"run"}, args...)...).mustExit(t, 0).report(t)
	f := rep.filesystem(t, src+"/vm1")
	if f.Problem != "" || len(f.Steps) != 1 || f.Steps[0].String() != "->s1:Completed" {
		t.Errorf("vm1: problem %q, steps %v", f.Problem, f.Steps)
	}
	if got, _ := property(t, dst+"/vm1", "origin"); got != "-" {
		t.Errorf("origin of %s/vm1 = %q, want none", dst, got)
	}
	mustMatch(t, dst+"/vm1", snapshots(t, src+"/vm1"))
	if exists(t, dst+"/tmpl") {
		t.Errorf("the excluded template reached the destination")
	}
}

// TestClonePromotedOnSourceLater: promoting a clone on the source swaps
// origins there (the clone takes the template's older snapshots); the
// destination keeps its lineage, the next run sends each filesystem's new
// snapshots incrementally, and nothing is destroyed or rolled back. The
// same promote on the destination changes nothing for later runs.
func TestClonePromotedOnSourceLater(t *testing.T) {
	platformIndependent(t)
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/tree", dp+"/tree"
	templateTree(t, src)
	zrep(t, "run", "-r", side(src), side(dst)).mustExit(t, 0)

	zfs(t, "promote", src+"/vm1")
	if got, _ := property(t, src+"/tmpl", "origin"); got != src+"/vm1@base" {
		t.Fatalf("after promote, the template's origin is %q", got)
	}
	writeFile(t, src+"/vm1", "own", "after promote")
	snapshot(t, src+"/vm1", "s2")
	writeFile(t, src+"/tmpl", "f", "after promote")
	snapshot(t, src+"/tmpl", "s3")

	r := zrep(t, "run", "-r", "--json", side(src), side(dst)).mustExit(t, 0)
	for _, sub := range r.subcommands("destination") {
		if sub == "destroy" || sub == "rollback" {
			t.Errorf("the run after a promote ran zfs %s on the destination: %v", sub, r.argv)
		}
	}
	rep := r.report(t)
	if steps := rep.filesystem(t, src+"/vm1").Steps; len(steps) != 1 || steps[0].String() != "s1>s2:Completed" {
		t.Errorf("vm1 after promote: %v", steps)
	}
	if steps := rep.filesystem(t, src+"/tmpl").Steps; len(steps) != 1 || steps[0].String() != "later>s3:Completed" {
		t.Errorf("template after promote: %v", steps)
	}
	if got := readFile(t, dst+"/vm1", "own"); got != "after promote" {
		t.Errorf("vm1 holds %q", got)
	}
	if got, _ := property(t, dst+"/vm1", "origin"); got != dst+"/tmpl@base" {
		t.Errorf("destination vm1's origin %q changed", got)
	}

	// Promoted on the destination too, the roles match again, and the
	// next run goes on incrementally.
	zfs(t, "promote", dst+"/vm1")
	snapshot(t, src+"/vm1", "s4")
	snapshot(t, src+"/tmpl", "s4")
	rep = zrep(t, "run", "-r", "--json", side(src), side(dst)).mustExit(t, 0).report(t)
	for fs, want := range map[string]string{"vm1": "s2>s4:Completed", "tmpl": "s3>s4:Completed"} {
		if steps := rep.filesystem(t, src+"/"+fs).Steps; len(steps) != 1 || steps[0].String() != want {
			t.Errorf("%s after promoting on the destination: %v", fs, steps)
		}
	}
	if got, _ := property(t, dst+"/tmpl", "origin"); got != dst+"/vm1@base" {
		t.Errorf("destination template's origin %q", got)
	}
}
