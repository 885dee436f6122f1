//go:build openzfs

package e2eopenzfs

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestFullThenIncremental replicates between the guest's two pools through
// zrep on the host: a full send of the newest snapshot, then the later
// snapshots incrementally, the guids equal on both sides.
func TestFullThenIncremental(t *testing.T) {
	sp, dp := newTrees(t)
	src, dst := sp+"/data", dp+"/data"
	createFS(t, src, "first")
	snapshot(t, src, "s1")
	writeFile(t, src, "f", "second")
	snapshot(t, src, "s2")

	r := zrep(t, "run", []string{"--json"}, src, dst).mustExit(t, 0)
	mustMatch(t, dst, snapshots(t, src)[1:]) // --initial newest: the newest alone
	if got := readFile(t, dst, "f"); got != "second" {
		t.Fatalf("destination file = %q, want %q", got, "second")
	}
	if v, _ := property(t, dst, "mounted"); v != "no" {
		t.Errorf("received filesystem is mounted (%s); zrep receives with -u", v)
	}
	fs := r.report(t).filesystem(t, src)
	if fs.Status != "Completed" || fs.Destination != dst || len(fs.Steps) != 1 || fs.Steps[0].From != nil {
		t.Errorf("first run: want one full step to %s, got %+v", dst, fs)
	}

	writeFile(t, src, "f", "third")
	snapshot(t, src, "s3")
	writeFile(t, src, "g", "fourth")
	snapshot(t, src, "s4")
	r = zrep(t, "run", []string{"--json"}, src, dst).mustExit(t, 0)
	mustMatch(t, dst, snapshots(t, src)[1:])
	if got := readFile(t, dst, "f") + readFile(t, dst, "g"); got != "thirdfourth" {
		t.Fatalf("destination files = %q, want %q", got, "thirdfourth")
	}
	var steps []string
	for _, s := range r.report(t).filesystem(t, src).Steps {
		steps = append(steps, s.String())
	}
	if want := []string{"s2>s3:Completed", "s3>s4:Completed"}; !equalLists(steps, want) {
		t.Errorf("incremental steps = %v, want %v", steps, want)
	}

	// Up to date: nothing is sent, nothing received.
	r = zrep(t, "run", []string{"--json"}, src, dst).mustExit(t, 0)
	if b := r.report(t).Bytes; b != 0 {
		t.Errorf("a run with nothing to do sent %d bytes", b)
	}
	for _, sub := range r.subcommands("destination") {
		if sub == "receive" || sub == "recv" {
			t.Errorf("a run with nothing to do received: %v", r.argv)
		}
	}
}

// TestRecursiveExcludePlaceholders replicates a tree with -r and --exclude:
// excluded parents and parents without snapshots become placeholders
// (zrep:placeholder=on, canmount=off) so their children can be received.
func TestRecursiveExcludePlaceholders(t *testing.T) {
	sp, dp := newTrees(t)
	root, dst := sp+"/root", dp+"/copy"
	for _, fs := range []string{"", "/a", "/a/x", "/skip", "/skip/kid", "/nosnap", "/nosnap/child", "/ignored"} {
		createFS(t, root+fs, "data of "+fs)
	}
	for _, fs := range []string{"", "/a", "/a/x", "/skip", "/skip/kid", "/nosnap/child", "/ignored"} {
		snapshot(t, root+fs, "s1")
	}
	args := []string{"-r", "--exclude", "/skip$", "--exclude", "ignored"}
	zrep(t, "run", args, root, dst).mustExit(t, 0)

	for _, fs := range []string{"", "/a", "/a/x", "/skip/kid", "/nosnap/child"} {
		mustMatch(t, dst+fs, snapshots(t, root+fs))
		if v, src := property(t, dst+fs, "zrep:placeholder"); v == "on" && src == "local" {
			t.Errorf("%s is a placeholder, want a received filesystem", dst+fs)
		}
	}
	if got := readFile(t, dst+"/skip/kid", "f"); got != "data of /skip/kid" {
		t.Errorf("%s/skip/kid holds %q", dst, got)
	}
	for _, fs := range []string{"/skip", "/nosnap"} {
		if v, src := property(t, dst+fs, "zrep:placeholder"); v != "on" || src != "local" {
			t.Errorf("%s: zrep:placeholder=%s (%s), want on (local)", dst+fs, v, src)
		}
		if v, _ := property(t, dst+fs, "canmount"); v != "off" {
			t.Errorf("%s: canmount=%s, want off", dst+fs, v)
		}
		if got := snapshots(t, dst+fs); len(got) != 0 {
			t.Errorf("placeholder %s has snapshots %v", dst+fs, got)
		}
	}
	if exists(t, dst+"/ignored") {
		t.Errorf("excluded %s/ignored was replicated", root)
	}

	// Once its source has a snapshot, a placeholder is replaced by a full
	// receive and becomes a normal filesystem; its child stays.
	snapshot(t, root+"/nosnap", "s2")
	zrep(t, "run", args, root, dst).mustExit(t, 0)
	mustMatch(t, dst+"/nosnap", snapshots(t, root+"/nosnap"))
	mustMatch(t, dst+"/nosnap/child", snapshots(t, root+"/nosnap/child"))
	if v, _ := property(t, dst+"/nosnap", "zrep:placeholder"); v == "on" {
		t.Errorf("%s/nosnap is still a placeholder", dst)
	}
	if got := readFile(t, dst+"/nosnap", "f"); got != "data of /nosnap" {
		t.Errorf("former placeholder holds %q", got)
	}
}

// TestNamesWithSpacesColonsDots uses every unusual character ZFS allows in
// dataset and snapshot names; over ssh each must arrive as one word.
func TestNamesWithSpacesColonsDots(t *testing.T) {
	sp, dp := newTrees(t)
	src := sp + "/my data:v1.0"
	dst := dp + "/copy of: v1.0"
	createFS(t, src, "odd")
	createFS(t, src+"/kid 2.x", "kid")
	snapshot(t, src, "snap 1:a.b")
	snapshot(t, src+"/kid 2.x", "snap 1:a.b")
	zrep(t, "run", []string{"-r"}, src, dst).mustExit(t, 0)
	writeFile(t, src, "f", "odd again")
	snapshot(t, src, "snap 2.0:x y")
	snapshot(t, src+"/kid 2.x", "snap 2.0:x y")
	zrep(t, "run", []string{"-r"}, src, dst).mustExit(t, 0)

	mustMatch(t, dst, snapshots(t, src))
	mustMatch(t, dst+"/kid 2.x", snapshots(t, src+"/kid 2.x"))
	if got := readFile(t, dst, "f"); got != "odd again" {
		t.Errorf("%s holds %q", dst, got)
	}
	if got := readFile(t, dst+"/kid 2.x", "f"); got != "kid" {
		t.Errorf("%s/kid 2.x holds %q", dst, got)
	}
}

// mutating are the zfs subcommands that change something.
var mutating = map[string]bool{
	"receive": true, "recv": true, "destroy": true, "rollback": true, "snapshot": true,
	"snap": true, "create": true, "set": true, "inherit": true, "rename": true,
	"bookmark": true, "hold": true, "release": true, "promote": true, "clone": true,
	"mount": true, "umount": true, "unmount": true, "load-key": true, "change-key": true,
}

// TestPlanChangesNothing: zrep plan reports the steps a run would take and
// runs no zfs command that changes anything on either side.
func TestPlanChangesNothing(t *testing.T) {
	sp, dp := newTrees(t)
	src, dst := sp+"/p", dp+"/p"
	createFS(t, src, "one")
	snapshot(t, src, "s1")
	zrep(t, "run", nil, src, dst).mustExit(t, 0)
	createFS(t, src+"/new", "new")
	snapshot(t, src+"/new", "n1")
	writeFile(t, src, "f", "two")
	snapshot(t, src, "s2")
	snapshot(t, src, "s3")

	everything := func() string {
		return zfs(t, "list", "-Hp", "-t", "all", "-r", "-o", "name,guid,written,receive_resume_token", sp, dp)
	}
	before := everything()
	r := zrep(t, "plan", []string{"-r", "--json"}, src, dst).mustExit(t, 0)
	if after := everything(); after != before {
		t.Errorf("zrep plan changed the guest:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	for _, c := range r.argv {
		if len(c.Argv) > 1 && mutating[c.Argv[1]] {
			t.Errorf("zrep plan ran %q on the %s", c.Argv, c.Role)
		}
	}
	if len(r.argv) == 0 {
		t.Errorf("no zfs command was logged (ZREP_ARGV_LOG)")
	}

	var plan struct {
		Filesystems []struct {
			Filesystem string `json:"filesystem"`
			Steps      []struct {
				From *string `json:"from"`
				To   string  `json:"to"`
			} `json:"steps"`
		} `json:"filesystems"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil {
		t.Fatalf("plan --json is not JSON: %v\n%s", err, r.stdout)
	}
	got := map[string][]string{}
	for _, fs := range plan.Filesystems {
		for _, s := range fs.Steps {
			from := "-"
			if s.From != nil {
				from = *s.From
			}
			got[fs.Filesystem] = append(got[fs.Filesystem], from+">"+s.To)
		}
	}
	if want := []string{"s1>s2", "s2>s3"}; !equalLists(got[src], want) {
		t.Errorf("plan of %s: %v, want %v", src, got[src], want)
	}
	if want := []string{"->n1"}; !equalLists(got[src+"/new"], want) {
		t.Errorf("plan of %s/new: %v, want %v", src, got[src+"/new"], want)
	}
}

// TestDivergedRefusedThenRollback: a destination with a snapshot of its own
// after the common one is refused (exit 1, nothing destroyed); --rollback
// rolls it back and completes.
func TestDivergedRefusedThenRollback(t *testing.T) {
	sp, dp := newTrees(t)
	src, dst := sp+"/d", dp+"/d"
	createFS(t, src, "base")
	snapshot(t, src, "s1")
	zrep(t, "run", nil, src, dst).mustExit(t, 0)

	snapshot(t, dst, "local")
	writeFile(t, src, "f", "newer")
	snapshot(t, src, "s2")

	r := zrep(t, "run", []string{"--json"}, src, dst).mustExit(t, 1)
	if !exists(t, dst+"@local") {
		t.Fatalf("%s@local was destroyed without --rollback", dst)
	}
	if fs := r.report(t).filesystem(t, src); fs.Status != "PermanentError" || !strings.Contains(fs.Problem, "local") {
		t.Errorf("refused filesystem: status %s, problem %q; want PermanentError naming @local", fs.Status, fs.Problem)
	}

	zrep(t, "run", []string{"--rollback"}, src, dst).mustExit(t, 0)
	mustMatch(t, dst, snapshots(t, src))
	if got := readFile(t, dst, "f"); got != "newer" {
		t.Errorf("after --rollback %s holds %q, want %q", dst, got, "newer")
	}
}

// TestSourceWithoutSnapshots: a source filesystem with no snapshot (and no
// replicated children) fails with exit 1; the others complete.
func TestSourceWithoutSnapshots(t *testing.T) {
	sp, dp := newTrees(t)
	root, dst := sp+"/r", dp+"/r"
	for _, fs := range []string{"", "/good", "/empty"} {
		createFS(t, root+fs, "x")
	}
	snapshot(t, root, "s1")
	snapshot(t, root+"/good", "s1")

	r := zrep(t, "run", []string{"-r", "--json"}, root, dst).mustExit(t, 1)
	mustMatch(t, dst, snapshots(t, root))
	mustMatch(t, dst+"/good", snapshots(t, root+"/good"))
	rep := r.report(t)
	if fs := rep.filesystem(t, root+"/good"); fs.Status != "Completed" {
		t.Errorf("%s/good: status %s, want Completed", root, fs.Status)
	}
	if fs := rep.filesystem(t, root+"/empty"); fs.Status != "PermanentError" ||
		!strings.Contains(fs.Problem, "does not have any versions") {
		t.Errorf("%s/empty: status %s, problem %q; want PermanentError, \"sender does not have any versions\"",
			root, fs.Status, fs.Problem)
	}
}
