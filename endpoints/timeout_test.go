package endpoints

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zrep/zrep/pdu"
)

// hangingZFS puts a zfs on PATH that never answers.
func hangingZFS(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "zfs"), []byte("#!/bin/sh\nexec sleep 600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// A zfs command that carries no stream and does not answer is ended after
// CommandTimeout, with a retryable error that names the command and the
// dataset; a listing too.
func TestCommandTimeout(t *testing.T) {
	hangingZFS(t)
	e := New(Side{Dataset: "tank"}, Options{Role: "destination", Recursive: true, CommandTimeout: 300 * time.Millisecond})
	defer e.Close()
	for name, call := range map[string]func(context.Context) error{
		"zfs create tank/a/p": func(ctx context.Context) error { return e.CreatePlaceholder(ctx, "tank/a/p") },
		"zfs get":             func(ctx context.Context) error { _, err := e.ListFilesystems(ctx); return err },
	} {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			err := call(context.Background())
			took := time.Since(start)
			if err == nil || !pdu.IsRetryable(err) {
				t.Fatalf("error %v (%v), want a retryable error", err, pdu.ClassOf(err))
			}
			if msg := err.Error(); !strings.Contains(msg, name) || !strings.Contains(msg, "--command-timeout") {
				t.Errorf("error %q does not name %q and --command-timeout", msg, name)
			}
			if took > 5*time.Second {
				t.Errorf("a 300ms command timeout took %s", took)
			}
		})
	}
}

// Without a command timeout, the caller's context alone ends the command,
// and its cause is what the error says.
func TestCommandWithoutTimeoutEndsWithContext(t *testing.T) {
	hangingZFS(t)
	e := New(Side{Dataset: "tank"}, Options{Role: "destination", Recursive: true})
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := e.CreatePlaceholder(ctx, "tank/a/p")
	if err == nil || strings.Contains(err.Error(), "--command-timeout") {
		t.Fatalf("error %v, want the context's", err)
	}
}
