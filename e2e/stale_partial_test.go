//go:build openzfs

package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// interruptReceive leaves partial receive state on dst, as a killed run
// would: the stream of `zfs send args...` is cut after 3 MiB and received
// with -s. It fails the test unless dst then holds a resume token.
func interruptReceive(t *testing.T, dst string, sendArgs ...string) {
	t.Helper()
	m := machineOf(dst)
	argv := append([]string{"bash", "-c", `zfs send "${@:2}" | head -c 3M | zfs receive -s -u "$1"`, "interrupt", dst}, sendArgs...)
	m.run(context.Background(), nil, argv...)
	if tok, _ := property(t, dst, "receive_resume_token"); tok == "-" || tok == "" {
		t.Fatalf("setup: %s holds no resume token after an interrupted receive", dst)
	}
}

// TestModernStalePartialReceive: partial receive state whose snapshot the
// source has since destroyed (its pruning ran) is discarded, and the run
// replicates the source's newest snapshot, exit 0: OpenZFS's `zfs send -t`
// exits 255 for such a token, which over ssh must not pass for a lost
// connection. An interrupted incremental and an interrupted full receive
// into a new filesystem, with zrep reaching both sides over ssh, and the
// incremental once with zrep running on the guest itself.
func TestModernStalePartialReceive(t *testing.T) {
	incremental := func(t *testing.T) (src, dst string) {
		sp, dp := newPoolSize(t, 256<<20), newPoolSize(t, 256<<20)
		src, dst = sp+"/p", dp+"/p"
		createBulk(t, src, "start", 1)
		snapshot(t, src, "s0")
		zrep(t, "run", remote(src), remote(dst)).mustExit(t, 0)
		writeBulk(t, src, "big", 6)
		snapshot(t, src, "big")
		interruptReceive(t, dst, "-i", src+"@s0", src+"@big")
		return src, dst
	}
	full := func(t *testing.T) (src, dst string) {
		sp, dp := newPoolSize(t, 256<<20), newPoolSize(t, 256<<20)
		src, dst = sp+"/p", dp+"/p"
		createBulk(t, src, "big", 6)
		snapshot(t, src, "big")
		interruptReceive(t, dst, src+"@big")
		return src, dst
	}
	pruneAndSnapshot := func(t *testing.T, src string) {
		zfs(t, "destroy", src+"@big")
		writeFile(t, src, "f", "after the pruning")
		snapshot(t, src, "s2")
	}
	check := func(t *testing.T, src, dst string, code int, out string) {
		t.Helper()
		if code != 0 {
			t.Fatalf("zrep exited %d, want 0:\n%s", code, out)
		}
		if tok, _ := property(t, dst, "receive_resume_token"); tok != "-" {
			t.Errorf("%s still holds partial receive state: %.40s...", dst, tok)
		}
		got := snapshots(t, dst)
		want := snapshots(t, src)
		if len(got) == 0 || got[len(got)-1] != want[len(want)-1] {
			t.Fatalf("destination %v does not end with the source's newest snapshot %v", got, want)
		}
		if got := readFile(t, dst, "f"); got != "after the pruning" {
			t.Errorf("destination holds %q", got)
		}
	}

	t.Run("incremental over ssh", func(t *testing.T) {
		src, dst := incremental(t)
		pruneAndSnapshot(t, src)
		r := zrep(t, "run", "--json", remote(src), remote(dst))
		check(t, src, dst, r.code, r.stdout+r.stderr)
		mustMatch(t, dst, snapshots(t, src))
	})
	t.Run("full over ssh", func(t *testing.T) {
		src, dst := full(t)
		pruneAndSnapshot(t, src)
		r := zrep(t, "run", "--json", remote(src), remote(dst))
		check(t, src, dst, r.code, r.stdout+r.stderr)
		mustMatch(t, dst, snapshots(t, src))
	})
	t.Run("incremental locally", func(t *testing.T) {
		src, dst := incremental(t)
		pruneAndSnapshot(t, src)
		code, out := zrepOn(t, machineOf(dst), "run", src, dst)
		check(t, src, dst, code, out)
		mustMatch(t, dst, snapshots(t, src))
	})
}

// zrepOn runs zrep on machine m itself, both sides local there, and returns
// its exit status and output.
func zrepOn(t *testing.T, m *machine, args ...string) (int, string) {
	t.Helper()
	const bin = "/tmp/zrep-e2e"
	exe, err := os.ReadFile(lab.zrep)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := m.run(context.Background(), exe, "sh", "-c", `cat >"$1" && chmod 755 "$1"`, "copy", bin); err != nil {
		t.Fatalf("copying zrep to %s: %v\n%s", m.name, err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := m.command(ctx, append([]string{"env", "ZREP_RETRY_WAIT=300ms", "ZREP_LOCK_DIR=/tmp/zrep-e2e-locks", bin}, args...)...)
	out, err := cmd.CombinedOutput()
	t.Logf("zrep %s on %s: %v\n%s", strings.Join(args, " "), m.name, err, out)
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("zrep on %s: %v", m.name, err)
	return 0, ""
}
