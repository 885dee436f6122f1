package replication_test

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/zrep/zrep/pdu"
	"github.com/zrep/zrep/replication"
	"github.com/zrep/zrep/replication/memzfs"
)

// templateWorld is a source with a template filesystem, tank/tmpl (@base,
// then @later, each of templateSize bytes), and three clones: vm1 and vm2
// of @base, vm3 of @later, each with a snapshot @s1 of cloneSize bytes.
func templateWorld(t *testing.T) *world {
	t.Helper()
	w := newWorld(t, "tank/tmpl")
	w.src.SnapshotSize("tank/tmpl", "base", templateSize)
	w.src.SnapshotSize("tank/tmpl", "later", templateSize)
	for _, c := range []struct{ fs, origin string }{{"tank/vm1", "base"}, {"tank/vm2", "base"}, {"tank/vm3", "later"}} {
		w.src.Clone("tank/tmpl", c.origin, c.fs)
		w.src.SnapshotSize(c.fs, "s1", cloneSize)
	}
	return w
}

const (
	templateSize = 1 << 20
	cloneSize    = 1000
)

func (w *world) plan(t *testing.T, cfg replication.Config) map[string]*replication.FilesystemPlan {
	t.Helper()
	rep, err := replication.Plan(context.Background(), cfg, w.sender(), w.receiver())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]*replication.FilesystemPlan{}
	for _, fp := range rep.Filesystems {
		m[fp.Filesystem] = fp
	}
	return m
}

func planSteps(fp *replication.FilesystemPlan) string {
	var parts []string
	for _, s := range fp.Steps {
		from := "-"
		if s.From != nil {
			from = *s.From
		}
		parts = append(parts, from+">"+s.To)
	}
	return strings.Join(parts, " ")
}

// assertClone checks that the destination dst is a clone of origin holding
// only its own data, and that its snapshots are the source's (guids).
func assertClone(t *testing.T, w *world, src, dst, origin string) {
	t.Helper()
	if got := w.dst.Origin(dst); got != origin {
		t.Errorf("origin of %s = %q, want %q", dst, got, origin)
	}
	if used, want := w.dst.Used(dst), w.src.Used(src); used != want {
		t.Errorf("%s holds %d bytes of its own, want %d as %s on the source", dst, used, want, src)
	}
	assertSameGuids(t, w, src, dst)
}

func assertSameGuids(t *testing.T, w *world, src, dst string) {
	t.Helper()
	guids := func(z *memzfs.ZFS, fs string) []uint64 {
		var g []uint64
		for _, v := range z.Versions(fs) {
			if v.Type == pdu.Snapshot {
				g = append(g, v.Guid)
			}
		}
		return g
	}
	if s, d := guids(w.src, src), guids(w.dst, dst); !slices.Equal(s, d) {
		t.Errorf("guids of %s %v, of %s %v", src, s, dst, d)
	}
}

func TestClonesReceivedAsClones(t *testing.T) {
	for _, jobs := range []int{1, 4} {
		t.Run(map[int]string{1: "one job", 4: "four jobs"}[jobs], func(t *testing.T) {
			w := templateWorld(t)
			cfg := w.config()
			cfg.Jobs = jobs

			plan := w.plan(t, cfg)
			// --initial newest, and yet the template's full send is of
			// @base, the oldest origin.
			if got, want := planSteps(plan["tank/tmpl"]), "->base base>later"; got != want {
				t.Errorf("template steps %q, want %q", got, want)
			}
			if got := plan["tank/tmpl"].Resolution; !strings.Contains(got, "@base, the oldest snapshot that clones need as their origin") {
				t.Errorf("template resolution %q", got)
			}
			for fs, origin := range map[string]string{"tank/vm1": "base", "tank/vm2": "base", "tank/vm3": "later"} {
				if got, want := planSteps(plan[fs]), "tank/tmpl@"+origin+">s1"; got != want {
					t.Errorf("%s steps %q, want %q", fs, got, want)
				}
				if got := plan[fs].Resolution; !strings.HasPrefix(got, "received as a clone of tank/tmpl@"+origin) {
					t.Errorf("%s resolution %q", fs, got)
				}
			}

			rep := w.drive(t, cfg)
			if rep.Status != replication.Completed.String() || rep.Failed() {
				t.Fatalf("run: %+v", allFilesystems(rep))
			}
			calls := w.src.Calls()
			for _, want := range []string{"Send tank/tmpl full @base", "Send tank/vm1 -i tank/tmpl@base @s1", "Send tank/vm3 -i tank/tmpl@later @s1"} {
				if !slices.Contains(calls, want) {
					t.Errorf("source calls %q lack %q", calls, want)
				}
			}
			assertSnapshots(t, w.dst, "backup/tank/tmpl", "base", "later")
			assertSameGuids(t, w, "tank/tmpl", "backup/tank/tmpl")
			assertClone(t, w, "tank/vm1", "backup/tank/vm1", "backup/tank/tmpl@base")
			assertClone(t, w, "tank/vm2", "backup/tank/vm2", "backup/tank/tmpl@base")
			assertClone(t, w, "tank/vm3", "backup/tank/vm3", "backup/tank/tmpl@later")
			if f := allFilesystems(rep)["tank/vm1"]; f.Bytes >= templateSize {
				t.Errorf("vm1 sent %d bytes: its origin's data went along", f.Bytes)
			}

			// A later incremental of a clone is an ordinary one.
			w.src.Snapshot("tank/vm1", "s2")
			rep = w.drive(t, cfg)
			if rep.Failed() {
				t.Fatalf("second run: %+v", allFilesystems(rep))
			}
			if got := stepsText(allFilesystems(rep)["tank/vm1"]); got != "s1>s2:Completed" {
				t.Errorf("second run vm1: %s", got)
			}
			assertClone(t, w, "tank/vm1", "backup/tank/vm1", "backup/tank/tmpl@base")
		})
	}
}

func TestCloneSentInFullWhenItsOriginCannotBeThere(t *testing.T) {
	cases := []struct {
		name   string
		config func(*replication.Config)
		reason string
	}{
		{"origin excluded", func(c *replication.Config) { c.Exclude = []*regexp.Regexp{regexp.MustCompile("tmpl")} },
			"its origin's filesystem tank/tmpl is excluded"},
		{"origin not selected", func(c *replication.Config) { c.Snapshots = regexp.MustCompile("^(s1|later)$") },
			"its origin tank/tmpl@base is not selected by --snapshots"},
		{"origin outside SRC", func(c *replication.Config) { c.SourceRoot, c.DestRoot = "tank/vm1", "backup/vm1" },
			"its origin tank/tmpl@base is outside SRC tank/vm1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := templateWorld(t)
			cfg := w.config()
			c.config(&cfg)
			dst := strings.Replace("tank/vm1", cfg.SourceRoot, cfg.DestRoot, 1)
			if cfg.SourceRoot == "tank" {
				dst = "backup/tank/vm1"
			}
			fp := w.plan(t, cfg)["tank/vm1"]
			if fp == nil {
				t.Fatal("no plan for tank/vm1")
			}
			if got := planSteps(fp); got != "->s1" {
				t.Errorf("steps %q, want a full send", got)
			}
			if !strings.Contains(fp.Resolution, "sent in full, not as a clone of tank/tmpl@base: "+c.reason) || fp.Problem != "" {
				t.Errorf("resolution %q, problem %q", fp.Resolution, fp.Problem)
			}
			r := replication.NewReplication(cfg)
			r.Drive(context.Background(), w.src.Sender(cfg.SourceRoot, true), w.dst.Receiver(cfg.DestRoot, true))
			rep := r.Report()
			f := allFilesystems(rep)["tank/vm1"]
			if rep.Failed() || f.Problem != "" {
				t.Fatalf("run: %+v", allFilesystems(rep))
			}
			if got := w.dst.Origin(dst); got != "" {
				t.Errorf("%s is a clone of %s", dst, got)
			}
			assertSameGuids(t, w, "tank/vm1", dst)
		})
	}
}

func TestCloneOfOriginAlreadyOnDestination(t *testing.T) {
	w := newWorld(t, "tank/tmpl")
	w.src.SnapshotSize("tank/tmpl", "base", templateSize)
	cfg := w.config()
	if rep := w.drive(t, cfg); rep.Failed() {
		t.Fatalf("first run: %+v", allFilesystems(rep))
	}
	w.src.Snapshot("tank/tmpl", "later")
	w.src.Clone("tank/tmpl", "base", "tank/vm1")
	w.src.SnapshotSize("tank/vm1", "s1", cloneSize)
	w.src.Clone("tank/tmpl", "later", "tank/vm2")
	w.src.SnapshotSize("tank/vm2", "s1", cloneSize)

	plan := w.plan(t, cfg)
	if got := planSteps(plan["tank/vm1"]); got != "tank/tmpl@base>s1" {
		t.Errorf("vm1 steps %q", got)
	}
	if got := plan["tank/vm1"].Resolution; strings.Contains(got, "after") {
		t.Errorf("vm1 waits although its origin is there: %q", got)
	}
	if got := plan["tank/vm2"].Resolution; !strings.Contains(got, "after tank/tmpl's step that brings @later") {
		t.Errorf("vm2 resolution %q", got)
	}
	if rep := w.drive(t, cfg); rep.Failed() {
		t.Fatalf("second run: %+v", allFilesystems(rep))
	}
	assertClone(t, w, "tank/vm1", "backup/tank/vm1", "backup/tank/tmpl@base")
	assertClone(t, w, "tank/vm2", "backup/tank/vm2", "backup/tank/tmpl@later")
}

func TestCloneOfOriginNoLongerSendable(t *testing.T) {
	// The template went over with --initial newest before the clone
	// existed: its @base never reached the destination, and cannot now.
	w := newWorld(t, "tank/tmpl")
	w.src.SnapshotSize("tank/tmpl", "base", templateSize)
	w.src.SnapshotSize("tank/tmpl", "later", templateSize)
	cfg := w.config()
	if rep := w.drive(t, cfg); rep.Failed() {
		t.Fatalf("first run: %+v", allFilesystems(rep))
	}
	w.src.Clone("tank/tmpl", "base", "tank/vm1")
	w.src.SnapshotSize("tank/vm1", "s1", cloneSize)

	fp := w.plan(t, cfg)["tank/vm1"]
	if got := planSteps(fp); got != "->s1" {
		t.Errorf("steps %q", got)
	}
	if !strings.Contains(fp.Resolution, "its origin tank/tmpl@base is not on the destination and this run does not send it") || fp.Problem != "" {
		t.Errorf("resolution %q, problem %q", fp.Resolution, fp.Problem)
	}
	if rep := w.drive(t, cfg); rep.Failed() {
		t.Fatalf("second run: %+v", allFilesystems(rep))
	}
	assertSameGuids(t, w, "tank/vm1", "backup/tank/vm1")
}

func TestCloneGivenUpWhenItsOriginFails(t *testing.T) {
	w := templateWorld(t)
	cfg := w.config()
	w.dst.Hook = func(op memzfs.Op, fs string) error {
		if op == memzfs.OpReceive && fs == "backup/tank/tmpl" {
			return pdu.PermanentError(errors.New("out of space"))
		}
		return nil
	}
	rep := w.drive(t, cfg)
	fss := allFilesystems(rep)
	for _, fs := range []string{"tank/vm1", "tank/vm2", "tank/vm3"} {
		f := fss[fs]
		if f.Status != replication.FilesystemPermanentError.String() || !strings.Contains(f.Problem, "which did not reach the destination because tank/tmpl failed") {
			t.Errorf("%s: %s %q", fs, f.Status, f.Problem)
		}
	}
	for _, c := range w.src.Calls() {
		if strings.HasPrefix(c, "Send tank/vm") {
			t.Errorf("a clone was sent: %s", c)
		}
	}
	if rep.Status != replication.Completed.String() {
		t.Errorf("run status %s", rep.Status)
	}
}

func TestClonePromotedOnSourceLater(t *testing.T) {
	w := templateWorld(t)
	cfg := w.config()
	if rep := w.drive(t, cfg); rep.Failed() {
		t.Fatalf("first run: %+v", allFilesystems(rep))
	}
	// vm1 takes over @base; the template becomes a clone of vm1@base.
	w.src.Promote("tank/vm1")
	if got := w.src.Origin("tank/tmpl"); got != "tank/vm1@base" {
		t.Fatalf("after promote, template origin %q", got)
	}
	w.src.Snapshot("tank/vm1", "s2")
	w.src.Snapshot("tank/tmpl", "s3")
	before := len(w.dst.Calls())

	rep := w.drive(t, cfg)
	if rep.Failed() {
		t.Fatalf("run after promote: %+v", allFilesystems(rep))
	}
	for _, c := range w.dst.Calls()[before:] {
		if strings.HasPrefix(c, "Destroy") || strings.HasPrefix(c, "Rollback") {
			t.Errorf("destination changed destructively: %s", c)
		}
	}
	assertSnapshots(t, w.dst, "backup/tank/tmpl", "base", "later", "s3")
	assertSnapshots(t, w.dst, "backup/tank/vm1", "s1", "s2")
	// The destination keeps its own lineage: vm1 is still the clone there.
	if got := w.dst.Origin("backup/tank/vm1"); got != "backup/tank/tmpl@base" {
		t.Errorf("destination vm1 origin %q", got)
	}
}

func TestPromotedCloneToFreshDestination(t *testing.T) {
	w := templateWorld(t)
	w.src.Promote("tank/vm1")
	cfg := w.config()
	plan := w.plan(t, cfg)
	// vm1 now holds @base and @s1; the template is a clone of vm1@base.
	if got := planSteps(plan["tank/vm1"]); got != "->base base>s1" {
		t.Errorf("vm1 steps %q", got)
	}
	if got := planSteps(plan["tank/tmpl"]); got != "tank/vm1@base>later" {
		t.Errorf("template steps %q", got)
	}
	if rep := w.drive(t, cfg); rep.Failed() {
		t.Fatalf("run: %+v", allFilesystems(rep))
	}
	assertClone(t, w, "tank/tmpl", "backup/tank/tmpl", "backup/tank/vm1@base")
	assertClone(t, w, "tank/vm2", "backup/tank/vm2", "backup/tank/vm1@base")
	assertClone(t, w, "tank/vm3", "backup/tank/vm3", "backup/tank/tmpl@later")
}

func TestCloneWaitsThroughItsOriginsRetry(t *testing.T) {
	w := templateWorld(t)
	cfg := w.config()
	cfg.Jobs = 4
	var failed atomic.Bool
	w.dst.Hook = func(op memzfs.Op, fs string) error {
		if op == memzfs.OpReceive && fs == "backup/tank/tmpl" && failed.CompareAndSwap(false, true) {
			return pdu.RetryableError(errors.New("connection lost"))
		}
		return nil
	}
	rep := w.drive(t, cfg)
	if rep.Failed() || !failed.Load() {
		t.Fatalf("run: %+v (origin failed once: %v)", allFilesystems(rep), failed.Load())
	}
	if got := stepsText(allFilesystems(rep)["tank/vm1"]); got != "tank/tmpl@base>s1:Completed" {
		t.Errorf("vm1: %s", got)
	}
	assertClone(t, w, "tank/vm1", "backup/tank/vm1", "backup/tank/tmpl@base")
	assertClone(t, w, "tank/vm3", "backup/tank/vm3", "backup/tank/tmpl@later")
}

func TestCloneInterruptedFirstReceiveIsSentAgainAsClone(t *testing.T) {
	w := templateWorld(t)
	cfg := w.config()
	cfg.Retries = 0
	w.src.Hook = func(op memzfs.Op, fs string) error {
		if op == memzfs.OpSend && fs == "tank/vm1" {
			w.src.FailNext(memzfs.OpStream, 1, pdu.RetryableError(errors.New("connection lost")))
		}
		return nil
	}
	w.drive(t, cfg)
	w.src.Hook = nil
	if w.dst.ResumeToken("backup/tank/vm1") == "" {
		t.Fatal("the broken clone receive left no partial state")
	}

	fp := w.plan(t, cfg)["tank/vm1"]
	if got := planSteps(fp); got != "tank/tmpl@base>s1" || !strings.Contains(fp.Resolution, "received as a clone") {
		t.Errorf("plan after the interruption: %q, %q", got, fp.Resolution)
	}
	if rep := w.drive(t, cfg); rep.Failed() {
		t.Fatalf("second run: %+v", allFilesystems(rep))
	}
	assertClone(t, w, "tank/vm1", "backup/tank/vm1", "backup/tank/tmpl@base")
}
