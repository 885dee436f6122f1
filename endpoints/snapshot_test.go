package endpoints

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/zrep/zrep/pdu"
)

func TestSnapshotArgvs(t *testing.T) {
	fuse := Capabilities{}
	tests := []struct {
		name   string
		req    pdu.SnapshotReq
		caps   Capabilities
		want   [][]string
		atomic bool
	}{
		{"whole tree", pdu.SnapshotReq{Filesystems: []string{"tank/a b", "tank/a b/c"}, Recursive: true, Name: "zrep_20261130T104500Z"}, fuse,
			[][]string{{"zfs", "snapshot", "-r", "tank/a b@zrep_20261130T104500Z"}}, true},
		{"several names on OpenZFS", pdu.SnapshotReq{Filesystems: []string{"tank/a", "tank/a/c"}, Name: "s"}, openZFS2,
			[][]string{{"zfs", "snapshot", "tank/a@s", "tank/a/c@s"}}, true},
		{"one name on zfs-fuse", pdu.SnapshotReq{Filesystems: []string{"tank/a"}, Name: "s"}, fuse,
			[][]string{{"zfs", "snapshot", "tank/a@s"}}, true},
		{"several names on zfs-fuse: one by one", pdu.SnapshotReq{Filesystems: []string{"tank/a", "tank/a/c"}, Name: "s"}, fuse,
			[][]string{{"zfs", "snapshot", "tank/a@s"}, {"zfs", "snapshot", "tank/a/c@s"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, atomic, err := snapshotArgvs(&tt.req, tt.caps)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got, tt.want, slices.Equal) || atomic != tt.atomic {
				t.Errorf("got %q atomic %v, want %q atomic %v", got, atomic, tt.want, tt.atomic)
			}
		})
	}
	for _, bad := range []pdu.SnapshotReq{
		{Filesystems: []string{"tank"}, Name: "a;b"},
		{Filesystems: []string{"tank"}, Name: ""},
		{Filesystems: []string{"-tank"}, Name: "s"},
		{Filesystems: []string{"tank@x"}, Name: "s"},
		{Name: "s"},
	} {
		if argvs, _, err := snapshotArgvs(&bad, openZFS2); err == nil {
			t.Errorf("snapshotArgvs(%+v) = %q, want an error", bad, argvs)
		}
	}
}

func TestDestroyListArgvs(t *testing.T) {
	argvs, groups, err := destroyListArgvs("tank/a b", []*pdu.FilesystemVersion{snap("s1"), snap("s 2"), snap("s3")})
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]string{{"zfs", "destroy", "tank/a b@s1,s 2,s3"}}; !slices.EqualFunc(argvs, want, slices.Equal) || len(groups[0]) != 3 {
		t.Errorf("got %q, want %q", argvs, want)
	}
	var many []*pdu.FilesystemVersion
	for i := 0; i < destroyBatch+1; i++ {
		many = append(many, snap("s"))
	}
	if argvs, groups, _ := destroyListArgvs("tank", many); len(argvs) != 2 || len(groups[0]) != destroyBatch || len(groups[1]) != 1 {
		t.Errorf("%d snapshots in %d commands", len(many), len(argvs))
	}
	for _, bad := range [][]*pdu.FilesystemVersion{{snap("a,b")}, {snap("a%b")}, {bookmark("b")}} {
		if argvs, _, err := destroyListArgvs("tank", bad); err == nil {
			t.Errorf("destroyListArgvs(%v) = %q, want an error", bad[0], argvs)
		}
	}
}

func TestHoldArgvs(t *testing.T) {
	if got, err := holdArgv("tank/a", snap("s1"), "zrep_0123"); err != nil || !slices.Equal(got, []string{"zfs", "hold", "zrep_0123", "tank/a@s1"}) {
		t.Errorf("hold: %q %v", got, err)
	}
	if got, err := releaseArgv("tank/a", []*pdu.FilesystemVersion{snap("s1"), snap("s2")}, "zrep_0123"); err != nil ||
		!slices.Equal(got, []string{"zfs", "release", "zrep_0123", "tank/a@s1", "tank/a@s2"}) {
		t.Errorf("release: %q %v", got, err)
	}
	if got, err := holdsArgv("tank/a", []*pdu.FilesystemVersion{snap("s1")}); err != nil || !slices.Equal(got, []string{"zfs", "holds", "-H", "tank/a@s1"}) {
		t.Errorf("holds: %q %v", got, err)
	}
	for _, tag := range []string{"", "-r", "a\nb", "a,b"} {
		if _, err := holdArgv("tank/a", snap("s1"), tag); err == nil {
			t.Errorf("tag %q accepted", tag)
		}
	}
	if _, err := holdArgv("tank/a", bookmark("b"), "t"); err == nil {
		t.Error("a bookmark was held")
	}
}

func TestParseHolds(t *testing.T) {
	out, err := os.ReadFile("../testdata/zfs/openzfs-2.3.2/holds.out")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{"tank/cap@s1": true, "tank/cap@s2": true}
	holds, err := parseHolds(string(out), names)
	if err != nil {
		t.Fatal(err)
	}
	if got := holds["tank/cap@s1"]; !slices.Equal(got, []string{"zrep"}) {
		t.Errorf("holds %v", holds)
	}
	// Another tool's tag is free text: one that holds a tab or a newline,
	// forging a hold of zrep's, is refused whole, never read.
	for _, bad := range []string{
		"no tabs here\n",
		"tank/cap@s1\tx\ttank/cap@s2\tzrep\tWed Nov 25 16:58 2026\n",
		"tank/cap@s1\tx\ny\tWed Nov 25 16:58 2026\n",
		"tank/cap@s1\tx\ntank/cap@s2\tzrep\tWed Nov 25 16:58 2026\n",
		"tank/other@s1\tzrep\tWed Nov 25 16:58 2026\n",
		"tank/cap@s1\tzrep\tWed Nov 25 16:58 2026",
	} {
		if h, err := parseHolds(bad, names); err == nil {
			t.Errorf("parseHolds(%q) = %v, want an error", bad, h)
		}
	}
}

func TestParseGetUserRefs(t *testing.T) {
	in := strings.Join([]string{
		"pool/a\ttype\tfilesystem\t-",
		"pool/a\tuserrefs\t-\t-",
		"pool/a@s1\ttype\tsnapshot\t-",
		"pool/a@s1\tguid\t11\t-",
		"pool/a@s1\tcreatetxg\t5\t-",
		"pool/a@s1\tuserrefs\t2\t-",
		"pool/a@s2\ttype\tsnapshot\t-",
		"pool/a@s2\tguid\t12\t-",
		"pool/a@s2\tcreatetxg\t6\t-",
		"pool/a@s2\tuserrefs\t0\t-",
	}, "\n") + "\n"
	fss, err := ParseGet(strings.NewReader(in), "pool/a")
	if err != nil {
		t.Fatal(err)
	}
	if v := fss[0].Versions; len(v) != 2 || v[0].UserRefs != 2 || v[1].UserRefs != 0 {
		t.Errorf("versions %+v %+v", v[0], v[1])
	}
}
