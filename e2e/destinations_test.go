package e2e

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Several destinations of one source (SPEC section 12; README "Several
// destinations"): each its own crontab line with --snapshot --hold
// --keep-source, run one after the other and at the same moment.

// TestRunSnapshotTakesTheNextNameWhenTaken: the names of the coming
// seconds are taken on the source (as another run from it would have
// done); run --snapshot takes its set under the next free name, in one
// command, and replicates it.
func TestRunSnapshotTakesTheNextNameWhenTaken(t *testing.T) {
	platformIndependent(t)
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/next", dp+"/next"
	createFS(t, src, "x")
	createFS(t, src+"/kid", "k")
	now := time.Now().UTC()
	var taken []string
	for i := range 3 {
		taken = append(taken, "zrep_"+now.Add(time.Duration(i)*time.Second).Format("20060102T150405Z"))
	}
	history(t, src+"/kid", taken...)

	r := zrepUTC(t, "run", "-r", "--json", "--snapshot", side(src), side(dst)).mustExit(t, 0)
	rep := r.report(t)
	if rep.Snapshot == nil || slices.Contains(taken, *rep.Snapshot) || *rep.Snapshot <= taken[0] {
		t.Fatalf("run --snapshot took %v; taken were %v", rep.Snapshot, taken)
	}
	if n := countSub(r, "snapshot"); n != 1 {
		t.Errorf("%d zfs snapshot commands, want one for the set", n)
	}
	for _, fs := range []string{src, src + "/kid"} {
		names := snapshotNames(t, fs)
		if names[len(names)-1] != *rep.Snapshot {
			t.Errorf("%s: newest snapshot of %v is not the set %s", fs, names, *rep.Snapshot)
		}
		d := dst + strings.TrimPrefix(fs, src)
		if got, want := lastOf(snapshots(t, d)), lastOf(snapshots(t, fs)); got != want {
			t.Errorf("%s has %s, the source %s", d, got, want)
		}
	}
}

func lastOf(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// TestTwoDestinationsAlternatelyAndAtOnce: a local and an offsite
// destination, each with its own line `run -r --snapshot --hold
// --keep-source last=1 --keep-dest last=2`, run one after the other and
// then started at the same moment: every run exits 0 and, after its first,
// sends incrementally; each run holds its set before sending it (so that
// the other run cannot prune it meanwhile); each destination's newest
// snapshot has the source's guid, and the source keeps each destination's
// base, held.
func TestTwoDestinationsAlternatelyAndAtOnce(t *testing.T) {
	platformIndependent(t)
	sp, lp, op := newPool(t), newPool(t), newPool(t)
	src := sp + "/two"
	dests := []string{lp + "/local", op + "/offsite"}
	createFS(t, src, "x")
	createFS(t, src+"/kid", "k")
	t.Cleanup(func() { releaseAll(t, src) })
	line := func(dst string) []string {
		return []string{"run", "-r", "--json", "--snapshot", "--hold", "--keep-source", "last=1", "--keep-dest", "last=2", side(src), side(dst)}
	}
	check := func(round int, results []result) {
		t.Helper()
		var sets []string
		for i, r := range results {
			rep := r.mustExit(t, 0).report(t)
			if rep.Snapshot == nil {
				t.Fatalf("round %d: the run to %s names no snapshot", round, dests[i])
			}
			sets = append(sets, *rep.Snapshot)
			if !heldBeforeSent(r, *rep.Snapshot) {
				t.Errorf("round %d: the run to %s did not hold its set %s before sending it", round, dests[i], *rep.Snapshot)
			}
			for _, fs := range []string{src, src + "/kid"} {
				f := rep.filesystem(t, fs)
				if round > 0 && (len(f.Steps) == 0 || slices.ContainsFunc(f.Steps, func(s stepReport) bool { return s.From == nil })) {
					t.Errorf("round %d, %s to %s: steps %v, want incremental ones", round, fs, dests[i], f.Steps)
				}
			}
		}
		if sets[0] == sets[1] {
			t.Errorf("round %d: both runs took %s", round, sets[0])
		}
		for i, dst := range dests {
			for _, fs := range []string{src, src + "/kid"} {
				d := dst + strings.TrimPrefix(fs, src)
				base := lastOf(snapshots(t, d))
				name, _, _ := strings.Cut(base, "=")
				// Its run's set, or, when the two started at once, the
				// other run's later set, which this run's planning saw
				// already and sent along.
				if name != sets[i] && !(round >= 2 && name == sets[1-i] && sets[1-i] > sets[i]) {
					t.Errorf("round %d: %s's newest is %s, want its run's set %s", round, d, base, sets[i])
				}
				if !slices.Contains(snapshots(t, fs), base) {
					t.Errorf("round %d: the source lost %s@%s, the base of %s (it has %v)", round, fs, base, d, snapshots(t, fs))
					continue
				}
				if refs, _ := property(t, fs+"@"+name, "userrefs"); refs == "0" {
					t.Errorf("round %d: %s@%s, the base of %s, is not held", round, fs, name, d)
				}
			}
		}
	}

	round := 0
	for ; round < 2; round++ {
		// One after the other, as a script running both lines does: the
		// second often starts in the second the first took its set in.
		check(round, []result{zrepUTC(t, line(dests[0])...), zrepUTC(t, line(dests[1])...)})
	}
	for ; round < 4; round++ {
		// At the same moment, as two crontab lines of the same minute.
		results := make([]result, len(dests))
		var wg sync.WaitGroup
		// Both start together just after a second begins, so that both
		// runs want that second's name.
		start := time.Now().Truncate(time.Second).Add(time.Second)
		for i, dst := range dests {
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(time.Until(start))
				results[i] = zrepUTC(t, line(dst)...)
			}()
		}
		wg.Wait()
		check(round, results)
	}
	if t.Failed() {
		for _, fs := range []string{src, src + "/kid"} {
			t.Logf("%s: %v; userrefs %s", fs, snapshots(t, fs), strconv.Quote(zfs(t, "get", "-H", "-r", "-o", "name,value", "userrefs", fs)))
		}
	}
}

// heldBeforeSent says whether the run put a hold on set before its first
// zfs send: until then, another destination's run could prune it.
func heldBeforeSent(r result, set string) bool {
	for _, c := range r.argv {
		if c.Role != "source" || len(c.Argv) < 2 {
			continue
		}
		last := c.Argv[len(c.Argv)-1]
		switch c.Argv[1] {
		case "hold":
			if strings.HasSuffix(last, "@"+set) {
				return true
			}
		case "send":
			if !slices.ContainsFunc(c.Argv[2:], func(a string) bool {
				return strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && strings.Contains(a, "n")
			}) {
				return false
			}
		}
	}
	return false
}
