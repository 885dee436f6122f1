package endpoints

import (
	"slices"
	"testing"

	"github.com/zrep/zrep/pdu"
)

func snap(name string) *pdu.FilesystemVersion {
	return &pdu.FilesystemVersion{Name: name, Type: pdu.Snapshot}
}
func bookmark(name string) *pdu.FilesystemVersion {
	return &pdu.FilesystemVersion{Name: name, Type: pdu.Bookmark}
}

func TestArgvBuilders(t *testing.T) {
	must := func(argv []string, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return argv
	}
	fuse := Capabilities{}
	cases := []struct {
		name string
		got  []string
		want []string
	}{
		{"list recursive openzfs", listArgv("tank/a b", true, openZFS2),
			[]string{"zfs", "get", "-H", "-p", "-r", "-t", "filesystem,volume,snapshot,bookmark", "-o", "name,property,value,source",
				"type,guid,createtxg,creation,zrep:placeholder,receive_resume_token", "tank/a b"}},
		{"list one zfs-fuse", listArgv("pool/x", false, fuse),
			[]string{"zfs", "get", "-H", "-p", "-d", "1", "-o", "name,property,value,source", "type,guid,createtxg,creation,zrep:placeholder", "pool/x"}},
		{"versions openzfs", versionsArgv("tank/a", openZFS2),
			[]string{"zfs", "get", "-H", "-p", "-d", "1", "-t", "snapshot,bookmark", "-o", "name,property,value,source", "type,guid,createtxg,creation", "tank/a"}},
		{"versions zfs-fuse", versionsArgv("tank/a", fuse),
			[]string{"zfs", "get", "-H", "-p", "-d", "1", "-o", "name,property,value,source", "type,guid,createtxg,creation", "tank/a"}},
		{"type", typeArgv("tank"), []string{"zfs", "get", "-H", "-o", "value", "type", "tank"}},
		{"send full", must(sendArgv(&pdu.SendReq{Filesystem: "tank/a", To: snap("s 1")}, false)),
			[]string{"zfs", "send", "tank/a@s 1"}},
		{"send incremental", must(sendArgv(&pdu.SendReq{Filesystem: "tank/a", From: snap("s1"), To: snap("s2")}, false)),
			[]string{"zfs", "send", "-i", "tank/a@s1", "tank/a@s2"}},
		{"send intermediates from bookmark", must(sendArgv(&pdu.SendReq{Filesystem: "tank/a", From: bookmark("b1"), To: snap("s2"), Intermediates: true}, false)),
			[]string{"zfs", "send", "-I", "tank/a#b1", "tank/a@s2"}},
		{"send resume", must(sendArgv(&pdu.SendReq{Filesystem: "tank/a", To: snap("s2"), ResumeToken: "1-b45f-e0-789c"}, false)),
			[]string{"zfs", "send", "-t", "1-b45f-e0-789c"}},
		{"estimate", must(sendArgv(&pdu.SendReq{Filesystem: "tank/a", From: snap("s1"), To: snap("s2")}, true)),
			[]string{"zfs", "send", "-nvP", "-i", "tank/a@s1", "tank/a@s2"}},
		{"resume info", must(resumeInfoArgv("1-ab")), []string{"zfs", "send", "-nvP", "-t", "1-ab"}},
		{"receive plain", must(receiveArgv(&pdu.ReceiveReq{Filesystem: "backup/a", Resumable: true}, fuse)),
			[]string{"zfs", "receive", "-u", "backup/a"}},
		{"receive placeholder resumable", must(receiveArgv(&pdu.ReceiveReq{Filesystem: "backup/a", OverwritePlaceholder: true, Resumable: true}, openZFS2)),
			[]string{"zfs", "receive", "-u", "-F", "-s", "backup/a"}},
		{"receive rollback", must(receiveArgv(&pdu.ReceiveReq{Filesystem: "backup/a", Rollback: true}, openZFS2)),
			[]string{"zfs", "receive", "-u", "-F", "backup/a"}},
		{"create placeholder", must(createPlaceholderArgv("backup/p")),
			[]string{"zfs", "create", "-o", "canmount=off", "-o", "zrep:placeholder=on", "backup/p"}},
		{"rollback", must(rollbackArgv("backup/a", snap("s1"))), []string{"zfs", "rollback", "-r", "backup/a@s1"}},
		{"abort", must(abortReceiveArgv("backup/a")), []string{"zfs", "receive", "-A", "backup/a"}},
		{"destroy", must(destroyArgv("backup/a", snap("old"))), []string{"zfs", "destroy", "backup/a@old"}},
		{"destroy bookmark", must(destroyArgv("backup/a", bookmark("b"))), []string{"zfs", "destroy", "backup/a#b"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !slices.Equal(c.got, c.want) {
				t.Fatalf("\n got %q\nwant %q", c.got, c.want)
			}
		})
	}
	clear, err := clearPlaceholderArgvs("backup/p")
	if err != nil || len(clear) != 2 ||
		!slices.Equal(clear[0], []string{"zfs", "set", "zrep:placeholder=off", "backup/p"}) ||
		!slices.Equal(clear[1], []string{"zfs", "set", "canmount=on", "backup/p"}) {
		t.Fatalf("clear placeholder: %q %v", clear, err)
	}
}

func TestArgvBuildersRefuse(t *testing.T) {
	cases := map[string]func() error{
		"send option-like fs": func() error {
			_, err := sendArgv(&pdu.SendReq{Filesystem: "-R", To: snap("s")}, false)
			return err
		},
		"send bookmark target": func() error {
			_, err := sendArgv(&pdu.SendReq{Filesystem: "tank", To: bookmark("b")}, false)
			return err
		},
		"send no target": func() error { _, err := sendArgv(&pdu.SendReq{Filesystem: "tank"}, false); return err },
		"send bad snapshot": func() error {
			_, err := sendArgv(&pdu.SendReq{Filesystem: "tank", To: snap("a@b")}, false)
			return err
		},
		"token option":      func() error { _, err := resumeInfoArgv("-x"); return err },
		"token shell":       func() error { _, err := resumeInfoArgv("1-ab;rm"); return err },
		"receive snapshot":  func() error { _, err := receiveArgv(&pdu.ReceiveReq{Filesystem: "b/a@s"}, openZFS2); return err },
		"rollback bookmark": func() error { _, err := rollbackArgv("b/a", bookmark("x")); return err },
		"destroy list":      func() error { _, err := destroyArgv("b/a", snap("a,b")); return err },
		"destroy nil":       func() error { _, err := destroyArgv("b/a", nil); return err },
		"placeholder slash": func() error { _, err := createPlaceholderArgv("/b/a"); return err },
		"abort option":      func() error { _, err := abortReceiveArgv("-F"); return err },
		"clear empty":       func() error { _, err := clearPlaceholderArgvs(""); return err },
	}
	for name, f := range cases {
		if f() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
