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
				"type,guid,createtxg,creation,origin,receive_resume_token,encryption,encryptionroot,keystatus", "tank/a b"}},
		{"list one zfs-fuse", listArgv("pool/x", false, fuse),
			[]string{"zfs", "get", "-H", "-p", "-d", "1", "-o", "name,property,value,source", "type,guid,createtxg,creation,origin", "pool/x"}},
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
		{"send clone from its origin", must(sendArgv(&pdu.SendReq{Filesystem: "tank/vm 1", From: snap("base"), FromFilesystem: "tank/tmpl", To: snap("s1")}, false)),
			[]string{"zfs", "send", "-i", "tank/tmpl@base", "tank/vm 1@s1"}},
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
		{"create placeholder", must(createPlaceholderArgv("backup/p", false)),
			[]string{"zfs", "create", "-o", "canmount=off", "-o", "zrep:placeholder=on", "backup/p"}},
		{"create placeholder unencrypted", must(createPlaceholderArgv("backup/lock/p", true)),
			[]string{"zfs", "create", "-o", "canmount=off", "-o", "zrep:placeholder=on", "-o", "encryption=off", "backup/lock/p"}},
		{"rollback", must(rollbackArgv("backup/a", snap("s1"))), []string{"zfs", "rollback", "-r", "backup/a@s1"}},
		{"abort", must(abortReceiveArgv("backup/a")), []string{"zfs", "receive", "-A", "backup/a"}},
		{"destroy", must(destroyArgv("backup/a", snap("old"))), []string{"zfs", "destroy", "backup/a@old"}},
		{"destroy bookmark", must(destroyArgv("backup/a", bookmark("b"))), []string{"zfs", "destroy", "backup/a#b"}},
		{"send raw", must(sendArgv(&pdu.SendReq{Filesystem: "tank/a", To: snap("s1"), Options: pdu.SendOptions{Raw: true}}, false)),
			[]string{"zfs", "send", "-w", "tank/a@s1"}},
		{"send every flag incremental", must(sendArgv(&pdu.SendReq{Filesystem: "tank/a", From: bookmark("zrep_x_1"), To: snap("s2"),
			Options: pdu.SendOptions{Raw: true, Compressed: true, LargeBlocks: true, Props: true}}, false)),
			[]string{"zfs", "send", "-w", "-c", "-L", "-p", "-i", "tank/a#zrep_x_1", "tank/a@s2"}},
		{"estimate compressed large blocks", must(sendArgv(&pdu.SendReq{Filesystem: "tank/a", From: snap("s1"), To: snap("s2"), Intermediates: true,
			Options: pdu.SendOptions{Compressed: true, LargeBlocks: true}}, true)),
			[]string{"zfs", "send", "-nvP", "-c", "-L", "-I", "tank/a@s1", "tank/a@s2"}},
		{"send resume ignores flags", must(sendArgv(&pdu.SendReq{Filesystem: "tank/a", To: snap("s2"), ResumeToken: "1-ab",
			Options: pdu.SendOptions{Raw: true, Props: true}}, false)),
			[]string{"zfs", "send", "-t", "1-ab"}},
		{"estimate resume ignores flags", must(sendArgv(&pdu.SendReq{Filesystem: "tank/a", To: snap("s2"), ResumeToken: "1-ab",
			Options: pdu.SendOptions{Raw: true}}, true)),
			[]string{"zfs", "send", "-nvP", "-t", "1-ab"}},
		{"receive set and exclude", must(receiveArgv(&pdu.ReceiveReq{Filesystem: "backup/a", Resumable: true, Options: pdu.ReceiveOptions{
			Set:     []pdu.Property{{Name: "readonly", Value: "on"}, {Name: "com.example:note", Value: "a b=c"}},
			Exclude: []string{"mountpoint", "sharenfs"},
		}}, openZFS2)),
			[]string{"zfs", "receive", "-u", "-s", "-o", "readonly=on", "-o", "com.example:note=a b=c", "-x", "mountpoint", "-x", "sharenfs", "backup/a"}},
		{"bookmark", must(bookmarkArgv("tank/a b", snap("s 1"), "zrep_0123456789abcdef_000000000000beef")),
			[]string{"zfs", "bookmark", "tank/a b@s 1", "tank/a b#zrep_0123456789abcdef_000000000000beef"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !slices.Equal(c.got, c.want) {
				t.Fatalf("\n got %q\nwant %q", c.got, c.want)
			}
		})
	}
	clear, err := clearPlaceholderArgvs("backup/p", pdu.ReceiveOptions{})
	if err != nil || len(clear) != 2 ||
		!slices.Equal(clear[0], []string{"zfs", "set", "zrep:placeholder=off", "backup/p"}) ||
		!slices.Equal(clear[1], []string{"zfs", "set", "canmount=on", "backup/p"}) {
		t.Fatalf("clear placeholder: %q %v", clear, err)
	}
	for _, v := range []string{"noauto", "off"} {
		set := pdu.ReceiveOptions{Set: []pdu.Property{{Name: "readonly", Value: "on"}, {Name: "canmount", Value: v}}}
		clear, err = clearPlaceholderArgvs("backup/p", set)
		if err != nil || len(clear) != 1 || !slices.Equal(clear[0], []string{"zfs", "set", "zrep:placeholder=off", "backup/p"}) {
			t.Errorf("clear placeholder under --recv-set canmount=%s: %q %v, want canmount left as received", v, clear, err)
		}
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
		"send origin -I": func() error {
			_, err := sendArgv(&pdu.SendReq{Filesystem: "tank/c", From: snap("b"), FromFilesystem: "tank/t", To: snap("s"), Intermediates: true}, false)
			return err
		},
		"send origin bookmark": func() error {
			_, err := sendArgv(&pdu.SendReq{Filesystem: "tank/c", From: bookmark("b"), FromFilesystem: "tank/t", To: snap("s")}, false)
			return err
		},
		"send origin option": func() error {
			_, err := sendArgv(&pdu.SendReq{Filesystem: "tank/c", From: snap("b"), FromFilesystem: "-R", To: snap("s")}, false)
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
		"placeholder slash": func() error { _, err := createPlaceholderArgv("/b/a", false); return err },
		"abort option":      func() error { _, err := abortReceiveArgv("-F"); return err },
		"clear empty":       func() error { _, err := clearPlaceholderArgvs("", pdu.ReceiveOptions{}); return err },
		"receive set option-like": func() error {
			_, err := receiveArgv(&pdu.ReceiveReq{Filesystem: "b/a", Options: pdu.ReceiveOptions{Set: []pdu.Property{{Name: "-F", Value: "x"}}}}, openZFS2)
			return err
		},
		"receive set newline": func() error {
			_, err := receiveArgv(&pdu.ReceiveReq{Filesystem: "b/a", Options: pdu.ReceiveOptions{Set: []pdu.Property{{Name: "x:y", Value: "a\nb"}}}}, openZFS2)
			return err
		},
		"receive exclude empty": func() error {
			_, err := receiveArgv(&pdu.ReceiveReq{Filesystem: "b/a", Options: pdu.ReceiveOptions{Exclude: []string{""}}}, openZFS2)
			return err
		},
		"receive exclude upper": func() error {
			_, err := receiveArgv(&pdu.ReceiveReq{Filesystem: "b/a", Options: pdu.ReceiveOptions{Exclude: []string{"Mountpoint"}}}, openZFS2)
			return err
		},
		"bookmark of bookmark": func() error { _, err := bookmarkArgv("b/a", bookmark("x"), "y"); return err },
		"bookmark bad name":    func() error { _, err := bookmarkArgv("b/a", snap("x"), "y#z"); return err },
		"bookmark nil":         func() error { _, err := bookmarkArgv("b/a", nil, "y"); return err },
		"bookmark option fs":   func() error { _, err := bookmarkArgv("-r", snap("x"), "y"); return err },
	}
	for name, f := range cases {
		if f() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
