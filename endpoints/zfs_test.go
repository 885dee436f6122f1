//go:build lab

package endpoints_test

// Behaviour on real ZFS: the local zfs-fuse (or any zfs) with throw-away
// file-backed pools. Built with the tag lab (`go test -tags lab
// ./endpoints`, as make test does), so that a plain go test needs no zfs.
// Run as root; with CI=true a missing zfs fails the run instead of
// skipping it.

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zrep/zrep/endpoints"
	"github.com/zrep/zrep/pdu"
)

// needZFS skips (or, under CI, fails) when real ZFS tests cannot run here.
func needZFS(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "not root"
	} else if _, err := exec.LookPath("zfs"); err != nil {
		why = "no zfs in PATH"
	} else if out, err := exec.Command("zpool", "list").CombinedOutput(); err != nil {
		why = fmt.Sprintf("zpool list fails (is zfs-fuse running?): %v: %s", err, out)
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("real-ZFS test cannot run: %s", why)
	}
	t.Skipf("real-ZFS test skipped: %s (run as root with zfs-fuse started)", why)
}

// waitUntil waits for cond to hold, polling it; after 10 s it fails t,
// naming what did not happen.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s in vain: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sh runs a shell command for test setup and fails the test if it fails.
func sh(t *testing.T, script string) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return string(out)
}

// q quotes for the setup scripts above.
func q(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// testPool creates a file-backed pool destroyed when the test ends.
func testPool(t *testing.T) string {
	t.Helper()
	needZFS(t)
	name := fmt.Sprintf("zrept%d%d", os.Getpid(), time.Now().UnixNano()%1e6)
	img := filepath.Join(os.TempDir(), name+".img")
	sh(t, fmt.Sprintf("truncate -s 256M %s && zpool create -m /%s %s %s", img, name, name, img))
	t.Cleanup(func() {
		// zfs-fuse sometimes reports busy right after a receive.
		for range 5 {
			if exec.Command("zpool", "destroy", "-f", name).Run() == nil {
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
		os.Remove(img)
	})
	return name
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newEndpoint(t *testing.T, side string, opts endpoints.Options) *endpoints.Endpoint {
	t.Helper()
	s, err := endpoints.ParseSide(side)
	if err != nil {
		t.Fatal(err)
	}
	e := endpoints.New(s, opts)
	t.Cleanup(func() { e.Close() })
	return e
}

func find(fss []*pdu.Filesystem, path string) *pdu.Filesystem {
	for _, fs := range fss {
		if fs.Path == path {
			return fs
		}
	}
	return nil
}

func versionNames(vs []*pdu.FilesystemVersion) string {
	var names []string
	for _, v := range vs {
		names = append(names, v.RelName())
	}
	return strings.Join(names, " ")
}

func snapshotOf(t *testing.T, vs []*pdu.FilesystemVersion, name string) *pdu.FilesystemVersion {
	t.Helper()
	for _, v := range vs {
		if v.Name == name && v.Type == pdu.Snapshot {
			return v
		}
	}
	t.Fatalf("no snapshot %q in %s", name, versionNames(vs))
	return nil
}

// writeData puts n random KiB into a file of a mounted filesystem.
func writeData(t *testing.T, fs, file string, kib int) {
	t.Helper()
	b := make([]byte, kib<<10)
	rand.Read(b)
	if err := os.WriteFile(filepath.Join("/", fs, file), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// transfer sends req from src into dst.
func transfer(t *testing.T, ctx context.Context, src, dst *endpoints.Endpoint, send *pdu.SendReq, recv *pdu.ReceiveReq) error {
	t.Helper()
	stream, err := src.Send(ctx, send)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	rerr := dst.Receive(ctx, recv, stream)
	serr := stream.Close()
	if rerr != nil {
		return rerr
	}
	return serr
}

func TestZFSListsTreeInOneCommand(t *testing.T) {
	pool := testPool(t)
	ctx := ctxT(t)
	root := pool + "/src"
	sh(t, fmt.Sprintf("zfs create %[1]s && zfs create %[2]s && zfs create %[3]s && zfs create %[4]s && zfs snapshot -r %[5]s && zfs snapshot %[6]s",
		q(root), q(root+"/child one"), q(root+"/v1.0:x"), q(root+"/child one/deep"), q(root+"@s1"), q(root+"@s 2")))

	argvLog := filepath.Join(t.TempDir(), "argv.jsonl")
	t.Setenv(endpoints.ArgvLogEnv, argvLog)
	e := newEndpoint(t, root, endpoints.Options{Role: "source", Recursive: true})
	fss, err := e.ListFilesystems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, fs := range fss {
		paths = append(paths, fs.Path)
	}
	want := []string{root, root + "/child one", root + "/child one/deep", root + "/v1.0:x"}
	if strings.Join(paths, "|") != strings.Join(want, "|") {
		t.Fatalf("paths %q, want %q", paths, want)
	}
	if got := versionNames(fss[0].Versions); got != "@s1 @s 2" {
		t.Fatalf("root versions %q", got)
	}
	if fss[0].Versions[0].Guid == 0 || fss[0].Versions[0].CreateTXG >= fss[0].Versions[1].CreateTXG {
		t.Fatalf("guid/createtxg not read: %+v %+v", fss[0].Versions[0], fss[0].Versions[1])
	}

	// A second listing runs no second probe: four zfs commands per
	// listing (native properties; where zrep's own are set; their values,
	// below the root and inherited by it).
	if _, err := e.ListFilesystems(ctx); err != nil {
		t.Fatal(err)
	}
	log, _ := os.ReadFile(argvLog)
	if n := strings.Count(string(log), "\n"); n != 9 {
		t.Fatalf("want probe + 2 listings of 4 commands, argv log has %d lines:\n%s", n, log)
	}

	one := newEndpoint(t, root, endpoints.Options{Role: "source"})
	fss, err = one.ListFilesystems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(fss) != 1 || fss[0].Path != root || len(fss[0].Versions) != 2 {
		t.Fatalf("non-recursive listing: %d filesystems", len(fss))
	}

	vs, err := e.ListFilesystemVersions(ctx, root+"/child one")
	if err != nil || versionNames(vs) != "@s1" {
		t.Fatalf("versions of child: %q, %v", versionNames(vs), err)
	}
	if _, err := one.ListFilesystemVersions(ctx, root+"/child one"); pdu.ClassOf(err) != pdu.Permanent {
		t.Fatalf("non-recursive endpoint gave versions of a child: %v", err)
	}
}

func TestZFSMissingRoots(t *testing.T) {
	pool := testPool(t)
	ctx := ctxT(t)
	dst := newEndpoint(t, pool+"/new", endpoints.Options{Role: "destination", Recursive: true})
	fss, err := dst.ListFilesystems(ctx)
	if err != nil || len(fss) != 0 {
		t.Fatalf("missing destination under an existing parent: %v, %v", fss, err)
	}
	deep := newEndpoint(t, pool+"/nope/new", endpoints.Options{Role: "destination"})
	_, err = deep.ListFilesystems(ctx)
	if pdu.ClassOf(err) != pdu.Permanent || !strings.Contains(err.Error(), "destination parent "+pool+"/nope does not exist") ||
		!strings.Contains(err.Error(), "zfs create") {
		t.Fatalf("missing parent: %v", err)
	}
	src := newEndpoint(t, pool+"/nope", endpoints.Options{Role: "source"})
	_, err = src.ListFilesystems(ctx)
	if pdu.ClassOf(err) != pdu.Permanent || !errors.Is(err, endpoints.ErrDatasetNotExist) {
		t.Fatalf("missing source: %v", err)
	}
}

func TestZFSSendReceiveFullThenIncremental(t *testing.T) {
	pool := testPool(t)
	ctx := ctxT(t)
	fs := pool + "/a b:fs.x"
	sh(t, "zfs create "+q(fs))
	writeData(t, fs, "a", 512)
	sh(t, "zfs snapshot "+q(fs+"@s1"))
	writeData(t, fs, "b", 512)
	sh(t, "zfs snapshot "+q(fs+"@s2")+" && zfs snapshot "+q(fs+"@s 3"))

	src := newEndpoint(t, fs, endpoints.Options{Role: "source"})
	dstFS := pool + "/backup-1.0 copy"
	dst := newEndpoint(t, dstFS, endpoints.Options{Role: "destination"})
	caps, err := src.Capabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("capabilities: %s", caps)

	est, err := src.EstimateSize(ctx, &pdu.SendReq{Filesystem: fs, To: &pdu.FilesystemVersion{Name: "s1"}})
	if err != nil || est.Known != caps.SendEstimate {
		t.Fatalf("estimate: %+v, %v", est, err)
	}

	vs, err := src.ListFilesystemVersions(ctx, fs)
	if err != nil {
		t.Fatal(err)
	}
	s1, s3 := snapshotOf(t, vs, "s1"), snapshotOf(t, vs, "s 3")
	if err := transfer(t, ctx, src, dst, &pdu.SendReq{Filesystem: fs, To: s1}, &pdu.ReceiveReq{Filesystem: dstFS, Resumable: true}); err != nil {
		t.Fatalf("full: %v", err)
	}
	if err := transfer(t, ctx, src, dst, &pdu.SendReq{Filesystem: fs, From: s1, To: s3, Intermediates: true}, &pdu.ReceiveReq{Filesystem: dstFS, Resumable: true}); err != nil {
		t.Fatalf("incremental: %v", err)
	}
	got, err := dst.ListFilesystems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || versionNames(got[0].Versions) != "@s1 @s2 @s 3" {
		t.Fatalf("destination: %v", got)
	}
	for i, v := range got[0].Versions {
		if v.Guid != vs[i].Guid {
			t.Fatalf("%s: guid %d on destination, %d on source", v.Name, v.Guid, vs[i].Guid)
		}
	}
	if mounted := strings.TrimSpace(sh(t, "zfs get -H -o value mounted "+q(dstFS))); mounted != "no" {
		t.Fatalf("received filesystem mounted=%s, want no (receive -u)", mounted)
	}

	// The same incremental again: the destination already has it.
	err = transfer(t, ctx, src, dst, &pdu.SendReq{Filesystem: fs, From: s1, To: s3}, &pdu.ReceiveReq{Filesystem: dstFS})
	if pdu.ClassOf(err) != pdu.Permanent {
		t.Fatalf("repeated incremental: %v (%v)", err, pdu.ClassOf(err))
	}
	t.Logf("repeated incremental: %v", err)
}

func TestZFSModifiedDestinationNeedsRollback(t *testing.T) {
	pool := testPool(t)
	ctx := ctxT(t)
	fs, dstFS := pool+"/src", pool+"/dst"
	sh(t, "zfs create "+fs+" && zfs snapshot "+fs+"@s1")
	writeData(t, fs, "a", 256)
	sh(t, "zfs snapshot "+fs+"@s2")
	sh(t, "zfs send "+fs+"@s1 | zfs receive -u "+dstFS)
	sh(t, "zfs mount "+dstFS+" && echo x > /"+dstFS+"/x")

	src := newEndpoint(t, fs, endpoints.Options{Role: "source"})
	dst := newEndpoint(t, dstFS, endpoints.Options{Role: "destination"})
	vs, _ := src.ListFilesystemVersions(ctx, fs)
	s1, s2 := snapshotOf(t, vs, "s1"), snapshotOf(t, vs, "s2")
	err := transfer(t, ctx, src, dst, &pdu.SendReq{Filesystem: fs, From: s1, To: s2}, &pdu.ReceiveReq{Filesystem: dstFS})
	if pdu.ClassOf(err) != pdu.Permanent || !strings.Contains(err.Error(), "has been modified") || !strings.Contains(err.Error(), "--rollback") {
		t.Fatalf("modified destination: %v (%v)", err, pdu.ClassOf(err))
	}
	t.Logf("modified destination: %v", err)
	sh(t, "zfs umount "+dstFS)
	// zfs-fuse may answer a rollback right after an unmount with a
	// retryable "I/O error"; the engine would wait and retry, so does this.
	err = dst.Rollback(ctx, dstFS, s1)
	for i := 0; err != nil && pdu.IsRetryable(err) && i < 10; i++ {
		t.Logf("rollback: %v; retrying", err)
		time.Sleep(300 * time.Millisecond)
		err = dst.Rollback(ctx, dstFS, s1)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := transfer(t, ctx, src, dst, &pdu.SendReq{Filesystem: fs, From: s1, To: s2}, &pdu.ReceiveReq{Filesystem: dstFS}); err != nil {
		t.Fatalf("after rollback: %v", err)
	}
}

func TestZFSPlaceholder(t *testing.T) {
	pool := testPool(t)
	ctx := ctxT(t)
	fs := pool + "/src"
	sh(t, "zfs create "+fs+" && zfs snapshot "+fs+"@s1")
	dstRoot := pool + "/dst"
	dst := newEndpoint(t, dstRoot, endpoints.Options{Role: "destination", Recursive: true})
	if err := dst.CreatePlaceholder(ctx, dstRoot); err != nil {
		t.Fatal(err)
	}
	sh(t, "zfs create -o canmount=off "+dstRoot+"/kid")
	fss, err := dst.ListFilesystems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !find(fss, dstRoot).Placeholder || find(fss, dstRoot+"/kid").Placeholder {
		t.Fatalf("placeholder flags: root %v, kid (inherits) %v", find(fss, dstRoot).Placeholder, find(fss, dstRoot+"/kid").Placeholder)
	}
	if v := strings.TrimSpace(sh(t, "zfs get -H -o value canmount "+dstRoot)); v != "off" {
		t.Fatalf("placeholder canmount=%s", v)
	}
	sh(t, "zfs destroy "+dstRoot+"/kid")

	// Without -F a full stream cannot replace the placeholder; with it, it can.
	src := newEndpoint(t, fs, endpoints.Options{Role: "source"})
	vs, _ := src.ListFilesystemVersions(ctx, fs)
	s1 := snapshotOf(t, vs, "s1")
	err = transfer(t, ctx, src, dst, &pdu.SendReq{Filesystem: fs, To: s1}, &pdu.ReceiveReq{Filesystem: dstRoot})
	if pdu.ClassOf(err) != pdu.Permanent {
		t.Fatalf("full receive onto placeholder without -F: %v", err)
	}
	if err := transfer(t, ctx, src, dst, &pdu.SendReq{Filesystem: fs, To: s1}, &pdu.ReceiveReq{Filesystem: dstRoot, OverwritePlaceholder: true}); err != nil {
		t.Fatalf("full receive onto placeholder: %v", err)
	}
	if err := dst.ClearPlaceholder(ctx, dstRoot, pdu.ReceiveOptions{}); err != nil {
		t.Fatal(err)
	}
	fss, err = dst.ListFilesystems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if find(fss, dstRoot).Placeholder || versionNames(find(fss, dstRoot).Versions) != "@s1" {
		t.Fatalf("after clear: %+v", find(fss, dstRoot))
	}
	got := sh(t, "zfs get -H -o value canmount,mounted "+dstRoot)
	if got != "on\nno\n" {
		t.Fatalf("canmount, mounted after clear: %q, want on and not mounted", got)
	}
}

func TestZFSStreamClosedEarlyStopsSender(t *testing.T) {
	pool := testPool(t)
	ctx := ctxT(t)
	fs := pool + "/src"
	sh(t, "zfs create "+fs)
	writeData(t, fs, "big", 8<<10)
	sh(t, "zfs snapshot "+fs+"@s1")
	src := newEndpoint(t, fs, endpoints.Options{Role: "source"})
	stream, err := src.Send(ctx, &pdu.SendReq{Filesystem: fs, To: &pdu.FilesystemVersion{Name: "s1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(stream, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	err = stream.Close()
	if pdu.ClassOf(err) != pdu.Retryable {
		t.Fatalf("close before end: %v (%v)", err, pdu.ClassOf(err))
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Fatalf("close took %v", d)
	}

	// A receive of a cut stream fails retryably.
	dst := newEndpoint(t, pool+"/dst", endpoints.Options{Role: "destination"})
	stream, err = src.Send(ctx, &pdu.SendReq{Filesystem: fs, To: &pdu.FilesystemVersion{Name: "s1"}})
	if err != nil {
		t.Fatal(err)
	}
	err = dst.Receive(ctx, &pdu.ReceiveReq{Filesystem: pool + "/dst"}, io.LimitReader(stream, 100000))
	stream.Close()
	if pdu.ClassOf(err) != pdu.Retryable {
		t.Fatalf("cut stream: %v (%v)", err, pdu.ClassOf(err))
	}
	t.Logf("cut stream: %v", err)

	// A missing snapshot: the stream is empty and Close says why.
	stream, err = src.Send(ctx, &pdu.SendReq{Filesystem: fs, To: &pdu.FilesystemVersion{Name: "nope"}})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, stream)
	err = stream.Close()
	if n != 0 || pdu.ClassOf(err) != pdu.Permanent || !errors.Is(err, endpoints.ErrDatasetNotExist) {
		t.Fatalf("missing snapshot: %d bytes, %v", n, err)
	}
}

func TestZFSDestroySnapshotsReportsEach(t *testing.T) {
	pool := testPool(t)
	ctx := ctxT(t)
	fs := pool + "/dst"
	sh(t, "zfs create "+fs+" && zfs snapshot "+fs+"@a && zfs snapshot "+q(fs+"@b c")+" && zfs snapshot "+fs+"@gone && zfs snapshot "+fs+"@new")
	dst := newEndpoint(t, fs, endpoints.Options{Role: "destination"})
	vs, err := dst.ListFilesystemVersions(ctx, fs)
	if err != nil {
		t.Fatal(err)
	}
	// After the listing, one is destroyed (by another run: gone, no
	// failure) and one replaced by another of its name (left and
	// reported); the others are destroyed.
	sh(t, "zfs destroy "+fs+"@gone && zfs destroy "+fs+"@new && zfs snapshot "+fs+"@new")
	res, err := dst.DestroySnapshots(ctx, &pdu.DestroySnapshotsReq{Filesystem: fs, Snapshots: vs})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range res.Results {
		got = append(got, fmt.Sprintf("%s=%s gone=%v", r.Snapshot.Name, r.Error, r.Gone))
	}
	if len(res.Results) != 4 || res.Results[0].Error != "" || res.Results[1].Error != "" ||
		!res.Results[2].Gone || res.Results[2].Error != "" || !strings.Contains(res.Results[3].Error, "replaced") {
		t.Fatalf("results: %q", got)
	}
	if vs, _ := dst.ListFilesystemVersions(ctx, fs); versionNames(vs) != "@new" {
		t.Fatalf("left: %s, want @new", versionNames(vs))
	}
	// A version without a guid is never destroyed.
	res, err = dst.DestroySnapshots(ctx, &pdu.DestroySnapshotsReq{Filesystem: fs, Snapshots: []*pdu.FilesystemVersion{{Name: "new"}}})
	if err != nil || len(res.Results) != 1 || res.Results[0].Error == "" {
		t.Fatalf("destroy without a guid: %+v, %v", res, err)
	}
	if _, err := dst.DestroySnapshots(ctx, &pdu.DestroySnapshotsReq{Filesystem: pool + "/other"}); pdu.ClassOf(err) != pdu.Permanent {
		t.Fatalf("destroy outside the endpoint: %v", err)
	}
}

func TestZFSLegacyPlatformFeatures(t *testing.T) {
	pool := testPool(t)
	ctx := ctxT(t)
	e := newEndpoint(t, pool, endpoints.Options{Role: "destination"})
	caps, err := e.Capabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if caps.ResumeTokens {
		t.Skipf("%s has resumable receive; this test is about platforms without it", caps)
	}
	if err := e.AbortPartialReceive(ctx, pool); pdu.ClassOf(err) != pdu.Permanent || !errors.Is(err, endpoints.ErrUnsupported) {
		t.Fatalf("abort: %v", err)
	}
	if _, _, err := e.ResumeTarget(ctx, pool, "1-abc"); pdu.ClassOf(err) != pdu.Permanent {
		t.Fatalf("resume target: %v", err)
	}
	est, err := e.EstimateSize(ctx, &pdu.SendReq{Filesystem: pool, To: &pdu.FilesystemVersion{Name: "x"}})
	if err != nil || est.Known {
		t.Fatalf("estimate: %+v, %v", est, err)
	}
	if !caps.Bookmarks {
		argvLog := filepath.Join(t.TempDir(), "argv.jsonl")
		t.Setenv(endpoints.ArgvLogEnv, argvLog)
		if err := e.SetCursor(ctx, pool, &pdu.FilesystemVersion{Name: "x", Type: pdu.Snapshot, Guid: 1}, "0123456789abcdef"); err != nil {
			t.Fatalf("set cursor without bookmarks: %v", err)
		}
		if log, _ := os.ReadFile(argvLog); len(log) != 0 {
			t.Fatalf("set cursor without bookmarks ran:\n%s", log)
		}
	}
}

// TestZFSReplicationCursor: SetCursor bookmarks the snapshot, and moving
// it destroys the previous cursor of the same destination only.
func TestZFSReplicationCursor(t *testing.T) {
	pool := testPool(t)
	ctx := ctxT(t)
	fs := pool + "/c"
	e := newEndpoint(t, fs, endpoints.Options{Role: "source"})
	caps, err := e.Capabilities(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !caps.Bookmarks {
		t.Skipf("%s has no bookmarks", caps)
	}
	const id, other = "0123456789abcdef", "fedcba9876543210"
	sh(t, fmt.Sprintf("zfs create %[1]s && zfs snapshot %[1]s@s1 && zfs snapshot %[1]s@s2", q(fs)))
	vs, err := e.ListFilesystemVersions(ctx, fs)
	if err != nil {
		t.Fatal(err)
	}
	s1, s2 := snapshotOf(t, vs, "s1"), snapshotOf(t, vs, "s2")
	for _, c := range []struct {
		snap *pdu.FilesystemVersion
		id   string
	}{{s1, id}, {s1, other}, {s2, id}, {s2, id}} {
		if err := e.SetCursor(ctx, fs, c.snap, c.id); err != nil {
			t.Fatalf("set cursor %s of %s: %v", c.id, c.snap, err)
		}
	}
	vs, err = e.ListFilesystemVersions(ctx, fs)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs {
		got = append(got, v.RelName())
	}
	slices.Sort(got)
	want := []string{"#" + pdu.CursorName(id, s2.Guid), "#" + pdu.CursorName(other, s1.Guid), "@s1", "@s2"}
	if !slices.Equal(got, want) {
		t.Fatalf("versions %q, want %q", got, want)
	}
}

func TestZFSCancelEndsReceive(t *testing.T) {
	pool := testPool(t)
	ctx, cancel := context.WithCancel(ctxT(t))
	dst := newEndpoint(t, pool+"/dst", endpoints.Options{Role: "destination"})
	pr, pw := io.Pipe()
	defer pw.Close()
	done := make(chan error, 1)
	go func() { done <- dst.Receive(ctx, &pdu.ReceiveReq{Filesystem: pool + "/dst"}, pr) }()
	pw.Write(bytes.Repeat([]byte{0}, 10)) // a receive now waiting for more
	waitUntil(t, "zfs receive into "+pool+"/dst runs", func() bool {
		return exec.Command("pgrep", "-f", "zfs receive .*"+pool+"/dst").Run() == nil
	})
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("receive after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("receive did not end after cancel")
	}
}
