package e2e

import (
	"strings"
	"testing"
)

// TestFullThenIncremental: a full send of the newest snapshot, then the
// later snapshots incrementally, the guids equal on both sides; then a run
// with nothing to do sends nothing.
func TestFullThenIncremental(t *testing.T) {
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/data", dp+"/data"
	createFS(t, src, "first")
	snapshot(t, src, "s1")
	writeFile(t, src, "f", "second")
	snapshot(t, src, "s2")

	zrep(t, "run", side(src), side(dst)).mustExit(t, 0)
	srcSnaps := snapshots(t, src)
	mustMatch(t, dst, srcSnaps[1:]) // --initial newest: the newest alone
	if got := readFile(t, dst, "f"); got != "second" {
		t.Fatalf("destination file = %q, want %q", got, "second")
	}
	if v, _ := property(t, dst, "mounted"); v != "no" {
		t.Errorf("received filesystem is mounted (%s); zrep receives with -u", v)
	}

	writeFile(t, src, "f", "third")
	snapshot(t, src, "s3")
	writeFile(t, src, "g", "fourth")
	snapshot(t, src, "s4")
	r := zrep(t, "run", "--json", side(src), side(dst)).mustExit(t, 0)
	mustMatch(t, dst, snapshots(t, src)[1:])
	var steps []string
	for _, s := range r.report(t).filesystem(t, src).Steps {
		steps = append(steps, s.String())
	}
	if want := []string{"s2>s3:Completed", "s3>s4:Completed"}; !equalLists(steps, want) {
		t.Errorf("incremental steps = %v, want %v", steps, want)
	}
	if got := readFile(t, dst, "f") + readFile(t, dst, "g"); got != "thirdfourth" {
		t.Fatalf("destination files = %q", got)
	}

	// Up to date: nothing is sent, nothing written.
	r = zrep(t, "run", "--json", side(src), side(dst)).mustExit(t, 0)
	rep := jsonOf(t, r)
	if rep["bytes"].(float64) != 0 {
		t.Errorf("a no-op run sent %v bytes", rep["bytes"])
	}
	for _, sub := range r.subcommands("destination") {
		if sub == "receive" || sub == "recv" {
			t.Errorf("a no-op run received: %v", r.argv)
		}
	}
}

func TestInitialAll(t *testing.T) {
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/a", dp+"/a"
	createFS(t, src, "x")
	for _, s := range []string{"b", "a", "c"} { // creation order differs from name order
		snapshot(t, src, s)
		writeFile(t, src, "f", s)
	}
	r := zrep(t, "run", "--initial", "all", "--json", side(src), side(dst)).mustExit(t, 0)
	mustMatch(t, dst, snapshots(t, src))
	var got []string
	for _, s := range r.report(t).filesystem(t, src).Steps {
		got = append(got, s.String())
	}
	want := []string{"->b:Completed", "b>a:Completed", "a>c:Completed"}
	if !equalLists(got, want) {
		t.Fatalf("steps = %v, want %v", got, want)
	}
}

// TestOverSSH replicates full then incremental in each direction: push,
// pull and remote to remote. In the zfs-fuse lab every side is on this host;
// on the OpenZFS tier the remote sides are on the guest and the local ones
// in the zfs-fuse lab on this host, so that push and pull also cross
// platforms, each side probed for what it offers.
func TestOverSSH(t *testing.T) {
	cases := []struct {
		name               string
		srcLocal, dstLocal bool
	}{
		{"push", true, false},
		{"pull", false, true},
		{"remote-to-remote", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pool := func(isLocal bool) string {
				if isLocal {
					return newHostPool(t)
				}
				return newPool(t)
			}
			spell := func(isLocal bool, ds string) string {
				if isLocal {
					return local(ds)
				}
				return remote(ds)
			}
			sp, dp := pool(tc.srcLocal), pool(tc.dstLocal)
			src, dst := sp+"/data", dp+"/copy"
			if machineOf(src).platform == "openzfs" && machineOf(dst).platform == "zfs-fuse" {
				// zfs-fuse receives file systems up to ZPL version 4 only.
				zfs(t, "create", "-o", "version=4", src)
			}
			createFS(t, src, "one")
			snapshot(t, src, "s1")
			zrep(t, "run", spell(tc.srcLocal, src), spell(tc.dstLocal, dst)).mustExit(t, 0)
			mustMatch(t, dst, snapshots(t, src))

			writeFile(t, src, "f", "two")
			snapshot(t, src, "s2")
			snapshot(t, src, "s3")
			r := zrep(t, "run", "--json", "--log-level", "debug", spell(tc.srcLocal, src), spell(tc.dstLocal, dst)).mustExit(t, 0)
			mustMatch(t, dst, snapshots(t, src))
			// zfs-fuse receives what OpenZFS sends (the guids above match) but
			// cannot read the files of a file system OpenZFS wrote.
			if !(machineOf(src).platform == "openzfs" && machineOf(dst).platform == "zfs-fuse") {
				if got := readFile(t, dst, "f"); got != "two" {
					t.Fatalf("destination file = %q, want two", got)
				}
			}
			for _, c := range r.argv {
				wantHost := ""
				if (c.Role == "source" && !tc.srcLocal) || (c.Role == "destination" && !tc.dstLocal) {
					wantHost = lab.target.sshHost
				}
				if c.Host != wantHost {
					t.Errorf("%s ran on host %q, want %q", c, c.Host, wantHost)
				}
			}
			// The probe of each side is reported, naming what it found, and
			// each side is driven with what its platform offers.
			for _, ds := range []string{src, dst} {
				if !probeLogged(r.stderr, ds) {
					t.Errorf("the debug log does not report the probe of %s's side (%s):\n%s", ds, machineOf(ds).platform, r.stderr)
				}
			}
			assertDrivenAs(t, r, "source", machineOf(src).platform)
			assertDrivenAs(t, r, "destination", machineOf(dst).platform)
		})
	}
}

// probeLogged reports whether a debug log holds the capability probe of
// the side of ds, with what its platform offers.
func probeLogged(log, ds string) bool {
	want := map[string]string{"zfs-fuse": "legacy zfs", "openzfs": "resume-tokens"}[machineOf(ds).platform]
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "capabilities") && strings.Contains(line, ds) && strings.Contains(line, want) {
			return true
		}
	}
	return false
}

// assertDrivenAs checks that zrep used, on the side of role, the zfs
// features of platform and no others: listing with -t (with bookmarks) and
// resume tokens, estimates (send -nvP) and resumable receives (receive -s)
// on OpenZFS; none of them on zfs-fuse.
func assertDrivenAs(t *testing.T, r result, role, platform string) {
	t.Helper()
	modern := platform == "openzfs"
	for _, c := range r.argv {
		if c.Role != role || len(c.Argv) < 2 {
			continue
		}
		line := " " + strings.Join(c.Argv, " ") + " "
		var feature string
		var used bool
		switch c.Argv[1] {
		case "get":
			if !strings.Contains(line, " -r ") && !strings.Contains(line, " -d ") {
				continue
			}
			feature, used = "get -t", strings.Contains(line, " -t ")
		case "send":
			feature, used = "send -nvP", strings.Contains(line, " -nvP ")
			if !modern && used {
				t.Errorf("%s used %s on %s: %s", role, feature, platform, c)
			}
			continue // an OpenZFS source need not estimate every send
		case "receive", "recv":
			feature, used = "receive -s", strings.Contains(line, " -s ")
		default:
			continue
		}
		if used != modern {
			t.Errorf("%s on %s: %s used=%v: %s", role, platform, feature, used, c)
		}
	}
}

// spellings are the ways of naming the target's datasets to zrep: as they
// are and over ssh in the zfs-fuse lab, only over ssh on the guest.
func spellings() []struct {
	name string
	wrap func(string) string
} {
	s := []struct {
		name string
		wrap func(string) string
	}{{"ssh", remote}}
	if lab.target.isHost {
		s = append(s, s[0])
		s[0].name, s[0].wrap = "local", local
	}
	return s
}

func TestRecursiveExcludeAndPlaceholders(t *testing.T) {
	platformIndependent(t)
	sp, dp := newPool(t), newPool(t)
	root := sp + "/root"
	for _, fs := range []string{"", "/a", "/a/x", "/skip", "/skip/kid", "/nosnap", "/nosnap/child", "/ignored"} {
		createFS(t, root+fs, "data of "+fs)
	}
	for _, fs := range []string{"", "/a", "/a/x", "/skip", "/skip/kid", "/nosnap/child", "/ignored"} {
		snapshot(t, root+fs, "s1")
	}
	dst := dp + "/copy"
	r := zrep(t, "run", "-r", "--exclude", "/skip$", "--exclude", "ignored", side(root), side(dst)).mustExit(t, 0)

	for _, fs := range []string{"", "/a", "/a/x", "/skip/kid", "/nosnap/child"} {
		mustMatch(t, dst+fs, snapshots(t, root+fs))
		if v, src := property(t, dst+fs, "zrep:placeholder"); v == "on" && src == "local" {
			t.Errorf("%s is a placeholder, want a received filesystem", dst+fs)
		}
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
	if got := readFile(t, dst+"/skip/kid", "f"); got != "data of /skip/kid" {
		t.Errorf("%s/skip/kid holds %q", dst, got)
	}

	// Parents are received before their children.
	var order []string
	for _, c := range r.argv {
		if c.Role == "destination" && len(c.Argv) > 1 && (c.Argv[1] == "receive" || c.Argv[1] == "recv") {
			order = append(order, c.Argv[len(c.Argv)-1])
		}
	}
	pos := map[string]int{}
	for i, fs := range order {
		pos[fs] = i
	}
	for _, pair := range [][2]string{{"", "/a"}, {"/a", "/a/x"}} {
		p, pok := pos[dst+pair[0]]
		c, cok := pos[dst+pair[1]]
		if !pok || !cok || p > c {
			t.Errorf("receive order %v: %s must come before %s", order, dst+pair[0], dst+pair[1])
		}
	}

	// Once the source has a snapshot, its placeholder is overwritten by a
	// full receive and becomes a normal filesystem; its child stays.
	snapshot(t, root+"/nosnap", "s2")
	zrep(t, "run", "-r", "--exclude", "/skip$", "--exclude", "ignored", side(root), side(dst)).mustExit(t, 0)
	mustMatch(t, dst+"/nosnap", snapshots(t, root+"/nosnap"))
	mustMatch(t, dst+"/nosnap/child", snapshots(t, root+"/nosnap/child"))
	if v, _ := property(t, dst+"/nosnap", "zrep:placeholder"); v == "on" {
		t.Errorf("%s/nosnap is still a placeholder", dst)
	}
	if got := readFile(t, dst+"/nosnap", "f"); got != "data of /nosnap" {
		t.Errorf("former placeholder holds %q", got)
	}
}

func TestNamesWithSpacesColonsDots(t *testing.T) {
	for _, spelling := range spellings() {
		t.Run(spelling.name, func(t *testing.T) {
			sp, dp := newPool(t), newPool(t)
			src := sp + "/my data:v1.0"
			dst := dp + "/back up:v1.0 copy"
			createFS(t, src+"/child one", "x")
			writeFile(t, src, "f", "top")
			snapshot(t, src, "snap 1")
			snapshot(t, src+"/child one", "snap 1")
			snapshot(t, src, "v2.0:a b")
			snapshot(t, src+"/child one", "v2.0:a b")
			args := append([]string{"run", "-r", "--initial", "all"}, sshFlags()...)
			zrep(t, append(args, spelling.wrap(src), spelling.wrap(dst))...).mustExit(t, 0)
			mustMatch(t, dst, snapshots(t, src))
			mustMatch(t, dst+"/child one", snapshots(t, src+"/child one"))
			if got := readFile(t, dst, "f"); got != "top" {
				t.Fatalf("file = %q", got)
			}
		})
	}
}

func TestPlanChangesNothing(t *testing.T) {
	platformIndependent(t)
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/p", dp+"/p"
	createFS(t, src+"/kid", "x")
	snapshot(t, src, "s1")
	snapshot(t, src+"/kid", "s1")
	zrep(t, "run", "-r", side(src), side(dst)).mustExit(t, 0)
	snapshot(t, src, "s2")
	snapshot(t, src, "s3")
	zfs(t, "create", src+"/new")
	snapshot(t, src+"/new", "n1")
	before := [][]string{snapshots(t, dst), snapshots(t, dst+"/kid")}
	everything := func() string {
		return zfs(t, "get", "-H", "-p", "-r", "-o", "name,value", "guid", sp, dp)
	}
	all := everything()

	for _, spelling := range spellings() {
		wrap := spelling.wrap
		args := append([]string{"plan", "-r"}, sshFlags()...)
		r := zrep(t, append(args, wrap(src), wrap(dst))...).mustExit(t, 0)
		for _, want := range []string{src, dst, "s1", "s2", "s3", "n1"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("plan output lacks %q:\n%s", want, r.stdout)
			}
		}
		assertReadOnly(t, r)

		r = zrep(t, append(args, "--json", wrap(src), wrap(dst))...).mustExit(t, 0)
		assertReadOnly(t, r)
		plan := jsonOf(t, r)
		fss := plan["filesystems"].([]any)
		if len(fss) != 3 {
			t.Fatalf("plan has %d filesystems, want 3: %v", len(fss), fss)
		}
		steps := map[string][]string{}
		for _, f := range fss {
			fs := f.(map[string]any)
			for _, k := range []string{"filesystem", "destination", "steps", "conflict", "resolution", "problem"} {
				if _, ok := fs[k]; !ok {
					t.Errorf("plan filesystem lacks key %q: %v", k, fs)
				}
			}
			for _, s := range fs["steps"].([]any) {
				st := s.(map[string]any)
				for _, k := range []string{"from", "to", "expected_bytes"} {
					if _, ok := st[k]; !ok {
						t.Errorf("plan step lacks key %q: %v", k, st)
					}
				}
				from := "-"
				if st["from"] != nil {
					from = st["from"].(string)
				}
				steps[fs["filesystem"].(string)] = append(steps[fs["filesystem"].(string)], from+">"+st["to"].(string))
			}
		}
		want := map[string][]string{src: {"s1>s2", "s2>s3"}, src + "/new": {"->n1"}}
		for fs, w := range want {
			if !equalLists(steps[fs], w) {
				t.Errorf("plan steps of %s = %v, want %v", fs, steps[fs], w)
			}
		}
		if len(steps[src+"/kid"]) != 0 {
			t.Errorf("up-to-date %s/kid has steps %v", src, steps[src+"/kid"])
		}
	}
	// The capability probe of each side shows in plan's debug log.
	r := zrep(t, "plan", "--log-level", "debug", side(src), side(dst)).mustExit(t, 0)
	assertReadOnly(t, r)
	for _, ds := range []string{src, dst} {
		if !probeLogged(r.stderr, ds) {
			t.Errorf("plan's debug log does not report the probe of %s's side (%s):\n%s", ds, machineOf(ds).platform, r.stderr)
		}
	}
	after := [][]string{snapshots(t, dst), snapshots(t, dst+"/kid")}
	for i := range before {
		if !equalLists(before[i], after[i]) {
			t.Errorf("plan changed the destination: %v -> %v", before[i], after[i])
		}
	}
	if exists(t, dst+"/new") {
		t.Errorf("plan created %s/new", dst)
	}
	if now := everything(); now != all {
		t.Errorf("plan changed the datasets of the two pools:\nbefore:\n%s\nafter:\n%s", all, now)
	}
}

// assertReadOnly fails if zrep ran any zfs command but listing and probing.
func assertReadOnly(t *testing.T, r result) {
	t.Helper()
	for _, c := range r.argv {
		if len(c.Argv) < 2 {
			continue
		}
		switch c.Argv[1] {
		case "get", "list", "version":
		case "send":
			if !strings.Contains(strings.Join(c.Argv, " "), "-n") {
				t.Errorf("plan ran %s", c)
			}
		default:
			t.Errorf("plan ran %s", c)
		}
	}
	if len(r.argv) == 0 {
		t.Errorf("no zfs invocation was logged; is ZREP_ARGV_LOG honoured?")
	}
}

func TestRunJSONReport(t *testing.T) {
	platformIndependent(t)
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/j", dp+"/j"
	createFS(t, src, "x")
	snapshot(t, src, "s1")
	snapshot(t, src, "s2")
	r := zrep(t, "run", "--json", "--initial", "all", side(src), side(dst)).mustExit(t, 0)
	rep := jsonOf(t, r)
	for _, k := range []string{"status", "problem", "completed", "pending", "active", "bytes", "duration_seconds"} {
		if _, ok := rep[k]; !ok {
			t.Errorf("report lacks %q: %v", k, rep)
		}
	}
	if rep["status"] != "Completed" || rep["active"] != nil || len(rep["pending"].([]any)) != 0 {
		t.Errorf("report = %v", rep)
	}
	fs := rep["completed"].([]any)[0].(map[string]any)
	for _, k := range []string{"filesystem", "destination", "status", "problem", "bytes", "steps"} {
		if _, ok := fs[k]; !ok {
			t.Errorf("filesystem report lacks %q: %v", k, fs)
		}
	}
	if fs["filesystem"] != src || fs["destination"] != dst || fs["status"] != "Completed" {
		t.Errorf("filesystem report = %v", fs)
	}
	if fs["bytes"].(float64) <= 0 || rep["bytes"].(float64) != fs["bytes"].(float64) {
		t.Errorf("bytes: report %v, filesystem %v", rep["bytes"], fs["bytes"])
	}
	for _, s := range fs["steps"].([]any) {
		st := s.(map[string]any)
		for _, k := range []string{"from", "to", "status", "expected_bytes", "bytes", "resumed"} {
			if _, ok := st[k]; !ok {
				t.Errorf("step lacks %q: %v", k, st)
			}
		}
	}

	// The human report names the statuses with the JSON's words.
	snapshot(t, src, "s3")
	r = zrep(t, "run", side(src), side(dst)).mustExit(t, 0)
	if !strings.Contains(r.stdout, "Completed") || !strings.Contains(r.stdout, src) {
		t.Errorf("text report:\n%s", r.stdout)
	}
}
