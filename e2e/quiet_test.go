package e2e

import (
	"strings"
	"testing"
)

// TestQuietRun: the README's cron line, run -q, prints nothing at all after
// a successful run (cron mails any output), and the Report after a failed
// one, leading with what failed. plan calls a destination that does not exist yet new, not a conflict.
func TestQuietRun(t *testing.T) {
	platformIndependent(t)
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/q", dp+"/q"
	createFS(t, src, "x")
	snapshot(t, src, "s1")

	p := zrep(t, "plan", side(src), side(dst)).mustExit(t, 0)
	if strings.Contains(p.stdout, "conflict") || !strings.Contains(p.stdout, "new: full send of the newest snapshot @s1") {
		t.Errorf("plan for a new destination:\n%s", p.stdout)
	}

	r := zrep(t, "run", "-r", "-q", "--timeout", "50m", side(src), side(dst)).mustExit(t, 0)
	if r.stdout != "" || r.stderr != "" {
		t.Errorf("a successful quiet run printed something: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	mustMatch(t, dst, snapshots(t, src))

	// The destination diverges: the next quiet run fails and says why.
	snapshot(t, dst, "local")
	snapshot(t, src, "s2")
	r = zrep(t, "run", "-r", "-q", side(src), side(dst)).mustExit(t, 1)
	if !strings.Contains(r.stdout, "PermanentError") || !strings.Contains(r.stdout, dst) {
		t.Errorf("a failed quiet run must print the Report:\n%s", r.stdout)
	}
	// The cron mail's first lines say what failed and what to do.
	lead := "FAILED: 1 of 1 filesystems\n  " + src + " → " + dst + ": "
	if first, _, _ := strings.Cut(r.stdout, "\n\n"); !strings.HasPrefix(first, lead) || !strings.Contains(first, "--rollback") {
		t.Errorf("a failed run's Report must lead with the failure and its hint:\n%s", r.stdout)
	}
}
