//go:build lab

package endpoints_test

import (
	"errors"
	osexec "os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/zrep/zrep/endpoints"
	"github.com/zrep/zrep/pdu"
)

// TestZFSSnapshotSetHoldsAndBatchDestroy: a snapshot set over a tree and
// over a list, a hold that stops a destroy and is listed in userrefs, a
// release of a tag that only some snapshots have, and a destroy of
// several snapshots at once.
func TestZFSSnapshotSetHoldsAndBatchDestroy(t *testing.T) {
	pool := testPool(t)
	ctx := ctxT(t)
	root := pool + "/src"
	sh(t, "zfs create "+root+" && zfs create "+q(root+"/a b")+" && zfs create "+root+"/c")
	e := newEndpoint(t, root, endpoints.Options{Role: "source", Recursive: true, Holds: true})

	all := []string{root, root + "/a b", root + "/c"}
	res, err := e.TakeSnapshots(ctx, &pdu.SnapshotReq{Filesystems: all, Recursive: true, Name: "s1"})
	if err != nil || !res.Atomic {
		t.Fatalf("snapshot -r: %+v %v", res, err)
	}
	caps, _ := e.Capabilities(ctx)
	res, err = e.TakeSnapshots(ctx, &pdu.SnapshotReq{Filesystems: all[:2], Name: "s2"})
	if err != nil || res.Atomic != caps.NameLists {
		t.Fatalf("snapshot list: %+v %v (caps %s)", res, err, caps)
	}
	// A taken name is refused, naming it; on -r nothing is taken.
	_, err = e.TakeSnapshots(ctx, &pdu.SnapshotReq{Filesystems: all, Recursive: true, Name: "s2"})
	if err == nil || !strings.Contains(err.Error(), "already exists") || !errors.Is(err, pdu.ErrSnapshotExists) {
		t.Fatalf("snapshot -r over a taken name: %v", err)
	}
	if out := sh(t, "zfs list -H -o name -t snapshot -r "+root+" | grep -c @s2 || true"); strings.TrimSpace(out) != "2" {
		t.Fatalf("after the refused set, %s snapshots named s2", out)
	}
	for i := 3; i <= 5; i++ {
		sh(t, "zfs snapshot "+q(root+"/a b@s"+string(rune('0'+i))))
	}

	fss, err := e.ListFilesystems(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vs := find(fss, root+"/a b").Versions
	s1, s2, s3 := snapshotOf(t, vs, "s1"), snapshotOf(t, vs, "s2"), snapshotOf(t, vs, "s3")
	if err := e.Hold(ctx, root+"/a b", s1, "zrep_test"); err != nil {
		t.Fatal(err)
	}
	if err := e.Hold(ctx, root+"/a b", s1, "zrep_test"); err != nil {
		t.Fatalf("holding again: %v", err)
	}
	sh(t, "zfs hold other "+q(root+"/a b@s2"))
	fss, _ = e.ListFilesystems(ctx)
	vs = find(fss, root+"/a b").Versions
	if snapshotOf(t, vs, "s1").UserRefs != 1 || snapshotOf(t, vs, "s2").UserRefs != 1 || snapshotOf(t, vs, "s3").UserRefs != 0 {
		t.Fatalf("userrefs not listed: %+v %+v", snapshotOf(t, vs, "s1"), snapshotOf(t, vs, "s3"))
	}
	// An outside destroy of the held snapshot fails.
	if err := run("zfs", "destroy", root+"/a b@s1"); err == nil {
		t.Fatal("zfs destroy of a held snapshot succeeded")
	}
	released, err := e.Release(ctx, root+"/a b", []*pdu.FilesystemVersion{s1, s2, s3}, "zrep_test")
	if err != nil || len(released) != 1 || released[0].Name != "s1" {
		t.Fatalf("release: %v %v", released, err)
	}

	// s2 keeps the other tool's hold: its destroy fails, the others go.
	res2, err := e.DestroySnapshots(ctx, &pdu.DestroySnapshotsReq{Filesystem: root + "/a b", Snapshots: []*pdu.FilesystemVersion{s1, s2, s3, snapshotOf(t, vs, "s4")}})
	if err != nil {
		t.Fatal(err)
	}
	var failed []string
	for _, r := range res2.Results {
		if r.Error != "" {
			failed = append(failed, r.Snapshot.Name)
		}
	}
	if !slices.Equal(failed, []string{"s2"}) {
		t.Errorf("failed destroys %v, want s2 (held)", failed)
	}
	vs, _ = e.ListFilesystemVersions(ctx, root+"/a b")
	if got := versionNames(vs); got != "@s2 @s5" {
		t.Errorf("left %s, want @s2 @s5", got)
	}
	sh(t, "zfs release other "+q(root+"/a b@s2"))
	if _, err := e.TakeSnapshots(ctx, &pdu.SnapshotReq{Filesystems: []string{pool + "/elsewhere"}, Name: "x"}); pdu.ClassOf(err) != pdu.Permanent {
		t.Errorf("snapshot outside the side: %v", err)
	}
}

// run runs a command and returns its error.
func run(name string, args ...string) error {
	cmd := osexec.Command(name, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return errors.New(string(out))
	}
	return nil
}
