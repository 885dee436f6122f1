package endpoints

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zrep/zrep/pdu"
)

func TestRunnerKillsProcessGroupOnCancel(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	ctx, cancel := context.WithCancel(context.Background())
	r := newRunner(nil, "source", "")
	// The grandchild ignores nothing and would outlive a kill of its parent
	// alone; the group kill must reach it.
	argv := []string{"sh", "-c", "sleep 300 & echo $! >" + pidFile + "; wait"}
	p, err := r.start(ctx, []string{"zfs", "send", "x@y"}, argv, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(pidFile)
		if pid, err = strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			break
		}
	}
	if pid == 0 {
		t.Fatal("grandchild did not start")
	}
	begin := time.Now()
	cancel()
	err = p.wait()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("wait: %v, want context.Canceled", err)
	}
	if d := time.Since(begin); d > killGrace+time.Second {
		t.Fatalf("took %v to end", d)
	}
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d still alive", pid)
		}
	}
}

func TestRunnerSIGKILLsWhatIgnoresSIGTERM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	r := newRunner(nil, "source", "")
	begin := time.Now()
	err := r.run(ctx, []string{"zfs", "send"}, []string{"sh", "-c", "trap '' TERM; sleep 300 & wait; sleep 300"}, nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("run: %v", err)
	}
	if d := time.Since(begin); d > killGrace+2*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestRunnerClassifiesAndKeepsStderr(t *testing.T) {
	r := newRunner(nil, "destination", "")
	err := r.run(context.Background(), []string{"zfs", "receive", "-u", "b/a"},
		[]string{"sh", "-c", "echo 'cannot receive incremental stream: destination b/a has been modified' >&2; echo 'since most recent snapshot' >&2; exit 1"}, nil, nil)
	if pdu.ClassOf(err) != pdu.Permanent || !strings.Contains(err.Error(), "zfs receive b/a: cannot receive incremental stream: destination b/a has been modified since most recent snapshot") {
		t.Fatalf("got %v (%v)", err, pdu.ClassOf(err))
	}
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitCode != 1 {
		t.Fatalf("no CommandError with exit code in %v", err)
	}
}

func TestRunnerPassesStdinAndStdout(t *testing.T) {
	r := newRunner(nil, "source", "")
	in := bytes.Repeat([]byte("0123456789"), 100000)
	var out bytes.Buffer
	if err := r.run(context.Background(), []string{"zfs", "x"}, []string{"cat"}, bytes.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), in) {
		t.Fatalf("got %d bytes back, want %d", out.Len(), len(in))
	}
}

func TestStderrTailIsBounded(t *testing.T) {
	var s stderrTail
	s.Write([]byte("first line\n"))
	for range 10000 {
		s.Write([]byte("noise noise noise noise\n"))
	}
	s.Write([]byte("last line\n"))
	got := s.String()
	if len(got) > 3*stderrKeep || !strings.HasPrefix(got, "first line") || !strings.HasSuffix(got, "last line\n") || !strings.Contains(got, "bytes ...]") {
		t.Fatalf("%d bytes: %.80q ... %.80q", len(got), got, got[len(got)-80:])
	}
}

func TestArgvLog(t *testing.T) {
	file := filepath.Join(t.TempDir(), "argv.jsonl")
	t.Setenv(ArgvLogEnv, file)
	src := newRunner(nil, "source", "")
	dst := newRunner(nil, "destination", "backup.example")
	if err := src.run(context.Background(), []string{"zfs", "get", "tank/a b"}, []string{"true"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	dst.run(context.Background(), []string{"zfs", "receive", "-u", "b/a"}, []string{"false"}, nil, nil)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines: %q", len(lines), b)
	}
	type entry struct {
		Role string   `json:"role"`
		Host string   `json:"host"`
		Argv []string `json:"argv"`
	}
	var e0, e1 entry
	if err := json.Unmarshal([]byte(lines[0]), &e0); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &e1); err != nil {
		t.Fatal(err)
	}
	if e0.Role != "source" || e0.Host != "" || strings.Join(e0.Argv, "|") != "zfs|get|tank/a b" {
		t.Errorf("line 1: %+v", e0)
	}
	if e1.Role != "destination" || e1.Host != "backup.example" || e1.Argv[1] != "receive" {
		t.Errorf("line 2: %+v", e1)
	}
}

// The argv log is never written through a symbolic link, and is created
// readable by its owner only.
func TestArgvLogRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "precious")
	if err := os.WriteFile(target, []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "argv.jsonl")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	t.Setenv(ArgvLogEnv, link)
	if err := newRunner(nil, "source", "").run(context.Background(), []string{"zfs", "get", "tank"}, []string{"true"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "keep me\n" {
		t.Errorf("the link's target now holds %q", b)
	}

	fresh := filepath.Join(dir, "fresh.jsonl")
	t.Setenv(ArgvLogEnv, fresh)
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	if err := newRunner(nil, "source", "").run(context.Background(), []string{"zfs", "get", "tank"}, []string{"true"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("argv log mode %04o, want 0600", fi.Mode().Perm())
	}
}
