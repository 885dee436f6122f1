//go:build lab

package endpoints_test

import (
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

// sudoCommands lists the command lines of the processes running `sudo -n`.
func sudoCommands() [][]string {
	var cmds [][]string
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range dirs {
		b, err := os.ReadFile(f)
		if err != nil || len(b) == 0 {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(argv) > 2 && filepath.Base(argv[0]) == "sudo" && argv[1] == "-n" {
			cmds = append(cmds, argv)
		}
	}
	return cmds
}

// TestSudoRunsRemoteZFSThroughSudo: with Sudo, a remote side's start-up
// listing, its send pipeline (compressed) and its receive run zfs through
// `sudo -n` (the lab's account is root, which sudo never asks for a
// password), and the snapshot arrives.
func TestSudoRunsRemoteZFSThroughSudo(t *testing.T) {
	user, host, sshOpts := labSSH(t)
	if _, err := exec.LookPath("sudo"); err != nil {
		t.Skip("no sudo on this host")
	}
	pool := testPool(t)
	ctx := ctxT(t)
	fs := pool + "/src"
	sh(t, "zfs create "+fs)
	writeData(t, fs, "a", 48<<10)
	sh(t, "zfs snapshot "+fs+"@s1")
	link := endpoints.Link{Compress: endpoints.Codec("zstd")}
	src := endpoints.New(endpoints.Side{User: user, Host: host, Dataset: fs},
		endpoints.Options{Role: "source", SSH: sshOpts, Sudo: true, Link: link})
	defer src.Close()
	dst := endpoints.New(endpoints.Side{User: user, Host: host, Dataset: pool + "/dst"},
		endpoints.Options{Role: "destination", SSH: sshOpts, Sudo: true, Link: link})
	defer dst.Close()

	fss, err := src.ListFilesystems(ctx)
	if err != nil || len(fss) != 1 || len(fss[0].Versions) != 1 {
		t.Fatalf("listing through sudo: %v, %v", fss, err)
	}
	if _, err := dst.ListFilesystems(ctx); err != nil {
		t.Fatalf("destination listing through sudo: %v", err)
	}
	snap := fss[0].Versions[0]
	stream, err := src.Send(ctx, &pdu.SendReq{Filesystem: fs, To: snap, Wire: &pdu.WireCount{}})
	if err != nil {
		t.Fatal(err)
	}
	// The sender blocks on its full pipe until read: it is there to see.
	var seen []string
	for end := time.Now().Add(20 * time.Second); seen == nil && time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		for _, argv := range sudoCommands() {
			if slices.Contains(argv, "send") && argv[len(argv)-1] == fs+"@s1" {
				seen = argv
			}
		}
	}
	if seen == nil || seen[2] != "zfs" {
		t.Errorf("no `sudo -n zfs send ... %s@s1` process while the stream was open: %q", fs, seen)
	}
	if err := dst.Receive(ctx, &pdu.ReceiveReq{Filesystem: pool + "/dst", Wire: &pdu.WireCount{}}, stream); err != nil {
		t.Fatalf("receive through sudo: %v", err)
	}
	io.Copy(io.Discard, stream)
	if err := stream.Close(); err != nil {
		t.Fatalf("send through sudo: %v", err)
	}
	got, err := dst.ListFilesystemVersions(ctx, pool+"/dst")
	if err != nil || len(got) != 1 || got[0].Guid != snap.Guid {
		t.Fatalf("received through sudo: %v, %v; want guid %d", got, err, snap.Guid)
	}
}
