package replication

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/zrep/zrep/pdu"
)

func TestDescendantsWithSnapshotsMatchesScan(t *testing.T) {
	selected := func(v *pdu.FilesystemVersion) bool { return v.Name == "s" }
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 300; round++ {
		paths := []string{"p"}
		for len(paths) < 2+rng.IntN(40) {
			parent := paths[rng.IntN(len(paths))]
			sep := "/"
			if rng.IntN(5) == 0 {
				sep = " " // a sibling sharing the prefix, not a child
			}
			paths = append(paths, fmt.Sprintf("%s%s%c", parent, sep, 'a'+rng.IntN(4)))
		}
		slices.Sort(paths)
		paths = slices.Compact(paths)
		var sources []*pdu.Filesystem
		for _, p := range paths {
			fs := &pdu.Filesystem{Path: p}
			if rng.IntN(4) == 0 {
				fs.Versions = []*pdu.FilesystemVersion{{Name: "s"}}
			} else if rng.IntN(2) == 0 {
				fs.Versions = []*pdu.FilesystemVersion{{Name: "other"}}
			}
			sources = append(sources, fs)
		}
		slices.SortStableFunc(sources, func(a, b *pdu.Filesystem) int { return pdu.CompareDatasets(a.Path, b.Path) })
		got := descendantsWithSnapshots(sources, selected)
		for i, fs := range sources {
			want := false
			for _, d := range sources[i+1:] {
				if !strings.HasPrefix(d.Path, fs.Path+"/") {
					break
				}
				if slices.ContainsFunc(d.Versions, selected) {
					want = true
					break
				}
			}
			if got[i] != want {
				t.Fatalf("%v: %s: got %v, want %v", paths, fs.Path, got[i], want)
			}
		}
	}
}

func TestCompareDatasetsMatchesSplit(t *testing.T) {
	names := []string{"", "a", "a/", "a/b", "a b", "a/b/c", "a/b-c", "a//b", "/a", "b", "a/c"}
	for _, a := range names {
		for _, b := range names {
			want := slices.Compare(strings.Split(a, "/"), strings.Split(b, "/"))
			if got := pdu.CompareDatasets(a, b); got != want {
				t.Errorf("CompareDatasets(%q, %q) = %d, want %d", a, b, got, want)
			}
		}
	}
}

func TestDependsOn(t *testing.T) {
	inRun := map[string]*plannedFilesystem{"p": {}, "p/c": {}, "p/x": {}, "p/x/t": {}, "p/y": {}}
	accepted := map[string]string{"p/y": "p/x/t"}
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"p/x/t", "p/x", true},  // an ancestor
		{"p/x/t", "p/c", false}, // a sibling's subtree
		{"p/y", "p/x", true},    // through an accepted clone's origin
		{"p/c", "p/y", false},
		{"p/x/t", "p/x/t", true},
	} {
		if got := dependsOn(c.a, c.b, accepted, inRun); got != c.want {
			t.Errorf("dependsOn(%s, %s) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}
