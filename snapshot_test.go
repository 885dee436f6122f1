package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad snapshot and retention flags are usage errors (exit 2), caught
// before any side is contacted.
func TestRetentionUsageErrors(t *testing.T) {
	cases := [][]string{
		{"zrep", "run", "--keep-source", "", "tank/a", "tank/b"},
		{"zrep", "run", "--keep-source", "daily", "tank/a", "tank/b"},
		{"zrep", "run", "--keep-dest", "daily=7,fortnightly=2", "tank/a", "tank/b"},
		{"zrep", "plan", "--keep-dest", "last=0", "tank/a", "tank/b"},
		{"zrep", "plan", "--keep-source", "within=3s", "tank/a", "tank/b"},
		{"zrep", "run", "--keep-source", "last=1", "--prune-match", "(", "tank/a", "tank/b"},
		{"zrep", "run", "--snapshot", "--prefix", "-r", "tank/a", "tank/b"},
		{"zrep", "run", "--snapshot", "--prefix", "a@b", "tank/a", "tank/b"},
		{"zrep", "prune", "tank/a", "tank/b"},
		{"zrep", "prune", "--keep-source", "hourly=x", "tank/a", "tank/b"},
		{"zrep", "prune", "--snapshot", "--keep-source", "last=1", "tank/a", "tank/b"},
		{"zrep", "snapshot"},
		{"zrep", "snapshot", "tank/a", "tank/b"},
		{"zrep", "snapshot", "--prefix", "", "tank/a"},
		{"zrep", "snapshot", "--exclude", "[", "tank/a"},
		{"zrep", "snapshot", "tank/a@x"},
	}
	for _, args := range cases {
		t.Run(strings.Join(args[1:], " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			t.Setenv("ZREP_ARGV_LOG", filepath.Join(t.TempDir(), "argv"))
			code := runApp(context.Background(), args, &stdout, &stderr)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr %q", code, exitUsage, stderr.String())
			}
			if n := strings.Count(strings.TrimSpace(stderr.String()), "\n"); n != 0 {
				t.Errorf("want one line on stderr, got:\n%s", stderr.String())
			}
			if _, err := os.Stat(os.Getenv("ZREP_ARGV_LOG")); err == nil {
				t.Errorf("a usage error ran zfs")
			}
		})
	}
}
