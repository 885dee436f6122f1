package memzfs_test

import (
	"context"
	"strings"
	"testing"

	"github.com/zrep/zrep/pdu"
	"github.com/zrep/zrep/replication/memzfs"
)

func transfer(t *testing.T, src *memzfs.ZFS, dst *memzfs.ZFS, send *pdu.SendReq, recv *pdu.ReceiveReq) error {
	t.Helper()
	ctx := context.Background()
	s, err := src.Sender("tank", true).Send(ctx, send)
	if err != nil {
		t.Fatalf("send: %v", err)
	}
	defer s.Close()
	return dst.Receiver("backup", true).Receive(ctx, recv, s)
}

func TestReceiveChecksLikeZFS(t *testing.T) {
	src, dst := memzfs.New(), memzfs.New()
	src.CreateFilesystem("tank/a")
	s1, s2, s3 := src.Snapshot("tank/a", "s1"), src.Snapshot("tank/a", "s2"), src.Snapshot("tank/a", "s3")
	dst.CreateFilesystem("backup")

	if err := transfer(t, src, dst, &pdu.SendReq{Filesystem: "tank/a", To: s1}, &pdu.ReceiveReq{Filesystem: "backup/a"}); err != nil {
		t.Fatalf("full receive: %v", err)
	}
	err := transfer(t, src, dst, &pdu.SendReq{Filesystem: "tank/a", To: s2}, &pdu.ReceiveReq{Filesystem: "backup/a"})
	if pdu.ClassOf(err) != pdu.Permanent || !strings.Contains(err.Error(), "must specify -F") {
		t.Errorf("full stream into existing fs: %v", err)
	}
	err = transfer(t, src, dst, &pdu.SendReq{Filesystem: "tank/a", From: s2, To: s3}, &pdu.ReceiveReq{Filesystem: "backup/a"})
	if pdu.ClassOf(err) != pdu.Permanent || !strings.Contains(err.Error(), "does not match incremental source") {
		t.Errorf("wrong incremental base: %v", err)
	}
	if err := transfer(t, src, dst, &pdu.SendReq{Filesystem: "tank/a", From: s1, To: s3, Intermediates: true}, &pdu.ReceiveReq{Filesystem: "backup/a"}); err != nil {
		t.Fatalf("-I receive: %v", err)
	}
	if got := strings.Join(dst.SnapshotNames("backup/a"), " "); got != "s1 s2 s3" {
		t.Errorf("received %s", got)
	}
	for _, v := range dst.Versions("backup/a") {
		if v.Name == "s2" && v.Guid != s2.Guid {
			t.Errorf("guid not kept")
		}
	}
	dst.Modify("backup/a")
	s4 := src.Snapshot("tank/a", "s4")
	err = transfer(t, src, dst, &pdu.SendReq{Filesystem: "tank/a", From: s3, To: s4}, &pdu.ReceiveReq{Filesystem: "backup/a"})
	if pdu.ClassOf(err) != pdu.Permanent || !strings.Contains(err.Error(), "modified") {
		t.Errorf("modified destination: %v", err)
	}
}

func TestReceiverListing(t *testing.T) {
	dst := memzfs.New()
	dst.CreateFilesystem("backup")
	fss, err := dst.Receiver("backup/new", true).ListFilesystems(context.Background())
	if err != nil || len(fss) != 0 {
		t.Errorf("missing root with existing parent: %v %v", fss, err)
	}
	_, err = dst.Receiver("nopool/new", true).ListFilesystems(context.Background())
	if pdu.ClassOf(err) != pdu.Permanent {
		t.Errorf("missing parent: %v", err)
	}
}
