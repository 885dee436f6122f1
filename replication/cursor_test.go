package replication_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/zrep/zrep/pdu"
	"github.com/zrep/zrep/replication"
	"github.com/zrep/zrep/replication/memzfs"
)

const testCursorID = "0123456789abcdef"

func (w *world) cursorConfig() replication.Config {
	cfg := w.config()
	cfg.CursorID = testCursorID
	return cfg
}

// cursors returns the names of fs's replication cursors of testCursorID.
func cursors(z *memzfs.ZFS, fs string) []string {
	var names []string
	for _, v := range z.Versions(fs) {
		if v.Type == pdu.Bookmark && pdu.IsCursor(v.Name, testCursorID) {
			names = append(names, v.Name)
		}
	}
	return names
}

// cursorOf is the cursor name of snapshot fs@snap on z.
func cursorOf(t *testing.T, z *memzfs.ZFS, fs, snap string) string {
	t.Helper()
	for _, v := range z.Versions(fs) {
		if v.Type == pdu.Snapshot && v.Name == snap {
			return pdu.CursorName(testCursorID, v.Guid)
		}
	}
	t.Fatalf("no snapshot %s@%s", fs, snap)
	return ""
}

func TestCursorNames(t *testing.T) {
	name := pdu.CursorName(testCursorID, 0xbeef)
	if name != "zrep_0123456789abcdef_000000000000beef" {
		t.Errorf("CursorName = %q", name)
	}
	for _, c := range []struct {
		name string
		want bool
	}{
		{name, true},
		{"zrep_0123456789abcdef_00000000000000ff", true},
		{"zrep_fedcba9876543210_000000000000beef", false}, // another destination
		{"zrep_0123456789abcdef_beef", false},
		{"zrep_0123456789abcdef_000000000000BEEF", false},
		{"zrep_0123456789abcdef_000000000000beef_x", false},
		{"s1", false},
	} {
		if got := pdu.IsCursor(c.name, testCursorID); got != c.want {
			t.Errorf("IsCursor(%q) = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestDriveCursorFollowsNewestReplicatedSnapshot: every completed stream
// leaves one cursor on its newest snapshot; the previous one is destroyed
// after the new one exists, and other destinations' cursors stay.
func TestDriveCursorFollowsNewestReplicatedSnapshot(t *testing.T) {
	w := newWorld(t, "tank/a")
	w.src.Snapshot("tank/a", "s1")
	w.src.Snapshot("tank/a", "s2")
	other := "zrep_fedcba9876543210_0000000000000001"
	w.src.Bookmark("tank/a", "s1", other)
	w.src.Bookmark("tank/a", "s1", "mine")

	if rep := w.drive(t, w.cursorConfig()); rep.Failed() {
		t.Fatalf("first run: %+v", rep)
	}
	first := cursorOf(t, w.src, "tank/a", "s2")
	if got := cursors(w.src, "tank/a"); !slices.Equal(got, []string{first}) {
		t.Fatalf("cursors after the first run: %v, want [%s]", got, first)
	}
	if got := cursors(w.src, "tank"); len(got) != 0 {
		t.Errorf("tank sent nothing but got cursors %v", got)
	}

	w.src.Snapshot("tank/a", "s3")
	w.src.Snapshot("tank/a", "s4")
	if rep := w.drive(t, w.cursorConfig()); rep.Failed() {
		t.Fatalf("second run: %+v", rep)
	}
	second := cursorOf(t, w.src, "tank/a", "s4")
	if got := cursors(w.src, "tank/a"); !slices.Equal(got, []string{second}) {
		t.Errorf("cursors after the second run: %v, want [%s]", got, second)
	}
	calls := w.src.Calls()
	create := slices.Index(calls, "Bookmark tank/a@s4 tank/a#"+second)
	destroy := slices.Index(calls, "Destroy tank/a#"+first)
	if create < 0 || destroy < 0 || destroy < create {
		t.Errorf("want the new cursor created, then the old one destroyed; source calls: %v", calls)
	}
	for _, keep := range []string{other, "mine"} {
		if !slices.ContainsFunc(w.src.Versions("tank/a"), func(v *pdu.FilesystemVersion) bool { return v.Name == keep }) {
			t.Errorf("bookmark #%s that is not this destination's cursor was destroyed", keep)
		}
	}
	assertSnapshots(t, w.src, "tank/a", "s1", "s2", "s3", "s4")
}

// TestDriveSeparateStepsMoveCursorEachStep: with one stream per step the
// cursor is moved after each.
func TestDriveSeparateStepsMoveCursorEachStep(t *testing.T) {
	w := newWorld(t)
	w.src.Snapshot("tank", "s1")
	w.drive(t, w.cursorConfig())
	w.src.Snapshot("tank", "s2")
	w.src.Snapshot("tank", "s3")
	cfg := w.cursorConfig()
	cfg.SeparateSteps = true
	if rep := w.drive(t, cfg); rep.Failed() {
		t.Fatalf("%+v", rep)
	}
	var bookmarks []string
	for _, c := range w.src.Calls() {
		if strings.HasPrefix(c, "Bookmark ") {
			bookmarks = append(bookmarks, strings.Fields(c)[1])
		}
	}
	if want := []string{"tank@s1", "tank@s2", "tank@s3"}; !slices.Equal(bookmarks, want) {
		t.Errorf("bookmarked %v, want %v", bookmarks, want)
	}
	if got := cursors(w.src, "tank"); !slices.Equal(got, []string{cursorOf(t, w.src, "tank", "s3")}) {
		t.Errorf("cursors %v", got)
	}
}

// TestDriveFromCursorAfterSnapshotDestroyed: another tool destroys the
// newest common snapshot on the source; the next run sends from the cursor.
func TestDriveFromCursorAfterSnapshotDestroyed(t *testing.T) {
	w := newWorld(t)
	w.src.Snapshot("tank", "s1")
	if rep := w.drive(t, w.cursorConfig()); rep.Failed() {
		t.Fatalf("first run: %+v", rep)
	}
	cursor := cursorOf(t, w.src, "tank", "s1")
	w.src.DestroySnapshot("tank", "s1")
	w.src.Snapshot("tank", "s2")
	before := len(w.src.Calls())

	plan, err := replication.Plan(t.Context(), w.cursorConfig(), w.sender(), w.receiver())
	if err != nil {
		t.Fatal(err)
	}
	if got := plan.Filesystems[0].Steps; len(got) != 1 || got[0].From == nil || *got[0].From != "#"+cursor || got[0].To != "s2" {
		t.Fatalf("planned steps %+v, want one from #%s to s2", got, cursor)
	}
	if calls := w.src.Calls()[before:]; len(calls) != 0 {
		t.Errorf("plan changed the source: %v", calls)
	}

	rep := w.drive(t, w.cursorConfig())
	if f := allFilesystems(rep)["tank"]; stepsText(f) != "#"+cursor+">s2:Completed" {
		t.Fatalf("steps %s", stepsText(f))
	}
	assertSnapshots(t, w.dst, "backup/tank", "s1", "s2")
	if got := cursors(w.src, "tank"); !slices.Equal(got, []string{cursorOf(t, w.src, "tank", "s2")}) {
		t.Errorf("cursors %v, want only the one of s2", got)
	}
}

// TestDriveCursorFailuresDoNotFailReplication: a failing SetCursor is
// logged, and the filesystem completes all the same.
func TestDriveCursorFailuresDoNotFailReplication(t *testing.T) {
	for _, class := range []func(error) error{pdu.PermanentError, pdu.RetryableError} {
		w := newWorld(t)
		w.src.Snapshot("tank", "s1")
		w.src.Snapshot("tank", "s2")
		w.src.FailNext(memzfs.OpSetCursor, 10, class(errors.New("cannot create bookmark: permission denied")))
		rep := w.drive(t, w.cursorConfig())
		if rep.Failed() || rep.Status != replication.Completed.String() {
			t.Fatalf("%+v", rep)
		}
		if f := allFilesystems(rep)["tank"]; f.Status != replication.FilesystemCompleted.String() || f.Problem != "" {
			t.Errorf("tank: %+v", f)
		}
		assertSnapshots(t, w.dst, "backup/tank", "s2")
		if len(w.clock.Waits()) != 0 {
			t.Errorf("a cursor failure caused retry waits %v", w.clock.Waits())
		}
	}
}

// TestDriveCursorNeedsBookmarksAndAnID: without bookmarks (zfs-fuse) or
// without a CursorID nothing is bookmarked.
func TestDriveCursorNeedsBookmarksAndAnID(t *testing.T) {
	w := newWorld(t)
	w.src.NoBookmarks = true
	w.src.Snapshot("tank", "s1")
	if rep := w.drive(t, w.cursorConfig()); rep.Failed() {
		t.Fatalf("%+v", rep)
	}
	w.src.NoBookmarks = false
	w.src.Snapshot("tank", "s2")
	if rep := w.drive(t, w.config()); rep.Failed() {
		t.Fatalf("%+v", rep)
	}
	if calls := w.src.Calls(); slices.ContainsFunc(calls, func(c string) bool { return !strings.HasPrefix(c, "Send ") }) {
		t.Errorf("the source was changed: %v", calls)
	}
}

// TestDriveCarriesSendAndReceiveOptions: the operator's flags reach every
// send, estimate and receive request; raw is planning's (the source is not
// encrypted, so not raw, whatever Config.Send says).
func TestDriveCarriesSendAndReceiveOptions(t *testing.T) {
	w := newWorld(t)
	w.src.Snapshot("tank", "s1")
	cfg := w.config()
	cfg.Send = pdu.SendOptions{Raw: true, LargeBlocks: true}
	cfg.Receive = pdu.ReceiveOptions{Set: []pdu.Property{{Name: "readonly", Value: "on"}}, Exclude: []string{"mountpoint"}}
	rec := &recordingSender{Sender: w.sender()}
	recv := &recordingReceiver{Receiver: w.receiver()}
	r := replication.NewReplication(cfg)
	r.Drive(t.Context(), rec, recv)
	if rep := r.Report(); rep.Failed() {
		t.Fatalf("%+v", rep)
	}
	if len(rec.sends) == 0 || len(rec.estimates) == 0 || len(recv.receives) == 0 {
		t.Fatalf("sends %d, estimates %d, receives %d", len(rec.sends), len(rec.estimates), len(recv.receives))
	}
	want := cfg.Send
	want.Raw = false
	for _, o := range append(rec.sends, rec.estimates...) {
		if o != want {
			t.Errorf("send options %+v, want %+v", o, want)
		}
	}
	for _, o := range recv.receives {
		if !slices.Equal(o.Set, cfg.Receive.Set) || !slices.Equal(o.Exclude, cfg.Receive.Exclude) {
			t.Errorf("receive options %+v, want %+v", o, cfg.Receive)
		}
	}
}

// recordingSender records the options of the requests it passes on.
type recordingSender struct {
	replication.Sender
	mu               sync.Mutex
	sends, estimates []pdu.SendOptions
}

func (s *recordingSender) Send(ctx context.Context, req *pdu.SendReq) (pdu.Stream, error) {
	s.mu.Lock()
	s.sends = append(s.sends, req.Options)
	s.mu.Unlock()
	return s.Sender.Send(ctx, req)
}

func (s *recordingSender) EstimateSize(ctx context.Context, req *pdu.SendReq) (pdu.SizeEstimate, error) {
	s.mu.Lock()
	s.estimates = append(s.estimates, req.Options)
	s.mu.Unlock()
	return s.Sender.EstimateSize(ctx, req)
}

// recordingReceiver records the options of the receives it passes on.
type recordingReceiver struct {
	replication.Receiver
	receives []pdu.ReceiveOptions
}

func (r *recordingReceiver) Receive(ctx context.Context, req *pdu.ReceiveReq, stream io.Reader) error {
	r.receives = append(r.receives, req.Options)
	return r.Receiver.Receive(ctx, req, stream)
}
