package e2e

import (
	"encoding/json"
	"strings"
	"testing"
)

// A source filesystem whose zrep:sync is off, set there or inherited, is
// left out like --exclude; a descendant that sets it on is replicated.
func TestSyncPropertyLeavesOut(t *testing.T) {
	pool := newPool(t)
	src, dst := pool+"/src", pool+"/dst"
	for _, fs := range []string{src, src + "/a", src + "/a/b", src + "/a/c", src + "/d"} {
		createFS(t, fs, "data of "+fs)
	}
	zfs(t, "set", "zrep:sync=off", src+"/a")
	zfs(t, "set", "zrep:sync=on", src+"/a/c")
	zfs(t, "snapshot", "-r", src+"@s1")

	r := zrep(t, "plan", "-r", "--json", side(src), side(dst)).mustExit(t, 0)
	var plan struct {
		Filesystems []struct {
			Filesystem string `json:"filesystem"`
		} `json:"filesystems"`
		LeftOut []struct {
			Filesystem string `json:"filesystem"`
			Reason     string `json:"reason"`
		} `json:"left_out"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil {
		t.Fatalf("plan --json: %v", err)
	}
	var planned, left []string
	for _, f := range plan.Filesystems {
		planned = append(planned, f.Filesystem)
	}
	for _, l := range plan.LeftOut {
		left = append(left, l.Filesystem)
		if !strings.Contains(l.Reason, "zrep:sync") {
			t.Errorf("plan leaves %s out for %q: want zrep:sync named", l.Filesystem, l.Reason)
		}
	}
	if want := []string{src, src + "/a/c", src + "/d"}; !equalLists(planned, want) {
		t.Errorf("planned %v, want %v", planned, want)
	}
	if want := []string{src + "/a", src + "/a/b"}; !equalLists(left, want) {
		t.Errorf("left out %v, want %v", left, want)
	}

	zrep(t, "run", "-r", side(src), side(dst)).mustExit(t, 0)
	for _, fs := range []string{"", "/a/c", "/d"} {
		mustMatch(t, dst+fs, snapshots(t, src+fs))
	}
	if v, s := property(t, dst+"/a", "zrep:placeholder"); v != "on" || s != "local" {
		t.Errorf("%s/a is not a placeholder (zrep:placeholder %s, %s)", dst, v, s)
	}
	if exists(t, dst+"/a/b") {
		t.Errorf("%s/a/b was replicated although it inherits zrep:sync=off", dst)
	}
}
