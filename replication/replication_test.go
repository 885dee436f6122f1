package replication_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zrep/zrep/pdu"
	"github.com/zrep/zrep/replication"
	"github.com/zrep/zrep/replication/memzfs"
)

// instantClock fires every timer at once, moving its time forward, so the
// retry machine runs without waiting. onTimer, when set, decides instead.
type instantClock struct {
	mu      sync.Mutex
	now     time.Time
	waits   []time.Duration
	onTimer func(d time.Duration) (fire bool)
}

func newClock() *instantClock { return &instantClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *instantClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *instantClock) NewTimer(d time.Duration) replication.Timer {
	c.mu.Lock()
	c.waits = append(c.waits, d)
	hook := c.onTimer
	c.mu.Unlock()
	t := &instantTimer{c: make(chan time.Time, 1)}
	if hook != nil && !hook(d) {
		return t
	}
	c.mu.Lock()
	c.now = c.now.Add(d)
	t.c <- c.now
	c.mu.Unlock()
	return t
}

func (c *instantClock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.waits)
}

type instantTimer struct{ c chan time.Time }

func (t *instantTimer) C() <-chan time.Time { return t.c }
func (t *instantTimer) Stop() bool          { return true }

// world is a source machine with pool tank and a destination with pool backup.
type world struct {
	src, dst *memzfs.ZFS
	clock    *instantClock
}

func newWorld(t *testing.T, srcFilesystems ...string) *world {
	t.Helper()
	w := &world{src: memzfs.New(), dst: memzfs.New(), clock: newClock()}
	w.src.CreateFilesystem("tank")
	for _, fs := range srcFilesystems {
		w.src.CreateFilesystem(fs)
	}
	w.dst.CreateFilesystem("backup")
	return w
}

func (w *world) config() replication.Config {
	return replication.Config{
		SourceRoot: "tank",
		DestRoot:   "backup/tank",
		Retries:    3,
		RetryWait:  10 * time.Second,
		Clock:      w.clock,
	}
}

func (w *world) sender() replication.Sender     { return w.src.Sender("tank", true) }
func (w *world) receiver() replication.Receiver { return w.dst.Receiver("backup/tank", true) }

func (w *world) drive(t *testing.T, cfg replication.Config) *replication.Report {
	t.Helper()
	r := replication.NewReplication(cfg)
	r.Drive(context.Background(), w.sender(), w.receiver())
	return r.Report()
}

func allFilesystems(rep *replication.Report) map[string]*replication.FilesystemReport {
	m := map[string]*replication.FilesystemReport{}
	for _, f := range append(append(slices.Clone(rep.Completed), rep.Pending...), rep.Active) {
		if f != nil {
			m[f.Filesystem] = f
		}
	}
	return m
}

func stepsText(f *replication.FilesystemReport) string {
	var parts []string
	for _, s := range f.Steps {
		from := "-"
		if s.From != nil {
			from = *s.From
		}
		parts = append(parts, fmt.Sprintf("%s>%s:%s", from, s.To, s.Status))
	}
	return strings.Join(parts, " ")
}

func assertSnapshots(t *testing.T, z *memzfs.ZFS, fs string, want ...string) {
	t.Helper()
	if got := z.SnapshotNames(fs); !slices.Equal(got, want) {
		t.Errorf("%s has %v, want %v", fs, got, want)
	}
}

func TestDriveFullThenIncremental(t *testing.T) {
	w := newWorld(t, "tank/a", "tank/a/b", "tank/c")
	for _, fs := range []string{"tank/a", "tank/a/b", "tank/c"} {
		w.src.Snapshot(fs, "s1")
		w.src.Snapshot(fs, "s2")
	}

	rep := w.drive(t, w.config())
	if rep.Status != replication.Completed.String() || rep.Failed() {
		t.Fatalf("first run: %+v", rep)
	}
	for _, fs := range []string{"a", "a/b", "c"} {
		assertSnapshots(t, w.dst, "backup/tank/"+fs, "s2")
	}
	if !w.dst.IsPlaceholder("backup/tank") {
		t.Errorf("backup/tank should be a placeholder for the source root without snapshots")
	}
	fss := allFilesystems(rep)
	if f := fss["tank"]; f.Status != replication.FilesystemCompleted.String() || len(f.Steps) != 0 {
		t.Errorf("tank: %+v", f)
	}
	if got := stepsText(fss["tank/a"]); got != "->s2:Completed" {
		t.Errorf("tank/a steps %s", got)
	}
	if rep.Bytes == 0 || fss["tank/a"].Bytes != fss["tank/a"].Steps[0].Bytes || *fss["tank/a"].Steps[0].ExpectedBytes != fss["tank/a"].Bytes {
		t.Errorf("bytes not counted as expected: %+v", fss["tank/a"].Steps[0])
	}

	for _, s := range []string{"s3", "s4", "s5"} {
		w.src.Snapshot("tank/a", s)
	}
	w.src.Snapshot("tank/c", "s3")
	rep = w.drive(t, w.config())
	if rep.Status != replication.Completed.String() || rep.Failed() {
		t.Fatalf("second run: %+v", rep)
	}
	assertSnapshots(t, w.dst, "backup/tank/a", "s2", "s3", "s4", "s5")
	assertSnapshots(t, w.dst, "backup/tank/c", "s2", "s3")
	fss = allFilesystems(rep)
	if got := stepsText(fss["tank/a"]); got != "s2>s3:Completed s3>s4:Completed s4>s5:Completed" {
		t.Errorf("tank/a steps %s", got)
	}
	if !slices.Contains(w.src.Calls(), "Send tank/a -I @s2 @s5") {
		t.Errorf("consecutive steps should share one -I stream; sends: %v", w.src.Calls())
	}
	if len(w.clock.Waits()) != 0 {
		t.Errorf("no retry wait expected, got %v", w.clock.Waits())
	}
}

func TestDriveSeparateStepsAndInitialAll(t *testing.T) {
	w := newWorld(t, "tank/a")
	for _, s := range []string{"s1", "s2", "s3"} {
		w.src.Snapshot("tank", s)
	}
	cfg := w.config()
	cfg.Initial = replication.InitialAll
	cfg.SeparateSteps = true
	rep := w.drive(t, cfg)
	if rep.Status != replication.Completed.String() {
		t.Fatalf("%+v", rep)
	}
	assertSnapshots(t, w.dst, "backup/tank", "s1", "s2", "s3")
	if got := stepsText(allFilesystems(rep)["tank"]); got != "->s1:Completed s1>s2:Completed s2>s3:Completed" {
		t.Errorf("steps %s", got)
	}
	want := []string{"Send tank full @s1", "Send tank -i @s1 @s2", "Send tank -i @s2 @s3"}
	if got := w.src.Calls(); !slices.Equal(got, want) {
		t.Errorf("sends %v, want %v", got, want)
	}
	if f := allFilesystems(rep)["tank/a"]; f.Status != replication.FilesystemPermanentError.String() || !strings.Contains(f.Problem, "sender does not have any versions") {
		t.Errorf("tank/a without snapshots or children: %+v", f)
	}
}

func TestDrivePlanningErrorThenSuccess(t *testing.T) {
	w := newWorld(t)
	w.src.Snapshot("tank", "s1")
	w.src.FailNext(memzfs.OpList, 1, pdu.RetryableError(errors.New("connection reset")))
	rep := w.drive(t, w.config())
	if rep.Status != replication.Completed.String() || rep.Problem != "" {
		t.Fatalf("%+v", rep)
	}
	assertSnapshots(t, w.dst, "backup/tank", "s1")
	if waits := w.clock.Waits(); !slices.Equal(waits, []time.Duration{10 * time.Second}) {
		t.Errorf("waits %v, want one retry wait", waits)
	}
}

func TestDrivePlanningErrorsExhausted(t *testing.T) {
	w := newWorld(t)
	w.src.Snapshot("tank", "s1")
	w.src.FailNext(memzfs.OpList, 100, pdu.RetryableError(errors.New("connection reset")))
	cfg := w.config()
	cfg.Retries = 2
	rep := w.drive(t, cfg)
	if rep.Status != replication.PlanningError.String() || !strings.Contains(rep.Problem, "connection reset") || !strings.Contains(rep.Problem, "list source tank") {
		t.Fatalf("%+v", rep)
	}
	if n := len(w.clock.Waits()); n != 2 {
		t.Errorf("%d retry waits, want 2 (3 attempts)", n)
	}
	js, _ := json.Marshal(rep)
	if !bytes.Contains(js, []byte(`"completed":[],"pending":[],"active":null`)) {
		t.Errorf("json %s", js)
	}
}

func TestDrivePermanentPlanningErrorEndsAtOnce(t *testing.T) {
	w := newWorld(t)
	w.src.Snapshot("tank", "s1")
	r := replication.NewReplication(w.config())
	r.Drive(context.Background(), w.sender(), w.dst.Receiver("nopool/tank", true))
	rep := r.Report()
	if rep.Status != replication.PlanningError.String() || !strings.Contains(rep.Problem, "parent of destination does not exist") {
		t.Fatalf("%+v", rep)
	}
	if n := len(w.clock.Waits()); n != 0 {
		t.Errorf("%d retry waits for a permanent planning error", n)
	}
}

func TestDriveRetryableStepErrorThenSuccess(t *testing.T) {
	w := newWorld(t)
	w.src.Snapshot("tank", "s1")
	w.dst.FailNext(memzfs.OpReceive, 1, pdu.RetryableError(errors.New("connection lost")))
	rep := w.drive(t, w.config())
	if rep.Status != replication.Completed.String() || rep.Failed() {
		t.Fatalf("%+v", rep)
	}
	assertSnapshots(t, w.dst, "backup/tank", "s1")
	if waits := w.clock.Waits(); len(waits) != 1 {
		t.Errorf("waits %v, want one", waits)
	}
}

func TestDriveRetriesExhaustedOnOneFilesystem(t *testing.T) {
	w := newWorld(t, "tank/a", "tank/b", "tank/c")
	for _, fs := range []string{"tank", "tank/a", "tank/b", "tank/c"} {
		w.src.Snapshot(fs, "s1")
	}
	receives := 0
	w.dst.Hook = func(op memzfs.Op, fs string) error {
		if op == memzfs.OpReceive && fs == "backup/tank/b" {
			receives++
			return pdu.RetryableError(errors.New("stream broken"))
		}
		return nil
	}
	cfg := w.config()
	cfg.Retries = 2
	rep := w.drive(t, cfg)
	if rep.Status != replication.Completed.String() || !rep.Failed() {
		t.Fatalf("%+v", rep)
	}
	fss := allFilesystems(rep)
	b := fss["tank/b"]
	if b.Status != replication.FilesystemPermanentError.String() || !strings.Contains(b.Problem, "receive backup/tank/b: ") || b.Steps[0].Status != replication.StepPermanentError.String() {
		t.Errorf("tank/b: %+v %s", b, stepsText(b))
	}
	if receives != 3 {
		t.Errorf("%d receive attempts, want 1+Retries = 3", receives)
	}
	for _, fs := range []string{"tank", "tank/a", "tank/c"} {
		if fss[fs].Status != replication.FilesystemCompleted.String() {
			t.Errorf("%s: %+v", fs, fss[fs])
		}
	}
	assertSnapshots(t, w.dst, "backup/tank/c", "s1")
}

func TestDrivePermanentStepErrorIsNotRetried(t *testing.T) {
	w := newWorld(t)
	w.src.Snapshot("tank", "s1")
	w.dst.FailNext(memzfs.OpReceive, 1, pdu.PermanentError(errors.New("out of space")))
	rep := w.drive(t, w.config())
	f := allFilesystems(rep)["tank"]
	if f.Status != replication.FilesystemPermanentError.String() || !strings.Contains(f.Problem, "out of space") {
		t.Fatalf("%+v", f)
	}
	if len(w.clock.Waits()) != 0 {
		t.Errorf("permanent error must not wait")
	}
}

func TestDriveContextCancelledDuringRetryWait(t *testing.T) {
	w := newWorld(t, "tank/a")
	w.src.Snapshot("tank", "s1")
	w.src.Snapshot("tank/a", "s1")
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	stop := errors.New("interrupted by SIGINT")
	w.clock.onTimer = func(time.Duration) bool { cancel(stop); return false }
	w.dst.FailNext(memzfs.OpReceive, 1, pdu.RetryableError(errors.New("connection lost")))
	r := replication.NewReplication(w.config())
	r.Drive(ctx, w.sender(), w.receiver())
	rep := r.Report()
	if rep.Status != replication.ContextDone.String() || rep.Problem != stop.Error() {
		t.Fatalf("%+v", rep)
	}
	fss := allFilesystems(rep)
	if fss["tank"].Status != replication.FilesystemRetryWait.String() || fss["tank/a"].Status != replication.FilesystemReady.String() {
		t.Errorf("tank %s, tank/a %s", fss["tank"].Status, fss["tank/a"].Status)
	}
	js1, _ := json.Marshal(rep)
	js2, _ := json.Marshal(r.Report())
	if !bytes.Equal(js1, js2) {
		t.Errorf("report changed after Drive returned")
	}
}

func TestDriveContextCancelledDuringTransfer(t *testing.T) {
	w := newWorld(t)
	w.src.Snapshot("tank", "s1")
	ctx, cancel := context.WithCancel(context.Background())
	w.dst.Hook = func(op memzfs.Op, fs string) error {
		if op == memzfs.OpReceive {
			cancel()
			return pdu.RetryableError(context.Canceled)
		}
		return nil
	}
	r := replication.NewReplication(w.config())
	r.Drive(ctx, w.sender(), w.receiver())
	if rep := r.Report(); rep.Status != replication.ContextDone.String() || rep.Problem != context.Canceled.Error() {
		t.Fatalf("%+v", rep)
	}
}

func divergedWorld(t *testing.T) *world {
	w := newWorld(t)
	w.src.Snapshot("tank", "s1")
	w.src.Snapshot("tank", "s2")
	if rep := w.drive(t, w.config()); rep.Status != replication.Completed.String() || rep.Failed() {
		t.Fatalf("setup: %+v", rep)
	}
	w.dst.Snapshot("backup/tank", "local")
	w.src.Snapshot("tank", "s3")
	return w
}

func TestDriveDivergenceRefusedByDefault(t *testing.T) {
	w := divergedWorld(t)
	rep := w.drive(t, w.config())
	f := allFilesystems(rep)["tank"]
	if f.Status != replication.FilesystemPermanentError.String() || !strings.Contains(f.Problem, "@local") || !strings.Contains(f.Problem, "use --rollback") {
		t.Fatalf("%+v", f)
	}
	assertSnapshots(t, w.dst, "backup/tank", "s2", "local")
}

func TestDriveDivergenceResolvedWithRollback(t *testing.T) {
	w := divergedWorld(t)
	cfg := w.config()
	cfg.Rollback = true
	rep := w.drive(t, cfg)
	if f := allFilesystems(rep)["tank"]; f.Status != replication.FilesystemCompleted.String() || stepsText(f) != "s2>s3:Completed" {
		t.Fatalf("%+v %s", f, stepsText(f))
	}
	assertSnapshots(t, w.dst, "backup/tank", "s2", "s3")
	if !slices.Contains(w.dst.Calls(), "Rollback backup/tank@s2") {
		t.Errorf("no rollback in %v", w.dst.Calls())
	}
}

func TestDriveNoCommonSnapshotIsNeverDestroyed(t *testing.T) {
	w := newWorld(t)
	w.src.Snapshot("tank", "s1")
	w.dst.CreateFilesystem("backup/tank")
	w.dst.Snapshot("backup/tank", "s1") // same name, other guid
	cfg := w.config()
	cfg.Rollback = true
	rep := w.drive(t, cfg)
	f := allFilesystems(rep)["tank"]
	if f.Status != replication.FilesystemPermanentError.String() || !strings.Contains(f.Problem, "no common snapshot") {
		t.Fatalf("%+v", f)
	}
	if calls := w.dst.Calls(); len(calls) != 0 {
		t.Errorf("destination changed: %v", calls)
	}
}

func TestDriveExistingEmptyDestination(t *testing.T) {
	w := newWorld(t)
	w.src.Snapshot("tank", "s1")
	w.dst.CreateFilesystem("backup/tank")
	rep := w.drive(t, w.config())
	if f := allFilesystems(rep)["tank"]; f.Status != replication.FilesystemPermanentError.String() || !strings.Contains(f.Problem, "--rollback") {
		t.Fatalf("without --rollback: %+v", f)
	}
	cfg := w.config()
	cfg.Rollback = true
	rep = w.drive(t, cfg)
	if f := allFilesystems(rep)["tank"]; f.Status != replication.FilesystemCompleted.String() {
		t.Fatalf("with --rollback: %+v", f)
	}
	assertSnapshots(t, w.dst, "backup/tank", "s1")
}

func TestDriveSnapshotsFilterNeverSendsExcludedSnapshots(t *testing.T) {
	w := newWorld(t)
	for _, s := range []string{"daily-1", "hourly-1", "daily-2", "daily-3", "hourly-2", "daily-4"} {
		w.src.Snapshot("tank", s)
	}
	cfg := w.config()
	cfg.Snapshots = regexp.MustCompile(`^daily-`)
	cfg.Initial = replication.InitialAll
	rep := w.drive(t, cfg)
	if rep.Status != replication.Completed.String() || rep.Failed() {
		t.Fatalf("%+v", rep)
	}
	assertSnapshots(t, w.dst, "backup/tank", "daily-1", "daily-2", "daily-3", "daily-4")
	want := []string{"Send tank full @daily-1", "Send tank -i @daily-1 @daily-2", "Send tank -i @daily-2 @daily-3", "Send tank -i @daily-3 @daily-4"}
	if got := w.src.Calls(); !slices.Equal(got, want) {
		t.Errorf("sends %v, want %v", got, want)
	}
}

func TestDriveBookmarkAsBase(t *testing.T) {
	w := newWorld(t)
	w.src.Snapshot("tank", "s1")
	if rep := w.drive(t, w.config()); rep.Failed() {
		t.Fatalf("%+v", rep)
	}
	w.src.Bookmark("tank", "s1", "s1")
	w.src.DestroySnapshot("tank", "s1")
	w.src.Snapshot("tank", "s2")
	w.src.Snapshot("tank", "s3")
	rep := w.drive(t, w.config())
	if f := allFilesystems(rep)["tank"]; stepsText(f) != "#s1>s2:Completed s2>s3:Completed" {
		t.Fatalf("%s", stepsText(f))
	}
	assertSnapshots(t, w.dst, "backup/tank", "s1", "s2", "s3")
}

func TestDrivePlaceholderReplacedOnceSourceHasSnapshots(t *testing.T) {
	w := newWorld(t, "tank/p/child")
	w.src.Snapshot("tank/p/child", "s1")
	cfg := w.config()
	cfg.Exclude = []*regexp.Regexp{regexp.MustCompile(`^tank$`)}
	rep := w.drive(t, cfg)
	if rep.Failed() || !w.dst.IsPlaceholder("backup/tank") || !w.dst.IsPlaceholder("backup/tank/p") {
		t.Fatalf("first run: %+v", rep)
	}
	if f := allFilesystems(rep)["tank/p"]; f.Status != replication.FilesystemCompleted.String() {
		t.Errorf("placeholder source: %+v", f)
	}

	w.src.Snapshot("tank/p", "s1")
	rep = w.drive(t, cfg)
	if rep.Failed() {
		t.Fatalf("second run: %+v", rep)
	}
	assertSnapshots(t, w.dst, "backup/tank/p", "s1")
	if w.dst.IsPlaceholder("backup/tank/p") {
		t.Errorf("placeholder mark not cleared")
	}
	if !slices.Contains(w.dst.Calls(), "ClearPlaceholder backup/tank/p") {
		t.Errorf("calls %v", w.dst.Calls())
	}
}

// A placeholder that has snapshots of its own and none in common with its
// source is in conflict, as any other destination with unrelated
// snapshots: a permanent error, and its snapshots stay. SPEC 3: --rollback
// does not override it.
func TestDrivePlaceholderWithOwnSnapshotsIsAConflict(t *testing.T) {
	for _, rollback := range []bool{false, true} {
		t.Run(fmt.Sprintf("rollback=%v", rollback), func(t *testing.T) {
			w := newWorld(t, "tank/p/child")
			w.src.Snapshot("tank/p/child", "s1")
			cfg := w.config()
			cfg.Exclude = []*regexp.Regexp{regexp.MustCompile(`^tank$`)}
			if rep := w.drive(t, cfg); rep.Failed() || !w.dst.IsPlaceholder("backup/tank/p") {
				t.Fatalf("first run: %+v", rep)
			}
			w.dst.Snapshot("backup/tank/p", "own")
			w.src.Snapshot("tank/p", "s1")
			before := len(w.dst.Calls())

			cfg.Rollback = rollback
			rep := w.drive(t, cfg)
			f := allFilesystems(rep)["tank/p"]
			if f.Status != replication.FilesystemPermanentError.String() || !strings.Contains(f.Problem, "common") {
				t.Fatalf("tank/p: %+v, want a permanent error: no common snapshot", f)
			}
			assertSnapshots(t, w.dst, "backup/tank/p", "own")
			if !w.dst.IsPlaceholder("backup/tank/p") {
				t.Errorf("placeholder mark cleared")
			}
			for _, c := range w.dst.Calls()[before:] {
				if strings.Contains(c, "backup/tank/p@") || strings.Contains(c, "Placeholder backup/tank/p") {
					t.Errorf("the placeholder was touched: %s", c)
				}
			}
			plan, err := replication.Plan(context.Background(), cfg, w.sender(), w.receiver())
			if err != nil {
				t.Fatal(err)
			}
			for _, pf := range plan.Filesystems {
				if pf.Filesystem == "tank/p" && (len(pf.Steps) != 0 || pf.Problem == "") {
					t.Errorf("plan for tank/p: %+v, want no steps and a problem", pf)
				}
			}
		})
	}
}

// Clearing a placeholder keeps the canmount the operator set with
// --recv-set: the engine hands its receive options to ClearPlaceholder.
func TestDrivePlaceholderClearKeepsRecvSetCanmount(t *testing.T) {
	w := newWorld(t, "tank/p/child")
	w.src.Snapshot("tank/p/child", "s1")
	cfg := w.config()
	cfg.Exclude = []*regexp.Regexp{regexp.MustCompile(`^tank$`)}
	cfg.Receive.Set = []pdu.Property{{Name: "canmount", Value: "noauto"}}
	if rep := w.drive(t, cfg); rep.Failed() {
		t.Fatalf("first run: %+v", rep)
	}
	w.src.Snapshot("tank/p", "s1")
	if rep := w.drive(t, cfg); rep.Failed() {
		t.Fatalf("second run: %+v", rep)
	}
	if !slices.Contains(w.dst.Calls(), "ClearPlaceholder backup/tank/p keeping canmount=noauto") {
		t.Errorf("calls %v", w.dst.Calls())
	}
}

func TestDriveResumesBrokenStream(t *testing.T) {
	w := newWorld(t)
	w.src.Snapshot("tank", "s1")
	w.src.FailNext(memzfs.OpStream, 1, pdu.RetryableError(errors.New("ssh: connection lost")))
	rep := w.drive(t, w.config())
	f := allFilesystems(rep)["tank"]
	if f.Status != replication.FilesystemCompleted.String() || !f.Steps[0].Resumed {
		t.Fatalf("%+v %+v", f, f.Steps[0])
	}
	assertSnapshots(t, w.dst, "backup/tank", "s1")
	if !slices.Contains(w.src.Calls(), "Send tank resume full @s1") {
		t.Errorf("sends %v", w.src.Calls())
	}
}

func TestDriveBrokenIntermediatesStreamKeepsWhatArrived(t *testing.T) {
	w := newWorld(t)
	w.dst.Resumable = false
	w.src.Snapshot("tank", "s1")
	if rep := w.drive(t, w.config()); rep.Failed() {
		t.Fatalf("%+v", rep)
	}
	for _, s := range []string{"s2", "s3", "s4"} {
		w.src.Snapshot("tank", s)
	}
	w.src.FailNext(memzfs.OpStream, 1, pdu.RetryableError(errors.New("ssh: connection lost")))
	rep := w.drive(t, w.config())
	if f := allFilesystems(rep)["tank"]; f.Status != replication.FilesystemCompleted.String() {
		t.Fatalf("%+v %s", f, stepsText(f))
	}
	assertSnapshots(t, w.dst, "backup/tank", "s1", "s2", "s3", "s4")
}

func TestDriveDiscardsPartialStateThatCannotBeResumed(t *testing.T) {
	w := newWorld(t)
	w.src.Snapshot("tank", "s1")
	if rep := w.drive(t, w.config()); rep.Failed() {
		t.Fatalf("%+v", rep)
	}
	w.src.Snapshot("tank", "s2")
	w.src.FailNext(memzfs.OpStream, 1, pdu.RetryableError(errors.New("killed")))
	cfg := w.config()
	cfg.Retries = 0
	if rep := w.drive(t, cfg); !rep.Failed() || w.dst.ResumeToken("backup/tank") == "" {
		t.Fatalf("setup: want a failed run leaving partial state: %+v", rep)
	}
	w.src.DestroySnapshot("tank", "s2")
	w.src.Snapshot("tank", "s3")

	p, err := replication.Plan(context.Background(), w.config(), w.sender(), w.receiver())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Filesystems[0].Resolution, "discarded") {
		t.Errorf("plan resolution %q", p.Filesystems[0].Resolution)
	}
	before := len(w.dst.Calls())
	rep := w.drive(t, w.config())
	if rep.Failed() {
		t.Fatalf("%+v", rep)
	}
	calls := w.dst.Calls()[before:]
	if len(calls) < 2 || calls[0] != "AbortPartialReceive backup/tank" {
		t.Errorf("calls %v: want the abort before the first step", calls)
	}
	assertSnapshots(t, w.dst, "backup/tank", "s1", "s3")
}

func TestDriveJobs(t *testing.T) {
	var fss []string
	for i := range 6 {
		fss = append(fss, fmt.Sprintf("tank/f%d", i), fmt.Sprintf("tank/f%d/child", i))
	}
	w := newWorld(t, fss...)
	for _, fs := range fss {
		w.src.Snapshot(fs, "s1")
		w.src.Snapshot(fs, "s2")
	}
	cfg := w.config()
	cfg.Jobs = 4
	w.dst.FailNext(memzfs.OpReceive, 2, pdu.RetryableError(errors.New("busy")))
	rep := w.drive(t, cfg)
	if rep.Status != replication.Completed.String() || rep.Failed() {
		t.Fatalf("%+v", rep)
	}
	for _, fs := range fss {
		assertSnapshots(t, w.dst, "backup/"+fs, "s2")
	}
	for _, c := range w.dst.Calls() {
		if strings.HasPrefix(c, "CreatePlaceholder backup/tank/") {
			t.Errorf("a child must wait for its parent's receive instead of creating a placeholder: %s", c)
		}
	}
}

func TestReportDuringDrive(t *testing.T) {
	for _, jobs := range []int{1, 3} {
		t.Run(fmt.Sprintf("jobs=%d", jobs), func(t *testing.T) {
			var fss []string
			for i := range 8 {
				fss = append(fss, fmt.Sprintf("tank/f%d", i))
			}
			w := newWorld(t, fss...)
			for _, fs := range fss {
				w.src.SnapshotSize(fs, "s1", 256<<10)
			}
			w.dst.FailNext(memzfs.OpReceive, 3, pdu.RetryableError(errors.New("busy")))
			cfg := w.config()
			cfg.Jobs = jobs
			r := replication.NewReplication(cfg)
			done := make(chan struct{})
			var reads int
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					rep := r.Report()
					if _, err := json.Marshal(rep); err != nil {
						t.Error(err)
					}
					rep.WriteText(&bytes.Buffer{})
					reads++
					select {
					case <-done:
						return
					default:
					}
				}
			}()
			r.Drive(context.Background(), w.sender(), w.receiver())
			close(done)
			wg.Wait()
			rep := r.Report()
			if rep.Status != replication.Completed.String() || rep.Failed() || rep.Bytes < 8*(256<<10) {
				t.Fatalf("%+v", rep)
			}
			if reads == 0 {
				t.Error("no report read during Drive")
			}
		})
	}
}

func TestDriveOnlyOnce(t *testing.T) {
	w := newWorld(t)
	w.src.Snapshot("tank", "s1")
	r := replication.NewReplication(w.config())
	r.Drive(context.Background(), w.sender(), w.receiver())
	first, _ := json.Marshal(r.Report())
	w.src.Snapshot("tank", "s2")
	r.Drive(context.Background(), w.sender(), w.receiver())
	second, _ := json.Marshal(r.Report())
	if !bytes.Equal(first, second) {
		t.Errorf("second Drive changed the report")
	}
}

func TestPlanAndDriveResumeInterruptedReceive(t *testing.T) {
	w := newWorld(t)
	w.src.Snapshot("tank", "s1")
	if rep := w.drive(t, w.config()); rep.Failed() {
		t.Fatalf("%+v", rep)
	}
	w.src.Snapshot("tank", "s2")
	w.src.Snapshot("tank", "s3")
	w.src.FailNext(memzfs.OpStream, 1, pdu.RetryableError(errors.New("killed")))
	cfg := w.config()
	cfg.Retries = 0
	cfg.SeparateSteps = true
	if rep := w.drive(t, cfg); !rep.Failed() || w.dst.ResumeToken("backup/tank") == "" {
		t.Fatalf("setup: want a failed run leaving partial state: %+v", rep)
	}

	p, err := replication.Plan(context.Background(), w.config(), w.sender(), w.receiver())
	if err != nil {
		t.Fatal(err)
	}
	f := p.Filesystems[0]
	if !strings.Contains(f.Resolution, "resume") || len(f.Steps) != 2 || *f.Steps[0].From != "s1" || f.Steps[0].To != "s2" {
		t.Fatalf("plan %+v", f)
	}
	rep := w.drive(t, w.config())
	fr := allFilesystems(rep)["tank"]
	if fr.Status != replication.FilesystemCompleted.String() || !fr.Steps[0].Resumed || fr.Steps[1].Resumed {
		t.Fatalf("%+v %+v", fr, fr.Steps)
	}
	assertSnapshots(t, w.dst, "backup/tank", "s1", "s2", "s3")
}

func TestDriveJobsChildWaitsForParentInRetryWait(t *testing.T) {
	w := newWorld(t, "tank/p/c", "tank/q")
	for _, fs := range []string{"tank/p", "tank/p/c", "tank/q"} {
		w.src.Snapshot(fs, "s1")
	}
	failed := false
	w.dst.Hook = func(op memzfs.Op, fs string) error {
		if op == memzfs.OpReceive && fs == "backup/tank/p" && !failed {
			failed = true
			return pdu.RetryableError(errors.New("busy"))
		}
		return nil
	}
	cfg := w.config()
	cfg.Jobs = 4
	rep := w.drive(t, cfg)
	if rep.Status != replication.Completed.String() || rep.Failed() {
		t.Fatalf("%+v", rep)
	}
	assertSnapshots(t, w.dst, "backup/tank/p/c", "s1")
	assertSnapshots(t, w.dst, "backup/tank/p", "s1")
	if got := w.dst.Calls(); slices.Contains(got, "CreatePlaceholder backup/tank/p") {
		t.Errorf("child created its parent as placeholder: %v", got)
	}
	if w.dst.IsPlaceholder("backup/tank/p") {
		t.Errorf("backup/tank/p left as placeholder")
	}
}
