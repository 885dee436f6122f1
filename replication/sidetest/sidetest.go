// Package sidetest is the behaviour every side of a replication must show,
// written once and run against each implementation: replication/memzfs in
// plain go test, and the real endpoints (local and over ssh) on real ZFS
// in e2e, on both tiers. A difference between memzfs and zfs shows up
// here first, not as an engine test that trusts the wrong one.
//
// Each case gets fresh pools from the caller and sets them up the way an
// operator would (Pool); everything it checks goes through the engine's
// interfaces. A case that needs what the platform lacks (Capabilities) is
// skipped and says so.
package sidetest

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zrep/zrep/pdu"
	"github.com/zrep/zrep/replication"
)

// Side is everything the engine may ask of one side.
type Side interface {
	replication.Sender
	replication.Receiver
	replication.SnapshotTaker
	replication.Holder
}

// Capabilities are the optional features of the platform under a Pool.
type Capabilities struct {
	// Bookmarks: SetCursor leaves a bookmark, which is an incremental
	// source once its snapshot is gone.
	Bookmarks bool
	// Resumable: a resumable receive whose stream breaks keeps partial
	// state (a resume token) that a resumed send completes.
	Resumable bool
}

// Pool is a throw-away pool for one case, with what an operator does to
// set a case up.
type Pool interface {
	// Root is the pool's top dataset; it exists.
	Root() string
	// Create creates filesystem fs, whose parent exists.
	Create(t *testing.T, fs string)
	// Snapshot writes new data to fs and takes fs@name.
	Snapshot(t *testing.T, fs, name string)
	// Modify writes to fs after its newest snapshot, leaving it as a
	// received filesystem is: not mounted.
	Modify(t *testing.T, fs string)
	// Side opens the side rooted at root: a source (Send works, a missing
	// root is an error) or a destination; recursive covers root's
	// descendants. Its ListFilesystems lists user holds (UserRefs).
	Side(t *testing.T, root string, source, recursive bool) Side
	// Capabilities are the platform's.
	Capabilities(t *testing.T) Capabilities
}

// Run runs every case of the contract, each with pools from newPool.
func Run(t *testing.T, newPool func(t *testing.T) Pool) {
	for _, c := range []struct {
		name string
		run  func(t *testing.T, newPool func(t *testing.T) Pool)
	}{
		{"ListsTreeParentsFirst", testListsTreeParentsFirst},
		{"RefusesWhatIsOutsideItsRoot", testRefusesOutsideRoot},
		{"MissingRoots", testMissingRoots},
		{"FullThenIncremental", testFullThenIncremental},
		{"FullStreamIntoExisting", testFullStreamIntoExisting},
		{"ModifiedDestinationNeedsRollback", testModifiedDestination},
		{"Rollback", testRollback},
		{"BrokenStreamIsRetryable", testBrokenStream},
		{"Placeholders", testPlaceholders},
		{"SnapshotSets", testSnapshotSets},
		{"HoldsKeepSnapshots", testHolds},
		{"DestroyReportsEach", testDestroyReportsEach},
		{"ResumeBrokenReceive", testResume},
		{"AbortPartialReceive", testAbortPartialReceive},
		{"ReplicationCursor", testCursor},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, newPool) })
	}
}

func ctxOf(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// list lists side, failing t on an error.
func list(t *testing.T, side Side) []*pdu.Filesystem {
	t.Helper()
	fss, err := side.ListFilesystems(ctxOf(t))
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	return fss
}

func find(fss []*pdu.Filesystem, path string) *pdu.Filesystem {
	for _, fs := range fss {
		if fs.Path == path {
			return fs
		}
	}
	return nil
}

// versions lists fs's snapshots and bookmarks through side, in creation
// order.
func versions(t *testing.T, side Side, fs string) []*pdu.FilesystemVersion {
	t.Helper()
	vs, err := side.ListFilesystemVersions(ctxOf(t), fs)
	if err != nil {
		t.Fatalf("versions of %s: %v", fs, err)
	}
	return replication.SortVersions(slices.Clone(vs))
}

// snapshots are fs's snapshots in creation order, as "name:guid" so that
// two sides compare by identity, not by name alone.
func snapshots(t *testing.T, side Side, fs string) []string {
	t.Helper()
	var out []string
	for _, v := range versions(t, side, fs) {
		if v.Type == pdu.Snapshot {
			out = append(out, v.Name+":"+guidString(v.Guid))
		}
	}
	return out
}

func guidString(g uint64) string {
	const digits = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = digits[g&15]
		g >>= 4
	}
	return string(b[:])
}

func snapshot(t *testing.T, side Side, fs, name string) *pdu.FilesystemVersion {
	t.Helper()
	for _, v := range versions(t, side, fs) {
		if v.Type == pdu.Snapshot && v.Name == name {
			return v
		}
	}
	t.Fatalf("%s has no snapshot @%s", fs, name)
	return nil
}

// retry calls f again while it fails with a retryable error (zfs-fuse
// answers "I/O error" now and then right after an unmount), as the engine
// does, a few times.
func retry(t *testing.T, what string, f func() error) error {
	t.Helper()
	err := f()
	for i := 0; err != nil && pdu.IsRetryable(err) && i < 10; i++ {
		t.Logf("%s: %v; again", what, err)
		time.Sleep(time.Duration(i+1) * 100 * time.Millisecond)
		err = f()
	}
	return err
}

// transfer sends send from src into dst as recv says, retrying a
// retryable failure as the engine does: unless the target snapshot
// arrived despite it (zfs-fuse's "I/O error" after a receive -F), then
// the transfer is done. The error is the receiver's, else the sender's.
func transfer(t *testing.T, src, dst Side, send *pdu.SendReq, recv *pdu.ReceiveReq) error {
	t.Helper()
	return retry(t, "transfer into "+recv.Filesystem, func() error {
		err := transferOnce(t, src, dst, send, recv)
		if pdu.IsRetryable(err) && arrived(dst, recv.Filesystem, send.To.Guid) {
			t.Logf("transfer into %s: %v, but its snapshot arrived", recv.Filesystem, err)
			return nil
		}
		return err
	})
}

// arrived reports whether fs on dst has the snapshot with guid.
func arrived(dst Side, fs string, guid uint64) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	vs, err := dst.ListFilesystemVersions(ctx, fs)
	return err == nil && slices.ContainsFunc(vs, func(v *pdu.FilesystemVersion) bool { return v.Type == pdu.Snapshot && v.Guid == guid })
}

func transferOnce(t *testing.T, src, dst Side, send *pdu.SendReq, recv *pdu.ReceiveReq) error {
	t.Helper()
	ctx := ctxOf(t)
	stream, err := src.Send(ctx, send)
	if err != nil {
		return err
	}
	rerr := dst.Receive(ctx, recv, stream)
	serr := stream.Close() // ends a sender whose receiver gave up
	if rerr != nil {
		return rerr
	}
	return serr
}

func mustTransfer(t *testing.T, src, dst Side, send *pdu.SendReq, recv *pdu.ReceiveReq) {
	t.Helper()
	if err := transfer(t, src, dst, send, recv); err != nil {
		t.Fatalf("send %s into %s: %v", describe(send), recv.Filesystem, err)
	}
}

func describe(req *pdu.SendReq) string {
	s := req.Filesystem + "@" + req.To.Name
	if req.From != nil {
		s = req.From.RelName() + " → " + s
	}
	return s
}

func mustPermanent(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	if c := pdu.ClassOf(err); c != pdu.Permanent {
		t.Fatalf("%s: %v is %v, want permanent", what, err, c)
	}
	t.Logf("%s: %v", what, err)
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: %q, want %q", what, got, want)
	}
}

// source makes root/src with snapshots names and returns it and its side.
func source(t *testing.T, p Pool, names ...string) (string, Side) {
	t.Helper()
	fs := p.Root() + "/src"
	p.Create(t, fs)
	for _, n := range names {
		p.Snapshot(t, fs, n)
	}
	return fs, p.Side(t, fs, true, false)
}

// testListsTreeParentsFirst: a recursive side lists its root and every
// descendant, parents before children, each with its snapshots in
// creation order under distinct guids; a side that is not recursive lists
// its root alone.
func testListsTreeParentsFirst(t *testing.T, newPool func(t *testing.T) Pool) {
	p := newPool(t)
	root := p.Root() + "/src"
	tree := []string{root, root + "/a", root + "/a/b", root + "/c"}
	for _, fs := range tree {
		p.Create(t, fs)
	}
	p.Snapshot(t, root, "s1")
	p.Snapshot(t, root+"/a", "s1")
	p.Snapshot(t, root+"/a", "s2")
	side := p.Side(t, root, true, true)
	fss := list(t, side)
	var paths []string
	for i, fs := range fss {
		paths = append(paths, fs.Path)
		if j := slices.IndexFunc(fss, func(f *pdu.Filesystem) bool { return f.Path == pdu.Parent(fs.Path) }); j > i {
			t.Errorf("%s is listed before its parent", fs.Path)
		}
	}
	equal(t, "listed", slices.Sorted(slices.Values(paths)), tree)
	a := find(fss, root+"/a")
	vs := replication.SortVersions(slices.Clone(a.Versions))
	if len(vs) != 2 || vs[0].Name != "s1" || vs[1].Name != "s2" || vs[0].Guid == 0 || vs[0].Guid == vs[1].Guid || vs[0].CreateTXG >= vs[1].CreateTXG {
		t.Fatalf("versions of %s: %+v %+v", a.Path, vs[0], vs[len(vs)-1])
	}
	if s1 := snapshot(t, side, root, "s1"); s1.Guid == vs[0].Guid {
		t.Errorf("%s@s1 and %s@s1 share guid %x", root, a.Path, s1.Guid)
	}
	equal(t, "versions of "+a.Path, snapshots(t, side, a.Path), []string{"s1:" + guidString(vs[0].Guid), "s2:" + guidString(vs[1].Guid)})
	if len(find(fss, root+"/c").Versions) != 0 {
		t.Errorf("%s has versions it never got: %v", root+"/c", find(fss, root+"/c").Versions)
	}

	flat := list(t, p.Side(t, root, true, false))
	if len(flat) != 1 || flat[0].Path != root || len(flat[0].Versions) != 1 {
		t.Fatalf("a side that is not recursive lists %v", flat)
	}
}

// testRefusesOutsideRoot: a side refuses, with a permanent error and
// without acting, every request about a filesystem outside its root.
func testRefusesOutsideRoot(t *testing.T, newPool func(t *testing.T) Pool) {
	p := newPool(t)
	root := p.Root() + "/src"
	p.Create(t, root)
	p.Create(t, root+"/a")
	p.Create(t, p.Root()+"/other")
	p.Snapshot(t, root+"/a", "s1")
	p.Snapshot(t, p.Root()+"/other", "s1")
	all := p.Side(t, p.Root(), true, true)
	s1 := snapshot(t, all, p.Root()+"/other", "s1")

	ctx := ctxOf(t)
	side := p.Side(t, root, true, false) // root alone: root/a is outside too
	for _, fs := range []string{p.Root() + "/other", root + "/a"} {
		_, err := side.ListFilesystemVersions(ctx, fs)
		mustPermanent(t, "versions of "+fs, err)
		_, err = side.DestroySnapshots(ctx, &pdu.DestroySnapshotsReq{Filesystem: fs, Snapshots: []*pdu.FilesystemVersion{s1}})
		mustPermanent(t, "destroy on "+fs, err)
		mustPermanent(t, "hold on "+fs, side.Hold(ctx, fs, s1, "zrep_sidetest"))
		_, err = side.Release(ctx, fs, []*pdu.FilesystemVersion{s1}, "zrep_sidetest")
		mustPermanent(t, "release on "+fs, err)
		_, err = side.Send(ctx, &pdu.SendReq{Filesystem: fs, To: s1})
		mustPermanent(t, "send of "+fs, err)
	}
	dst := p.Side(t, root, false, false)
	mustPermanent(t, "receive outside", dst.Receive(ctx, &pdu.ReceiveReq{Filesystem: p.Root() + "/elsewhere"}, strings.NewReader("")))
	mustPermanent(t, "placeholder outside", dst.CreatePlaceholder(ctx, p.Root()+"/elsewhere"))
	mustPermanent(t, "clear placeholder outside", dst.ClearPlaceholder(ctx, p.Root()+"/other", pdu.ReceiveOptions{}))
	mustPermanent(t, "rollback outside", dst.Rollback(ctx, p.Root()+"/other", s1))
	mustPermanent(t, "abort partial receive outside", dst.AbortPartialReceive(ctx, p.Root()+"/other"))
	equal(t, "other after refusals", snapshots(t, all, p.Root()+"/other"), []string{"s1:" + guidString(s1.Guid)})
	if find(list(t, all), p.Root()+"/elsewhere") != nil {
		t.Fatal("a refused request created a filesystem")
	}
}

// testMissingRoots: a source whose root does not exist is a permanent
// error; a destination whose root does not exist lists empty when its
// parent exists, and is a permanent error when not.
func testMissingRoots(t *testing.T, newPool func(t *testing.T) Pool) {
	p := newPool(t)
	ctx := ctxOf(t)
	_, err := p.Side(t, p.Root()+"/nope", true, true).ListFilesystems(ctx)
	mustPermanent(t, "source without its root", err)
	fss, err := p.Side(t, p.Root()+"/new", false, true).ListFilesystems(ctx)
	if err != nil || len(fss) != 0 {
		t.Fatalf("destination not created yet: %v, %v; want an empty list", fss, err)
	}
	_, err = p.Side(t, p.Root()+"/nope/new", false, true).ListFilesystems(ctx)
	mustPermanent(t, "destination without its parent", err)
}

// testFullThenIncremental: a full stream creates the destination, an
// incremental one (-i) adds its target, one with intermediates (-I) adds
// every snapshot between; the destination's snapshots keep the source's
// guids, in the same order. An incremental stream whose base is not the
// destination's newest snapshot changes nothing: zfs-fuse refuses it,
// OpenZFS 2.3 accepts a stream whose snapshot is there already as done.
func testFullThenIncremental(t *testing.T, newPool func(t *testing.T) Pool) {
	sp, dp := newPool(t), newPool(t)
	fs, src := source(t, sp, "s1", "s2", "s3", "s4")
	dstFS := dp.Root() + "/dst"
	dst := dp.Side(t, dstFS, false, false)
	s := func(name string) *pdu.FilesystemVersion { return snapshot(t, src, fs, name) }

	mustTransfer(t, src, dst, &pdu.SendReq{Filesystem: fs, To: s("s1")}, &pdu.ReceiveReq{Filesystem: dstFS})
	equal(t, "after the full send", snapshots(t, dst, dstFS), snapshots(t, src, fs)[:1])
	mustTransfer(t, src, dst, &pdu.SendReq{Filesystem: fs, From: s("s1"), To: s("s2")}, &pdu.ReceiveReq{Filesystem: dstFS})
	equal(t, "after -i", snapshots(t, dst, dstFS), snapshots(t, src, fs)[:2])
	mustTransfer(t, src, dst, &pdu.SendReq{Filesystem: fs, From: s("s2"), To: s("s4"), Intermediates: true}, &pdu.ReceiveReq{Filesystem: dstFS})
	equal(t, "after -I", snapshots(t, dst, dstFS), snapshots(t, src, fs))
	if fss := list(t, dst); len(fss) != 1 || fss[0].Placeholder || fss[0].ResumeToken != "" {
		t.Fatalf("destination listed as %+v", fss[0])
	}

	if err := transfer(t, src, dst, &pdu.SendReq{Filesystem: fs, From: s("s1"), To: s("s2")}, &pdu.ReceiveReq{Filesystem: dstFS}); err != nil {
		mustPermanent(t, "an incremental from an older base", err)
	}
	equal(t, "after an incremental from an older base", snapshots(t, dst, dstFS), snapshots(t, src, fs))
}

// testFullStreamIntoExisting: a full stream does not replace an existing
// filesystem without Rollback; with it, one without snapshots is
// overwritten, and one with snapshots still is not.
func testFullStreamIntoExisting(t *testing.T, newPool func(t *testing.T) Pool) {
	sp, dp := newPool(t), newPool(t)
	fs, src := source(t, sp, "s1")
	dstFS := dp.Root() + "/dst"
	dp.Create(t, dstFS)
	dst := dp.Side(t, dstFS, false, false)
	send := &pdu.SendReq{Filesystem: fs, To: snapshot(t, src, fs, "s1")}
	mustPermanent(t, "full stream into an existing filesystem", transfer(t, src, dst, send, &pdu.ReceiveReq{Filesystem: dstFS}))
	equal(t, "after the refusal", snapshots(t, dst, dstFS), nil)
	mustTransfer(t, src, dst, send, &pdu.ReceiveReq{Filesystem: dstFS, Rollback: true})
	equal(t, "overwritten", snapshots(t, dst, dstFS), snapshots(t, src, fs))
	err := transfer(t, src, dst, send, &pdu.ReceiveReq{Filesystem: dstFS, Rollback: true})
	mustPermanent(t, "full stream into a filesystem with snapshots, even with rollback", err)
	equal(t, "after the refusal", snapshots(t, dst, dstFS), snapshots(t, src, fs))
}

// testModifiedDestination: a destination written to after its newest
// snapshot refuses an incremental stream, unless Rollback allows the
// receive to discard the change.
func testModifiedDestination(t *testing.T, newPool func(t *testing.T) Pool) {
	sp, dp := newPool(t), newPool(t)
	fs, src := source(t, sp, "s1", "s2")
	dstFS := dp.Root() + "/dst"
	dst := dp.Side(t, dstFS, false, false)
	s1, s2 := snapshot(t, src, fs, "s1"), snapshot(t, src, fs, "s2")
	mustTransfer(t, src, dst, &pdu.SendReq{Filesystem: fs, To: s1}, &pdu.ReceiveReq{Filesystem: dstFS})
	dp.Modify(t, dstFS)
	incr := &pdu.SendReq{Filesystem: fs, From: s1, To: s2}
	mustPermanent(t, "incremental into a modified destination", transfer(t, src, dst, incr, &pdu.ReceiveReq{Filesystem: dstFS}))
	mustTransfer(t, src, dst, incr, &pdu.ReceiveReq{Filesystem: dstFS, Rollback: true})
	equal(t, "with rollback", snapshots(t, dst, dstFS), snapshots(t, src, fs))
}

// testRollback: Rollback destroys the snapshots after its target, and the
// destination takes the incremental from there again; a target the
// destination lacks is refused.
func testRollback(t *testing.T, newPool func(t *testing.T) Pool) {
	sp, dp := newPool(t), newPool(t)
	fs, src := source(t, sp, "s1", "s2", "s3")
	dstFS := dp.Root() + "/dst"
	dst := dp.Side(t, dstFS, false, false)
	s1, s3 := snapshot(t, src, fs, "s1"), snapshot(t, src, fs, "s3")
	mustTransfer(t, src, dst, &pdu.SendReq{Filesystem: fs, To: s1}, &pdu.ReceiveReq{Filesystem: dstFS})
	all := &pdu.SendReq{Filesystem: fs, From: s1, To: s3, Intermediates: true}
	mustTransfer(t, src, dst, all, &pdu.ReceiveReq{Filesystem: dstFS})
	if err := retry(t, "rollback", func() error { return dst.Rollback(ctxOf(t), dstFS, snapshot(t, dst, dstFS, "s1")) }); err != nil {
		t.Fatalf("rollback to @s1: %v", err)
	}
	equal(t, "after the rollback", snapshots(t, dst, dstFS), snapshots(t, src, fs)[:1])
	mustTransfer(t, src, dst, all, &pdu.ReceiveReq{Filesystem: dstFS})
	equal(t, "sent again", snapshots(t, dst, dstFS), snapshots(t, src, fs))
	missing := &pdu.FilesystemVersion{Name: "missing", Type: pdu.Snapshot, Guid: 1}
	mustPermanent(t, "rollback to a snapshot the destination lacks", dst.Rollback(ctxOf(t), dstFS, missing))
	equal(t, "after the refused rollback", snapshots(t, dst, dstFS), snapshots(t, src, fs))
}

// testBrokenStream: a stream that ends early is a retryable failure and
// leaves no snapshot of it on the destination.
func testBrokenStream(t *testing.T, newPool func(t *testing.T) Pool) {
	sp, dp := newPool(t), newPool(t)
	fs, src := source(t, sp, "s1")
	dstFS := dp.Root() + "/dst"
	dst := dp.Side(t, dstFS, false, false)
	whole := sendAll(t, src, &pdu.SendReq{Filesystem: fs, To: snapshot(t, src, fs, "s1")})
	err := dst.Receive(ctxOf(t), &pdu.ReceiveReq{Filesystem: dstFS}, bytes.NewReader(whole[:len(whole)/2]))
	if err == nil || !pdu.IsRetryable(err) {
		t.Fatalf("receive of half a stream: %v (%v), want a retryable error", err, pdu.ClassOf(err))
	}
	if d := find(list(t, dst), dstFS); d != nil && len(d.Versions) > 0 {
		t.Fatalf("half a stream left %v", d.Versions)
	}
}

// sendAll is the whole stream of req.
func sendAll(t *testing.T, src Side, req *pdu.SendReq) []byte {
	t.Helper()
	stream, err := src.Send(ctxOf(t), req)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	b, err := io.ReadAll(stream)
	if cerr := stream.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	return b
}

// testPlaceholders: a placeholder is created under an existing parent and
// listed as one; a full stream replaces it only when the request allows
// it, and cleared it is a normal filesystem holding what it received.
func testPlaceholders(t *testing.T, newPool func(t *testing.T) Pool) {
	sp, dp := newPool(t), newPool(t)
	fs, src := source(t, sp, "s1")
	root := dp.Root() + "/dst"
	dst := dp.Side(t, root, false, true)
	ctx := ctxOf(t)
	if err := dst.CreatePlaceholder(ctx, root); err != nil {
		t.Fatalf("placeholder %s: %v", root, err)
	}
	if err := dst.CreatePlaceholder(ctx, root+"/kid"); err != nil {
		t.Fatalf("placeholder %s: %v", root+"/kid", err)
	}
	mustPermanent(t, "placeholder without its parent", dst.CreatePlaceholder(ctx, root+"/none/kid"))
	mustPermanent(t, "placeholder over a filesystem", dst.CreatePlaceholder(ctx, root+"/kid"))
	fss := list(t, dst)
	for _, path := range []string{root, root + "/kid"} {
		if f := find(fss, path); f == nil || !f.Placeholder || len(f.Versions) != 0 {
			t.Fatalf("%s listed as %+v, want an empty placeholder", path, f)
		}
	}

	send := &pdu.SendReq{Filesystem: fs, To: snapshot(t, src, fs, "s1")}
	mustPermanent(t, "full stream into a placeholder without overwrite", transfer(t, src, dst, send, &pdu.ReceiveReq{Filesystem: root + "/kid"}))
	mustTransfer(t, src, dst, send, &pdu.ReceiveReq{Filesystem: root + "/kid", OverwritePlaceholder: true})
	mustTransfer(t, src, dst, send, &pdu.ReceiveReq{Filesystem: root + "/new"})
	if err := dst.ClearPlaceholder(ctx, root+"/kid", pdu.ReceiveOptions{}); err != nil {
		t.Fatalf("clear placeholder: %v", err)
	}
	fss = list(t, dst)
	if f := find(fss, root+"/kid"); f == nil || f.Placeholder {
		t.Fatalf("%s after clear: %+v", root+"/kid", f)
	}
	if f := find(fss, root+"/new"); f == nil || f.Placeholder {
		t.Fatalf("%s, received under a placeholder: %+v", root+"/new", f)
	}
	if !find(fss, root).Placeholder {
		t.Fatal("the parent placeholder lost its mark")
	}
	for _, path := range []string{root + "/kid", root + "/new"} {
		equal(t, path, snapshots(t, dst, path), snapshots(t, src, fs))
	}
}

// testSnapshotSets: a snapshot set puts one name on each of its
// filesystems, all of a tree with Recursive; an atomic set shares one
// createtxg. A name already taken on one of them is an error.
func testSnapshotSets(t *testing.T, newPool func(t *testing.T) Pool) {
	p := newPool(t)
	root := p.Root() + "/src"
	tree := []string{root, root + "/a", root + "/a/b"}
	for _, fs := range tree {
		p.Create(t, fs)
	}
	side := p.Side(t, root, true, true)
	ctx := ctxOf(t)
	for _, req := range []*pdu.SnapshotReq{
		{Filesystems: tree[:2], Name: "set1"},
		{Filesystems: tree, Recursive: true, Name: "set2"},
	} {
		res, err := side.TakeSnapshots(ctx, req)
		if err != nil {
			t.Fatalf("snapshot set %s: %v", req.Name, err)
		}
		var txgs []uint64
		for _, fs := range req.Filesystems {
			txgs = append(txgs, snapshot(t, side, fs, req.Name).CreateTXG)
		}
		if res.Atomic && slices.ContainsFunc(txgs, func(x uint64) bool { return x != txgs[0] }) {
			t.Errorf("atomic set %s has createtxgs %v", req.Name, txgs)
		}
	}
	equal(t, "set1 left out", names(versions(t, side, root+"/a/b")), []string{"set2"})
	_, err := side.TakeSnapshots(ctx, &pdu.SnapshotReq{Filesystems: tree, Recursive: true, Name: "set1"})
	if err == nil {
		t.Fatal("a set whose name is taken on some of its filesystems was taken")
	}
	t.Logf("taken name: %v", err)
}

func names(vs []*pdu.FilesystemVersion) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.RelName()[1:])
	}
	return out
}

// testHolds: a held snapshot is listed with its holds and survives a
// destroy, which reports it; Release returns exactly the snapshots that
// had the tag; holding twice is no error.
func testHolds(t *testing.T, newPool func(t *testing.T) Pool) {
	p := newPool(t)
	fs, side := source(t, p, "s1", "s2", "s3")
	ctx := ctxOf(t)
	s1, s2, s3 := snapshot(t, side, fs, "s1"), snapshot(t, side, fs, "s2"), snapshot(t, side, fs, "s3")
	const tag = "zrep_sidetest"
	for range 2 {
		if err := side.Hold(ctx, fs, s1, tag); err != nil {
			t.Fatalf("hold @s1: %v", err)
		}
	}
	if err := side.Hold(ctx, fs, s2, "another"); err != nil {
		t.Fatalf("hold @s2: %v", err)
	}
	if got := userRefs(t, side, fs); !slices.Equal(got, []uint32{1, 1, 0}) {
		t.Errorf("holds of @s1 @s2 @s3 listed as %v, want 1 1 0", got)
	}
	res, err := side.DestroySnapshots(ctx, &pdu.DestroySnapshotsReq{Filesystem: fs, Snapshots: []*pdu.FilesystemVersion{s1}})
	if err != nil || len(res.Results) != 1 || res.Results[0].Error == "" {
		t.Fatalf("destroy of a held snapshot: %+v, %v; want its result to fail", res, err)
	}
	equal(t, "after destroying held @s1", names(versions(t, side, fs)), []string{"s1", "s2", "s3"})

	released, err := side.Release(ctx, fs, []*pdu.FilesystemVersion{s1, s2, s3}, tag)
	if err != nil {
		t.Fatalf("release: %v", err)
	}
	equal(t, "released", names(released), []string{"s1"})
	if released, err := side.Release(ctx, fs, []*pdu.FilesystemVersion{s1}, tag); err != nil || len(released) != 0 {
		t.Fatalf("releasing again: %v, %v; want nothing released and no error", released, err)
	}
	if got := userRefs(t, side, fs); !slices.Equal(got, []uint32{0, 1, 0}) {
		t.Errorf("after the release, holds of @s1 @s2 @s3 listed as %v, want 0 1 0 (another tool's on @s2)", got)
	}
	res, err = side.DestroySnapshots(ctx, &pdu.DestroySnapshotsReq{Filesystem: fs, Snapshots: []*pdu.FilesystemVersion{s1}})
	if err != nil || res.Results[0].Error != "" {
		t.Fatalf("destroy after release: %+v, %v", res, err)
	}
	equal(t, "after release and destroy", names(versions(t, side, fs)), []string{"s2", "s3"})
}

// userRefs are the holds ListFilesystems lists on fs's snapshots, in
// creation order.
func userRefs(t *testing.T, side Side, fs string) []uint32 {
	t.Helper()
	f := find(list(t, side), fs)
	if f == nil {
		t.Fatalf("%s is not listed", fs)
	}
	var out []uint32
	for _, v := range replication.SortVersions(slices.Clone(f.Versions)) {
		if v.Type == pdu.Snapshot {
			out = append(out, v.UserRefs)
		}
	}
	return out
}

// testDestroyReportsEach: DestroySnapshots destroys the snapshots asked
// for and nothing else, with one result each; one that is gone is a failed
// result, not an error of the request.
func testDestroyReportsEach(t *testing.T, newPool func(t *testing.T) Pool) {
	p := newPool(t)
	fs, side := source(t, p, "s1", "s2", "s3", "s4")
	ctx := ctxOf(t)
	s1, s3 := snapshot(t, side, fs, "s1"), snapshot(t, side, fs, "s3")
	res, err := side.DestroySnapshots(ctx, &pdu.DestroySnapshotsReq{Filesystem: fs, Snapshots: []*pdu.FilesystemVersion{s1, s3}})
	if err != nil || len(res.Results) != 2 {
		t.Fatalf("destroy: %+v, %v", res, err)
	}
	for _, r := range res.Results {
		if r.Error != "" {
			t.Errorf("destroy %s: %s", r.Snapshot.RelName(), r.Error)
		}
	}
	equal(t, "left", names(versions(t, side, fs)), []string{"s2", "s4"})
	res, err = side.DestroySnapshots(ctx, &pdu.DestroySnapshotsReq{Filesystem: fs, Snapshots: []*pdu.FilesystemVersion{s1}})
	if err != nil || len(res.Results) != 1 || !res.Results[0].Gone || res.Results[0].Error != "" {
		t.Fatalf("destroy of a snapshot that is gone: %+v, %v; want it reported gone, not failed", res, err)
	}
}

// breakReceive receives half of req's stream into dstFS, resumable, and
// returns the resume token the destination then lists.
func breakReceive(t *testing.T, src, dst Side, req *pdu.SendReq, dstFS string) string {
	t.Helper()
	whole := sendAll(t, src, req)
	err := dst.Receive(ctxOf(t), &pdu.ReceiveReq{Filesystem: dstFS, Resumable: true}, bytes.NewReader(whole[:len(whole)/2]))
	if !pdu.IsRetryable(err) {
		t.Fatalf("receive of half a stream: %v, want a retryable error", err)
	}
	d := find(list(t, dst), dstFS)
	if d == nil || d.ResumeToken == "" {
		t.Fatalf("a broken resumable receive left no resume token: %+v", d)
	}
	return d.ResumeToken
}

func needResumable(t *testing.T, p Pool) {
	t.Helper()
	if !p.Capabilities(t).Resumable {
		t.Skip("the platform has no resumable receive")
	}
}

// testResume: a resumable receive that broke keeps partial state; the
// sender tells which snapshots its token continues, and the resumed
// stream completes the snapshot with its guid.
func testResume(t *testing.T, newPool func(t *testing.T) Pool) {
	sp, dp := newPool(t), newPool(t)
	needResumable(t, sp)
	fs, src := source(t, sp, "s1", "s2")
	dstFS := dp.Root() + "/dst"
	dst := dp.Side(t, dstFS, false, false)
	s1, s2 := snapshot(t, src, fs, "s1"), snapshot(t, src, fs, "s2")
	mustTransfer(t, src, dst, &pdu.SendReq{Filesystem: fs, To: s1}, &pdu.ReceiveReq{Filesystem: dstFS, Resumable: true})
	tok := breakReceive(t, src, dst, &pdu.SendReq{Filesystem: fs, From: s1, To: s2}, dstFS)

	from, to, err := src.ResumeTarget(ctxOf(t), fs, tok)
	if err != nil {
		t.Fatalf("resume target: %v", err)
	}
	if from == nil || from.Guid != s1.Guid || to == nil || to.Guid != s2.Guid {
		t.Fatalf("the token continues %v → %v, want @s1 → @s2", from, to)
	}
	mustTransfer(t, src, dst, &pdu.SendReq{Filesystem: fs, From: from, To: to, ResumeToken: tok}, &pdu.ReceiveReq{Filesystem: dstFS, Resumable: true})
	equal(t, "resumed", snapshots(t, dst, dstFS), snapshots(t, src, fs))
	if d := find(list(t, dst), dstFS); d.ResumeToken != "" {
		t.Fatalf("a resume token is left after the resumed receive")
	}
	_, _, err = src.ResumeTarget(ctxOf(t), fs, "garbage")
	mustPermanent(t, "a token that is not one", err)
}

// testAbortPartialReceive: discarding partial state leaves the
// destination as it was before the broken receive: without the
// filesystem the receive had begun, and with the snapshots of one that
// existed.
func testAbortPartialReceive(t *testing.T, newPool func(t *testing.T) Pool) {
	sp, dp := newPool(t), newPool(t)
	needResumable(t, sp)
	fs, src := source(t, sp, "s1", "s2")
	root := dp.Root()
	dst := dp.Side(t, root, false, true)
	s1, s2 := snapshot(t, src, fs, "s1"), snapshot(t, src, fs, "s2")

	breakReceive(t, src, dst, &pdu.SendReq{Filesystem: fs, To: s1}, root+"/new")
	if err := dst.AbortPartialReceive(ctxOf(t), root+"/new"); err != nil {
		t.Fatalf("abort: %v", err)
	}
	if d := find(list(t, dst), root+"/new"); d != nil {
		t.Fatalf("a filesystem the aborted receive had begun is left: %+v", d)
	}

	mustTransfer(t, src, dst, &pdu.SendReq{Filesystem: fs, To: s1}, &pdu.ReceiveReq{Filesystem: root + "/old"})
	breakReceive(t, src, dst, &pdu.SendReq{Filesystem: fs, From: s1, To: s2}, root+"/old")
	if err := dst.AbortPartialReceive(ctxOf(t), root+"/old"); err != nil {
		t.Fatalf("abort: %v", err)
	}
	d := find(list(t, dst), root+"/old")
	if d == nil || d.ResumeToken != "" {
		t.Fatalf("after abort: %+v", d)
	}
	equal(t, "after abort", snapshots(t, dst, root+"/old"), snapshots(t, src, fs)[:1])
	mustTransfer(t, src, dst, &pdu.SendReq{Filesystem: fs, From: s1, To: s2}, &pdu.ReceiveReq{Filesystem: root + "/old"})
	equal(t, "sent again", snapshots(t, dst, root+"/old"), snapshots(t, src, fs))
}

// testCursor: SetCursor leaves one bookmark per destination id, of the
// snapshot's guid, and removes that id's older one but no other id's; the
// bookmark is an incremental base once its snapshot is gone. Without
// bookmarks SetCursor does nothing and is no error.
func testCursor(t *testing.T, newPool func(t *testing.T) Pool) {
	sp, dp := newPool(t), newPool(t)
	fs, src := source(t, sp, "s1", "s2", "s3")
	ctx := ctxOf(t)
	s1, s2, s3 := snapshot(t, src, fs, "s1"), snapshot(t, src, fs, "s2"), snapshot(t, src, fs, "s3")
	const id, other = "00000000000000aa", "00000000000000bb"
	for _, c := range []struct {
		snap *pdu.FilesystemVersion
		id   string
	}{{s1, other}, {s1, id}, {s2, id}} {
		if err := src.SetCursor(ctx, fs, c.snap, c.id); err != nil {
			t.Fatalf("cursor %s at %s: %v", c.id, c.snap.RelName(), err)
		}
	}
	var bookmarks []*pdu.FilesystemVersion
	for _, v := range versions(t, src, fs) {
		if v.Type == pdu.Bookmark {
			bookmarks = append(bookmarks, v)
		}
	}
	if !sp.Capabilities(t).Bookmarks {
		if len(bookmarks) != 0 {
			t.Fatalf("a platform without bookmarks lists %v", bookmarks)
		}
		t.Skip("the platform has no bookmarks")
	}
	slices.SortFunc(bookmarks, func(a, b *pdu.FilesystemVersion) int { return strings.Compare(a.Name, b.Name) })
	want := []string{pdu.CursorName(id, s2.Guid), pdu.CursorName(other, s1.Guid)}
	slices.Sort(want)
	equal(t, "cursors", names(bookmarks), want)
	cursor := bookmarks[slices.IndexFunc(bookmarks, func(v *pdu.FilesystemVersion) bool { return v.Name == pdu.CursorName(id, s2.Guid) })]
	if cursor.Guid != s2.Guid {
		t.Fatalf("cursor %s has guid %x, want @s2's %x", cursor.Name, cursor.Guid, s2.Guid)
	}

	dstFS := dp.Root() + "/dst"
	dst := dp.Side(t, dstFS, false, false)
	mustTransfer(t, src, dst, &pdu.SendReq{Filesystem: fs, To: s2}, &pdu.ReceiveReq{Filesystem: dstFS})
	res, err := src.DestroySnapshots(ctx, &pdu.DestroySnapshotsReq{Filesystem: fs, Snapshots: []*pdu.FilesystemVersion{s1, s2}})
	if err != nil || slices.ContainsFunc(res.Results, func(r *pdu.DestroySnapshotRes) bool { return r.Error != "" }) {
		t.Fatalf("destroy @s1 @s2: %+v, %v", res, err)
	}
	mustTransfer(t, src, dst, &pdu.SendReq{Filesystem: fs, From: cursor, To: s3}, &pdu.ReceiveReq{Filesystem: dstFS})
	equal(t, "sent from the cursor", snapshots(t, dst, dstFS), []string{"s2:" + guidString(s2.Guid), "s3:" + guidString(s3.Guid)})
}
