package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Hooks that leave a mark: the pre hook writes the snapshot's name into a
// file of the dataset, so the snapshot holds it, and the post hook removes
// it, so the live dataset does not.
const (
	preMarker  = `mp=$(zfs get -H -o value mountpoint "$ZREP_DATASET") && echo "$ZREP_SNAPSHOT" >"$mp/frozen"`
	postMarker = `mp=$(zfs get -H -o value mountpoint "$ZREP_DATASET") && rm "$mp/frozen"`
)

func TestSnapshotHooks(t *testing.T) {
	platformIndependent(t)
	for _, tc := range []struct {
		name string
		side func(string) string
	}{
		{"local source", local},
		{"remote source", remote},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool := newPool(t)
			src, dst := pool+"/src", pool+"/dst"
			createFS(t, src, "data")
			args := []string{"run", "--json", "--snapshot", "--pre-snapshot", preMarker, "--post-snapshot", postMarker}
			if tc.side(src) != src {
				args = append(args, sshFlags()...)
			}
			args = append(args, tc.side(src), dst)
			r := zrep(t, args...).mustExit(t, 0)
			rep := r.report(t)
			if rep.Snapshot == nil {
				t.Fatalf("Report names no snapshot: %s", r.stdout)
			}
			if got := strings.TrimSpace(readFile(t, dst, "frozen")); got != *rep.Snapshot {
				t.Errorf("the snapshot holds the pre hook's marker %q, want the snapshot's name %q", got, *rep.Snapshot)
			}
			if out := machineOf(src).script(t, `mp=$(zfs get -H -o value mountpoint "$1"); ls "$mp"`, src); strings.Contains(out, "frozen") {
				t.Errorf("the post hook did not run: the live source still holds the marker (%s)", out)
			}
		})
	}
}

func TestPreSnapshotHookFails(t *testing.T) {
	platformIndependent(t)
	pool := newPool(t)
	src, dst := pool+"/src", pool+"/dst"
	createFS(t, src, "data")
	snapshot(t, src, "s1")
	before := snapshots(t, src)
	thawed := filepath.Join(t.TempDir(), "thawed")
	for _, tc := range []struct {
		name, pre string
		extra     []string
		want      string
		remote    bool
	}{
		{"exits non-zero", "echo frozen badly >&2; exit 3", nil, "status 3", false},
		{"outlasts --hook-timeout", "sleep 6137", []string{"--hook-timeout", "1s"}, "--hook-timeout", false},
		{"remote, outlasts --hook-timeout", "sleep 6137", []string{"--hook-timeout", "1s"}, "--hook-timeout", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(thawed)
			args := append([]string{"run", "--snapshot", "--pre-snapshot", tc.pre, "--post-snapshot", "touch " + thawed}, tc.extra...)
			source := src
			if tc.remote {
				args, source = append(args, sshFlags()...), remote(src)
			}
			start := time.Now()
			r := zrep(t, append(args, source, dst)...).mustExit(t, 1)
			if d := time.Since(start); d > 60*time.Second {
				t.Errorf("the run took %s: the hook was not ended", d)
			}
			if !strings.Contains(r.stderr, "pre-snapshot") || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr does not name the pre-snapshot hook and %q:\n%s", tc.want, r.stderr)
			}
			mustMatch(t, src, before)
			if exists(t, dst) {
				t.Errorf("%s was created although no snapshot was taken", dst)
			}
			if _, err := os.Stat(thawed); err != nil {
				t.Errorf("the post hook did not run after the failed pre hook: %v", err)
			}
		})
	}
	// The remote group is ended by a command of its own: give it a moment.
	if !waitUntil(10*time.Second, func() bool {
		out := lab.host.must(t, "sh", "-c", "ps -eo pid=,args= | awk '$2 == \"sleep\" && $3 == \"6137\"'")
		return strings.TrimSpace(out) == ""
	}) {
		t.Errorf("a timed-out hook still runs")
	}
}

func TestPlanRunsNoHook(t *testing.T) {
	platformIndependent(t)
	pool := newPool(t)
	src, dst := pool+"/src", pool+"/dst"
	createFS(t, src, "data")
	mark := filepath.Join(t.TempDir(), "ran")
	r := zrep(t, "plan", "--snapshot", "--pre-snapshot", "touch "+mark, "--post-snapshot", "touch "+mark,
		"--post-run", "touch "+mark, src, dst).mustExit(t, 0)
	if _, err := os.Stat(mark); err == nil {
		t.Errorf("plan ran a hook")
	}
	for _, want := range []string{"would run hook pre-snapshot: touch", "would run hook post-snapshot: touch", "would run hook post-run: touch"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("plan does not say %q:\n%s", want, r.stdout)
		}
	}
	if got := snapshots(t, src); len(got) != 0 {
		t.Errorf("plan took a snapshot: %v", got)
	}
}

func TestPostRunHook(t *testing.T) {
	platformIndependent(t)
	pool := newPool(t)
	src, dst := pool+"/src", pool+"/dst"
	createFS(t, src, "data")
	dir := t.TempDir()
	out := filepath.Join(dir, "env")
	report := filepath.Join(dir, "report.json")
	hook := `printf '%s %s\n' "$ZREP_EXIT" "$ZREP_STATUS" >` + out + ` && cp "$ZREP_REPORT" ` + report

	zrep(t, "run", "--snapshot", "--post-run", hook, src, dst).mustExit(t, 0)
	if b, err := os.ReadFile(out); err != nil || string(b) != "0 Completed\n" {
		t.Errorf("post-run saw %q (%v), want exit 0 and status Completed", b, err)
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("post-run got no Report: %v", err)
	}
	var rep struct {
		Status    string `json:"status"`
		Completed []struct {
			Filesystem string `json:"filesystem"`
		} `json:"completed"`
	}
	if err := json.Unmarshal(b, &rep); err != nil || rep.Status != "Completed" || len(rep.Completed) != 1 || rep.Completed[0].Filesystem != src {
		t.Errorf("post-run's Report %s (%v): want Completed with %s", b, err, src)
	}

	// A failed run: the hook sees exit 1; a failing hook changes nothing.
	zfs(t, "snapshot", dst+"@diverged")
	snapshot(t, src, "s2")
	zrep(t, "run", "--post-run", hook+"; exit 7", src, dst).mustExit(t, 1)
	if b, err := os.ReadFile(out); err != nil || string(b) != "1 Completed\n" {
		t.Errorf("post-run saw %q (%v), want exit 1 and status Completed", b, err)
	}
}
