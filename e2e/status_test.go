package e2e

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

// checkLine is a monitoring plugin's output: one line, state, summary,
// perfdata.
var checkLine = regexp.MustCompile(`^ZREP (OK|WARNING|CRITICAL|UNKNOWN) - [^|\n]+( \| [^|\n]+)?\n$`)

func mustCheck(t *testing.T, r result, code int, state, says string) {
	t.Helper()
	r.mustExit(t, code)
	if !checkLine.MatchString(r.stdout) || !strings.HasPrefix(r.stdout, "ZREP "+state+" - ") || !strings.Contains(r.stdout, says) {
		t.Errorf("check line %q: want one line, %s, saying %q", r.stdout, state, says)
	}
}

// zrepName is a snapshot name in zrep's form, taken at t.
func zrepName(at time.Time) string {
	return "zrep_" + at.UTC().Format("20060102T150405Z")
}

// TestStatusCheck: zrep status as a Nagios/Icinga check on real ZFS: a
// fresh destination is OK, one whose newest snapshot is older than
// --warn-age WARNING, older than --max-age CRITICAL, a missing one CRITICAL,
// an unreachable host UNKNOWN; the same listing as a table and as JSON.
// A snapshot's age comes from the time in its zrep-form name (SPEC 8), so
// old snapshots need no waiting.
func TestStatusCheck(t *testing.T) {
	platformIndependent(t)
	dp := newPool(t)
	root := dp + "/backup"
	createFS(t, root+"/a", "a")
	createFS(t, root+"/b", "b")
	now := time.Now()
	snapshot(t, root, zrepName(now.Add(-5*time.Minute)))
	snapshot(t, root+"/a", zrepName(now.Add(-10*time.Minute)))
	snapshot(t, root+"/b", zrepName(now.Add(-20*time.Minute)))
	ds := side(root)

	r := zrep(t, "status", "-r", "--max-age", "2h", "--warn-age", "1h", ds)
	mustCheck(t, r, 0, "OK", "3 filesystems, newest snapshots at most 20m")
	// b's snapshot is 20 minutes old by its name, and some seconds more by now.
	if !regexp.MustCompile(`\| oldest_age=12\d\ds;3600;7200;0 filesystems=3 critical=0 warning=0\n$`).MatchString(r.stdout) {
		t.Errorf("perfdata: %q", r.stdout)
	}
	mustCheck(t, zrep(t, "status", "--max-age", "2h", side(root+"/a")), 0, "OK", "1 filesystem, newest snapshots at most 10m")

	// b's newest snapshot is 90 minutes old by its name.
	snapshot(t, root+"/b", zrepName(now.Add(-90*time.Minute)))
	mustCheck(t, zrep(t, "status", "--max-age", "2h", "--warn-age", "1h", side(root+"/b")), 1, "WARNING", "is 1h30m old, more than 1h0m")
	snapshot(t, root+"/b", zrepName(now.Add(-50*time.Hour)))
	mustCheck(t, zrep(t, "status", "--max-age", "2h", "--warn-age", "1h", side(root+"/b")), 2, "CRITICAL", "is 2d2h old, more than 2h0m")

	mustCheck(t, zrep(t, "status", "--max-age", "2h", side(dp+"/nothere")), 2, "CRITICAL", dp+"/nothere does not exist")
	createFS(t, root+"/c", "c")
	mustCheck(t, zrep(t, "status", "-r", "--max-age", "2h", side(root)), 2, "CRITICAL", root+"/c: no snapshot")
	mustCheck(t, zrep(t, "status", "--max-age", "2h", "--ssh-port", "1", remote(root+"/a")), 3, "UNKNOWN", "list "+remote(root+"/a"))
	mustCheck(t, zrep(t, "status", "--max-age", "2h", "--warn-age", "3h", side(root+"/a")), 3, "UNKNOWN", "usage: --warn-age 3h0m0s must not be longer")

	// The listing, as a table and as JSON, over ssh as well.
	for _, d := range []string{side(root), remote(root)} {
		tab := zrep(t, "status", "-r", d).mustExit(t, 0)
		for _, want := range []string{"FILESYSTEM", root + "/a  ", "@" + zrepName(now.Add(-10*time.Minute)), root + "/b  ", "@" + zrepName(now.Add(-50*time.Hour)), "no snapshot"} {
			if !strings.Contains(tab.stdout, want) {
				t.Errorf("status -r %s lacks %q:\n%s", d, want, tab.stdout)
			}
		}
	}
	js := zrep(t, "status", "-r", "--json", side(root)).mustExit(t, 0)
	var rep struct {
		Exists      bool `json:"exists"`
		Filesystems []struct {
			Filesystem     string   `json:"filesystem"`
			NewestSnapshot *string  `json:"newest_snapshot"`
			AgeSeconds     *float64 `json:"age_seconds"`
			Placeholder    bool     `json:"placeholder"`
			PartialReceive bool     `json:"partial_receive"`
		} `json:"filesystems"`
	}
	if err := json.Unmarshal([]byte(js.stdout), &rep); err != nil || !rep.Exists || len(rep.Filesystems) != 4 {
		t.Fatalf("status --json: %v\n%s", err, js.stdout)
	}
	b := rep.Filesystems[2]
	if b.Filesystem != root+"/b" || b.NewestSnapshot == nil || *b.NewestSnapshot != zrepName(now.Add(-50*time.Hour)) ||
		*b.AgeSeconds < 50*3600 || *b.AgeSeconds > 50*3600+600 {
		t.Errorf("status --json of %s: %+v", root+"/b", b)
	}
	zrep(t, "status", dp+"/nothere").mustExit(t, 1)
}

// TestStatusPlaceholder: a placeholder zrep made for children has no
// snapshot by design and does not make the check fail.
func TestStatusPlaceholder(t *testing.T) {
	platformIndependent(t)
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/p", dp+"/p"
	createFS(t, src+"/child", "c")
	snapshot(t, src+"/child", zrepName(time.Now()))
	zrep(t, "run", "-r", side(src), side(dst)).mustExit(t, 0)
	r := zrep(t, "status", "-r", "--max-age", "1h", side(dst))
	mustCheck(t, r, 0, "OK", "2 filesystems")
	tab := zrep(t, "status", "-r", side(dst)).mustExit(t, 0)
	if !strings.Contains(tab.stdout, "placeholder") {
		t.Errorf("status does not show %s as a placeholder:\n%s", dst, tab.stdout)
	}
}

// TestStatusPartialReceive: an interrupted resumable receive leaves partial
// state, which the check calls CRITICAL. Resumable receives are OpenZFS's.
func TestStatusPartialReceive(t *testing.T) {
	sp, dp := newPool(t), newPool(t)
	if machineOf(dp).platform != "openzfs" {
		t.Skip("partial receive state needs resumable receives (zfs receive -s): OpenZFS only")
	}
	src, dst := sp+"/big", dp+"/big"
	createBulk(t, src, "start", 1)
	snapshot(t, src, "s0")
	zrep(t, "run", side(src), side(dst)).mustExit(t, 0)
	writeBulk(t, src, "more", 8)
	snapshot(t, src, "s1")
	// Half a stream: the receive fails and keeps what it got.
	machineOf(dst).script(t, `zfs send -i "$1@s0" "$1@s1" | head -c 4000000 | zfs receive -s "$2" || true
[ "$(zfs get -H -o value receive_resume_token "$2")" != - ]`, src, dst)
	mustCheck(t, zrep(t, "status", "--max-age", "1h", side(dst)), 2, "CRITICAL", "partial receive state")
	js := zrep(t, "status", "--json", side(dst)).mustExit(t, 0)
	if !strings.Contains(js.stdout, `"partial_receive": true`) {
		t.Errorf("status --json does not show the partial state:\n%s", js.stdout)
	}
}
