package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// Listings are data (SPEC 12): a user property value may hold tabs and
// newlines, and zfs prints it raw. No such value may change which
// filesystems and snapshots zrep sees.

// hostileValues are user property values that, printed raw by `zfs get -H`,
// read as lines of a listing or of zrep's start-up output. src is the
// source root the tree is made under.
func hostileValues(src string) []struct{ name, prop, value string } {
	return []struct{ name, prop, value string }{
		// The value from the report: it ended the listing early, and the
		// filesystems listed after it vanished.
		{"end-marker", "zrep:placeholder", "off\tlocal\n\nzrep:end 0\njunk"},
		// Lines of a snapshot that does not exist, newest of its
		// filesystem, and an end of the listing.
		{"forged-snapshot", "zrep:placeholder", "x\tlocal\n" +
			src + "/b@forged\ttype\tsnapshot\t-\n" +
			src + "/b@forged\tguid\t12345\t-\n" +
			src + "/b@forged\tcreatetxg\t999999\t-\n" +
			src + "/b@forged\tcreation\t1700000000\t-\n" +
			src + "/b\ttype\tfilesystem\t-"},
		// Every marker the start-up output has, and one with a length.
		{"forged-markers", "zrep:placeholder", "on\nzrep:values 0 3\non\nzrep:end 0\nzrep:parent 0\nzrep:probe 0\nzrep:list\n"},
		// The property that leaves a filesystem out (SPEC 15), holding
		// "off" on a line of its own.
		{"sync-value", "zrep:sync", "on\noff\tlocal\n" + src + "/b\tzrep:sync\toff\tlocal"},
	}
}

// hostileTree makes src with children a and b, each with two snapshots,
// and sets prop=value on src/a.
func hostileTree(t *testing.T, src, prop, value string) {
	t.Helper()
	for _, fs := range []string{"", "/a", "/b"} {
		createFS(t, src+fs, "data of "+fs)
		snapshot(t, src+fs, "s1")
	}
	zfs(t, "set", prop+"="+value, src+"/a")
	if got := hostileValue(t, src+"/a", prop); got != value {
		t.Fatalf("zfs stored %s on %s/a as %q, want %q", prop, src, got, value)
	}
	for _, fs := range []string{"", "/a", "/b"} {
		writeFile(t, src+fs, "f", "later data of "+fs)
		snapshot(t, src+fs, "s2")
	}
}

// hostileValue reads prop of ds exactly, as its own command.
func hostileValue(t *testing.T, ds, prop string) string {
	t.Helper()
	return strings.TrimSuffix(zfs(t, "get", "-H", "-o", "value", prop, ds), "\n")
}

// mustReplicateAll: the run exited 0, the Report names each filesystem of
// the tree as completed, and each holds the source's snapshots, guid for
// guid, on the destination.
func mustReplicateAll(t *testing.T, r result, src, dst string) {
	t.Helper()
	r.mustExit(t, 0)
	rep := r.report(t)
	if len(rep.Completed) != 3 {
		t.Errorf("the Report has %d filesystems, want 3 (%s, /a, /b): %+v", len(rep.Completed), src, rep.Completed)
	}
	for _, fs := range []string{"", "/a", "/b"} {
		if f := rep.filesystem(t, src+fs); f.Status != "Completed" {
			t.Errorf("%s: status %s (%s), want Completed", src+fs, f.Status, f.Problem)
		}
		mustMatch(t, dst+fs, snapshots(t, src+fs))
	}
	if got := readFile(t, dst+"/b", "f"); got != "later data of /b" {
		t.Errorf("%s/b holds %q", dst, got)
	}
}

// TestHostilePropertyValues: a user property value that imitates listing
// lines or start-up markers, set on a child of the source, changes nothing:
// every filesystem of the tree is replicated, locally and with the source
// over ssh.
func TestHostilePropertyValues(t *testing.T) {
	for _, hv := range hostileValues("SRC") {
		for _, over := range []string{"local", "ssh"} {
			t.Run(hv.name+"/"+over, func(t *testing.T) {
				sp, dp := newPool(t), newPool(t)
				src, dst := sp+"/t", dp+"/t"
				value := hostileValues(src)
				var v string
				for _, x := range value {
					if x.name == hv.name {
						v = x.value
					}
				}
				spell := side(src)
				switch {
				case over == "ssh":
					spell = remote(src)
				case !machineOf(src).isHost:
					t.Skip("this tier's source is over ssh already: the ssh case is this one")
				}
				hostileTree(t, src, hv.prop, v)
				r := zrep(t, "run", "-r", "--json", "--initial", "all", spell, side(dst))
				mustReplicateAll(t, r, src, dst)
				if v, src := property(t, dst+"/a", "zrep:placeholder"); v == "on" && src == "local" {
					t.Errorf("%s/a was made a placeholder", dst)
				}

				// Incrementally again, with the value on the destination
				// too (a received --props carries it there).
				zfs(t, "set", hv.prop+"="+v, dst+"/b")
				for _, fs := range []string{"", "/a", "/b"} {
					snapshot(t, src+fs, "s3")
				}
				r = zrep(t, "run", "-r", "--json", "--initial", "all", spell, side(dst))
				mustReplicateAll(t, r, src, dst)
			})
		}
	}
}

// TestHostilePlaceholderIsNotOne: a zrep:placeholder value that starts
// with "on" but holds more is no placeholder mark: the filesystem is
// replicated into, not overwritten as a placeholder.
func TestHostilePlaceholderIsNotOne(t *testing.T) {
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/p", dp+"/p"
	createFS(t, src, "source")
	snapshot(t, src, "s1")
	createFS(t, dst, "precious")
	zfs(t, "set", "zrep:placeholder=on\n", dst)
	if got := hostileValue(t, dst, "zrep:placeholder"); got != "on\n" {
		t.Skipf("zfs stored the value as %q", got)
	}
	r := zrep(t, "run", "--json", side(src), side(dst))
	if r.code == 0 {
		t.Fatalf("zrep overwrote %s, whose zrep:placeholder is %q, not on", dst, "on\n")
	}
	if got := readLive(t, dst, "f"); got != "precious" {
		t.Fatalf("%s holds %q, want its own data", dst, got)
	}
}

// TestDestroyChecksGuid: a snapshot that pruning would destroy but that
// was replaced (same name, new guid) after planning is left and reported;
// the other snapshots are pruned.
func TestDestroyChecksGuid(t *testing.T) {
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/g", dp+"/g"
	createFS(t, src, "x")
	names := hourlyNames(day1, 4)
	history(t, src, names...)
	zrepUTC(t, "run", "--initial", "all", side(src), side(dst)).mustExit(t, 0)

	// The first zfs command that names the oldest snapshot after the
	// run's listings (pruning's check of it, or its destroy) finds it
	// replaced by a new one of the same name.
	victim := src + "@" + names[0]
	oldGuid := strings.TrimSpace(zfs(t, "get", "-H", "-p", "-o", "value", "guid", victim))
	snapshot(t, src, "zrep_"+day1.Add(10*time.Hour).Format("20060102T150405Z"))
	mark := fmt.Sprintf("/tmp/zrep-e2e-%d-%d.done", os.Getpid(), poolSeq.Add(1))
	env := machineOf(src).shimZFS(t, fmt.Sprintf(`
case "$*" in *%[3]s*)
	if [ ! -e %[1]s ]; then
		touch %[1]s
		"$REALZFS" destroy %[2]s && "$REALZFS" snapshot %[2]s
	fi
esac`, shellQuote(mark), shellQuote(victim), names[0]))
	t.Cleanup(func() { machineOf(src).run(context.Background(), nil, "rm", "-f", mark) })
	r := zrepCtx(withTimeout(t, 2*time.Minute), t, append(env, utc...), "run", "--json", "--keep-source", "hourly=1", side(src), side(dst))
	if !machineOf(src).ok("test", "-e", mark) {
		t.Fatalf("no zfs command named %s during the run", victim)
	}
	if !exists(t, victim) {
		t.Fatalf("zrep destroyed %s, replaced after planning by a snapshot it never saw", victim)
	}
	newGuid := strings.TrimSpace(zfs(t, "get", "-H", "-p", "-o", "value", "guid", victim))
	if newGuid == oldGuid {
		t.Fatalf("the wrapper did not replace %s (guid %s unchanged)", victim, oldGuid)
	}
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 for the snapshot left", r.code)
	}
	f := r.report(t).filesystem(t, src)
	if !strings.Contains(f.Problem, names[0]) || !strings.Contains(f.Problem, "guid") {
		t.Errorf("the Report's problem for %s does not name %s and its guid: %q", src, names[0], f.Problem)
	}
	for _, n := range names[1:3] {
		if exists(t, src+"@"+n) {
			t.Errorf("%s@%s was not pruned", src, n)
		}
	}
	// The data arrived all the same, guid for guid.
	newest := "zrep_" + day1.Add(10*time.Hour).Format("20060102T150405Z")
	want := newest + "=" + strings.TrimSpace(zfs(t, "get", "-H", "-p", "-o", "value", "guid", src+"@"+newest))
	if got := snapshots(t, dst); len(got) == 0 || got[len(got)-1] != want {
		t.Errorf("destination's snapshots %v, want the newest %s", got, want)
	}
}
