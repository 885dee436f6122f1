package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/zrep/zrep/endpoints"
)

var lockDst = endpoints.Side{Host: "nas", Dataset: "backup/l"}

// A symbolic link planted where the lock file goes is never followed: the
// run is refused and the link's target keeps its content.
func TestLockRefusesPlantedSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(target, []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, lockName(lockDst))
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	l, err := lockDestination(dir, lockDst)
	if err == nil {
		l.Release()
		t.Fatal("a lock through a planted symbolic link was taken")
	}
	if code := exitCode(lockFailure(err)); code != exitUsage {
		t.Errorf("exit %d for %v, want %d", code, err, exitUsage)
	}
	if !strings.Contains(err.Error(), link) {
		t.Errorf("error %q does not name %s", err, link)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep me\n" {
		t.Errorf("the link's target now holds %q", b)
	}
}

// The lock directory is created 0700, and the lock file 0600; a lock file
// left 0644 by an older zrep is made 0600.
func TestLockModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "locks")
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	l, err := lockDestination(dir, lockDst)
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("lock directory mode %04o, want 0700", fi.Mode().Perm())
	}
	path := filepath.Join(dir, lockName(lockDst))
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode %04o, want 0600", fi.Mode().Perm())
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	l, err = lockDestination(dir, lockDst)
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("an old 0644 lock file stayed %04o, want 0600", fi.Mode().Perm())
	}
}

// A lock directory others may write in, or that belongs to another user,
// is refused before any lock file is made there, with an error that names
// it and says what to do.
func TestLockRefusesUnsafeDirectory(t *testing.T) {
	cases := []struct {
		name  string
		setUp func(t *testing.T, dir string)
		says  string
	}{
		{"world-writable sticky", func(t *testing.T, dir string) { chmod(t, dir, 0o777|os.ModeSticky) }, "writable"},
		{"group-writable", func(t *testing.T, dir string) { chmod(t, dir, 0o770) }, "writable"},
		{"another user's", func(t *testing.T, dir string) {
			if os.Geteuid() != 0 {
				t.Skip("changing a directory's owner needs root")
			}
			if err := os.Chown(dir, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}, "owned by uid 65534"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "locks")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			tc.setUp(t, dir)
			l, err := lockDestination(dir, lockDst)
			if err == nil {
				l.Release()
				t.Fatalf("lock taken in an unsafe directory")
			}
			var ue *usageError
			if !errors.As(err, &ue) || exitCode(lockFailure(err)) != exitUsage {
				t.Errorf("error %v (exit %d), want a usage error (exit %d)", err, exitCode(lockFailure(err)), exitUsage)
			}
			if msg := err.Error(); !strings.Contains(msg, dir) || !strings.Contains(msg, tc.says) || !strings.Contains(msg, "--lock-dir") {
				t.Errorf("error %q does not name %s, say %q and what to do", msg, dir, tc.says)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("files were made in the refused directory: %v", entries)
			}
		})
	}
}

// The lock directory given as a symbolic link to a directory is refused:
// the link may be someone else's.
func TestLockRefusesSymlinkedDirectory(t *testing.T) {
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "locks")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	l, err := lockDestination(link, lockDst)
	if err == nil {
		l.Release()
		t.Fatal("lock taken through a symbolic link to the directory")
	}
	if exitCode(lockFailure(err)) != exitUsage {
		t.Errorf("error %v, want a usage error", err)
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// run refuses an unsafe --lock-dir with exit 2, before either side is
// contacted (neither dataset exists, and no zfs is run).
func TestRunRefusesUnsafeLockDir(t *testing.T) {
	dir := t.TempDir()
	chmod(t, dir, 0o777|os.ModeSticky)
	var stdout, stderr bytes.Buffer
	code := runApp(context.Background(), []string{"zrep", "run", "--lock-dir", dir, "nopool/a", "nopool/b"}, &stdout, &stderr)
	if code != exitUsage {
		t.Fatalf("exit %d, want %d; stderr %q", code, exitUsage, stderr.String())
	}
	if !strings.Contains(stderr.String(), dir) {
		t.Errorf("stderr %q does not name %s", stderr.String(), dir)
	}
}
