package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zrep/zrep/endpoints"
	"github.com/zrep/zrep/pdu"
)

func TestExitCode(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 0},
		{"usage", usageErrorf("bad"), 2},
		{"wrapped usage", fmt.Errorf("x: %w", usageErrorf("bad")), 2},
		{"locked", &lockedError{path: "/l", pid: "1"}, 4},
		{"exit status", &exitError{code: 3}, 3},
		{"interrupted", errInterrupted, 130},
		{"timeout", fmt.Errorf("run: %w", errTimeout), 124},
		{"flag parsing", errors.New("could not parse"), 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := exitCode(tc.err); got != tc.want {
				t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}

// Usage errors are caught before any side is contacted: none of these
// datasets exist, and no zfs is needed to reject them.
func TestUsageErrors(t *testing.T) {
	cases := [][]string{
		{"zrep"},
		{"zrep", "frobnicate"},
		{"zrep", "run"},
		{"zrep", "run", "tank/a"},
		{"zrep", "run", "tank/a", "tank/a"},
		{"zrep", "run", "tank/a", "tank/a/b"},
		{"zrep", "run", "-r", "tank/a/b", "tank/a"},
		{"zrep", "plan", "--initial", "oldest", "tank/a", "tank/b"},
		{"zrep", "run", "--retries", "-2", "tank/a", "tank/b"},
		{"zrep", "run", "--jobs", "0", "tank/a", "tank/b"},
		{"zrep", "run", "--nope", "tank/a", "tank/b"},
		{"zrep", "run", "--ssh-option", "-oProxyCommand=x", "tank/a", "h:tank/b"},
		{"zrep", "run", "--snapshots", "[", "tank/a", "tank/b"},
		{"zrep", "run", "--recv-set", "readonly", "tank/a", "tank/b"},
		{"zrep", "plan", "--recv-set", "=on", "tank/a", "tank/b"},
		{"zrep", "run", "--recv-set", "-F=x", "tank/a", "tank/b"},
		{"zrep", "run", "--recv-exclude", "-x", "tank/a", "tank/b"},
		{"zrep", "plan", "--recv-exclude", "Mount Point", "tank/a", "tank/b"},
		{"zrep", "run", "a`x`@host:tank/a", "tank/b"},
	}
	assertUsageErrors(t, cases)
}

func TestEnvironmentVariables(t *testing.T) {
	t.Setenv("ZREP_INITIAL", "sometimes")
	var stdout, stderr bytes.Buffer
	if code := runApp(context.Background(), []string{"zrep", "plan", "tank/a", "tank/b"}, &stdout, &stderr); code != exitUsage {
		t.Fatalf("ZREP_INITIAL was not read: exit %d, stderr %q", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "sometimes") {
		t.Errorf("stderr %q does not quote the bad value", stderr.String())
	}
}

func TestReceiveOptions(t *testing.T) {
	opts, err := parseReceiveOptions([]string{"readonly=on", "com.example:note=a=b c", "compression=zstd"}, []string{"mountpoint"})
	if err != nil {
		t.Fatal(err)
	}
	want := []pdu.Property{{Name: "readonly", Value: "on"}, {Name: "com.example:note", Value: "a=b c"}, {Name: "compression", Value: "zstd"}}
	if !slices.Equal(opts.Set, want) || !slices.Equal(opts.Exclude, []string{"mountpoint"}) {
		t.Errorf("got %+v", opts)
	}
}

func TestCursorIDNamesTheDestination(t *testing.T) {
	a := cursorID(endpoints.Side{Host: "backup1", Dataset: "tank/copy"})
	if len(a) != 16 || strings.Trim(a, "0123456789abcdef") != "" {
		t.Fatalf("cursor id %q is not 16 lowercase hex digits", a)
	}
	if b := cursorID(endpoints.Side{User: "root", Host: "backup1", Dataset: "tank/copy"}); b != a {
		t.Errorf("the ssh user changed the cursor id: %s, %s", a, b)
	}
	for _, other := range []endpoints.Side{{Host: "backup2", Dataset: "tank/copy"}, {Dataset: "tank/copy"}, {Host: "backup1", Dataset: "tank/copy2"}} {
		if cursorID(other) == a {
			t.Errorf("%v has the same cursor id as backup1:tank/copy", other)
		}
	}
}

func TestLockIsExclusiveAndNamesHolder(t *testing.T) {
	dir := t.TempDir()
	dst := endpoints.Side{Host: "nas", Dataset: "backup/a b"}
	l, err := lockDestination(dir, dst)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockDestination(dir, dst)
	var le *lockedError
	if !errors.As(err, &le) || le.pid != fmt.Sprint(os.Getpid()) {
		t.Fatalf("second lock: %v, want a lockedError naming pid %d", err, os.Getpid())
	}
	if exitCode(err) != exitLocked {
		t.Errorf("exit %d, want %d", exitCode(err), exitLocked)
	}
	other, err := lockDestination(dir, endpoints.Side{Dataset: "backup/a b"})
	if err != nil {
		t.Fatalf("a local destination of the same name is another lock: %v", err)
	}
	other.Release()
	l.Release()
	l2, err := lockDestination(dir, dst)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	l2.Release()
}

func TestLockNames(t *testing.T) {
	a := lockName(endpoints.Side{Dataset: "tank/a_2f"})
	b := lockName(endpoints.Side{Dataset: "tank/a/"})
	if a == b {
		t.Errorf("distinct destinations share lock %q", a)
	}
	long := lockName(endpoints.Side{Dataset: strings.Repeat("x", 300)})
	if len(long) > 255 {
		t.Errorf("lock name of %d bytes", len(long))
	}
	if strings.ContainsAny(lockName(endpoints.Side{Dataset: "a b/c'd"}), " /'") {
		t.Errorf("unescaped lock name")
	}
}

// assertUsageErrors runs each command line: exit 2, one line on stderr,
// and no zfs run.
func assertUsageErrors(t *testing.T, cases [][]string) {
	t.Helper()
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
