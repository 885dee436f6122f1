package replication

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/zrep/zrep/pdu"
)

// DefaultSnapshotPrefix starts the names of the snapshots zrep takes.
const DefaultSnapshotPrefix = "zrep_"

// snapshotTimeLayout is the UTC time in a snapshot name zrep takes:
// `zrep_20261130T104500Z`.
const snapshotTimeLayout = "20060102T150405Z"

// SnapshotName is the name of a snapshot taken at t: prefix and t in UTC,
// to the second.
func SnapshotName(prefix string, t time.Time) string {
	return prefix + t.UTC().Format(snapshotTimeLayout)
}

// SnapshotTime is when snapshot v was taken: the time in its name when the
// name is prefix followed by zrep's time form (SnapshotName), else its
// creation property. An empty prefix stands for any prefix: retention
// reads the time of every name that ends in zrep's form, whoever took it.
// A name is what an operator sees and what a replica keeps, so it wins
// over creation, which a receive sets anew on some platforms.
func SnapshotTime(v *pdu.FilesystemVersion, prefix string) time.Time {
	rest, ok := strings.CutPrefix(v.Name, prefix)
	if prefix == "" && len(rest) >= len(snapshotTimeLayout) {
		rest = rest[len(rest)-len(snapshotTimeLayout):]
	}
	if ok && len(rest) == len(snapshotTimeLayout) {
		if t, err := time.Parse(snapshotTimeLayout, rest); err == nil {
			return t
		}
	}
	return v.CreatedAt()
}

// SnapshotTaker is a side that can take snapshot sets.
type SnapshotTaker interface {
	Endpoint
	// TakeSnapshots takes req.Name on every filesystem of req, in one
	// command where the platform allows (then Atomic is true). An error
	// means nothing was taken when the set is atomic; otherwise the
	// filesystems before the failing one keep their snapshot, and the
	// error names the one that failed.
	TakeSnapshots(ctx context.Context, req *pdu.SnapshotReq) (*pdu.SnapshotRes, error)
}

// Holder is a side that keeps user holds on snapshots.
type Holder interface {
	// Hold puts the user hold tag on snapshot snap of fs; a hold with
	// that tag already there is not an error.
	Hold(ctx context.Context, fs string, snap *pdu.FilesystemVersion, tag string) error
	// Release removes the hold tag from those of snaps (snapshots of fs)
	// that have it, and returns them. A snapshot without that tag is left
	// alone and is not an error.
	Release(ctx context.Context, fs string, snaps []*pdu.FilesystemVersion, tag string) ([]*pdu.FilesystemVersion, error)
}

// HoldTag is the user hold zrep keeps on the newest replicated snapshot of
// each source filesystem for the destination identified by id (Config.CursorID).
func HoldTag(id string) string { return "zrep_" + id }

// SnapshotConfig says which filesystems a snapshot set covers and how it
// is named.
type SnapshotConfig struct {
	// Recursive covers the listed root's descendants (the side lists them).
	Recursive bool
	// Exclude leaves out the filesystems whose full name matches any.
	Exclude []*regexp.Regexp
	// Prefix starts the name; the UTC time of Now follows it.
	Prefix string
	// Now is the time in the name.
	Now time.Time
	// LaterNames, when positive, lets a set whose name is taken already
	// (another run from the same source in the same second) take the
	// next name instead, a second later each time, up to LaterNames
	// seconds after Now; zero makes a taken name an error.
	LaterNames int
	// Clock waits for the time of a later name; nil is the real clock.
	Clock Clock
}

// SnapshotSet is a snapshot set, taken or planned.
type SnapshotSet struct {
	// Name is the snapshot name, after '@'.
	Name string
	// Filesystems are the filesystems it covers, parents first.
	Filesystems []string
	// Atomic says one command took the whole set.
	Atomic bool

	// tree says the set is a whole tree: `zfs snapshot -r` takes it.
	tree bool
}

// NameCollisionError says a snapshot set's name is taken already on a
// filesystem of the set.
type NameCollisionError struct {
	Snapshot string
}

func (e *NameCollisionError) Error() string {
	return fmt.Sprintf("snapshot %s already exists; nothing was taken (run again a second later, or choose another --prefix)", e.Snapshot)
}

// PlanSnapshot lists side and returns the snapshot set cfg would take,
// without taking it: the filesystems it covers and its name. A name that
// is taken already on one of them is a *NameCollisionError, unless
// cfg.LaterNames lets it pick the first free name of the following
// seconds; then the set's name may lie in the future, and TakeSnapshot
// waits for its time.
func PlanSnapshot(ctx context.Context, side Endpoint, cfg SnapshotConfig) (*SnapshotSet, error) {
	if err := CheckSnapshotPrefix(cfg.Prefix); err != nil {
		return nil, pdu.PermanentError(err)
	}
	fss, err := side.ListFilesystems(ctx)
	if err != nil {
		return nil, err
	}
	set := &SnapshotSet{tree: cfg.Recursive}
	taken := map[string]string{}
	// The side lists its root first and only what is under it.
	var scope Config
	if len(fss) > 0 {
		scope = Config{SourceRoot: fss[0].Path, Exclude: cfg.Exclude}
	}
	for _, fs := range fss {
		if !scope.InScope(fs) {
			set.tree = false
			continue
		}
		for _, v := range fs.Versions {
			if _, seen := taken[v.Name]; v.Type == pdu.Snapshot && !seen {
				taken[v.Name] = fs.Path + "@" + v.Name
			}
		}
		set.Filesystems = append(set.Filesystems, fs.Path)
	}
	if len(set.Filesystems) == 0 {
		return nil, pdu.PermanentError(fmt.Errorf("no filesystem to snapshot: every one is excluded"))
	}
	first := SnapshotName(cfg.Prefix, cfg.Now)
	for i := 0; i <= max(cfg.LaterNames, 0); i++ {
		set.Name = SnapshotName(cfg.Prefix, cfg.Now.Add(time.Duration(i)*time.Second))
		if _, ok := taken[set.Name]; !ok {
			return set, nil
		}
	}
	return nil, pdu.PermanentError(&NameCollisionError{Snapshot: taken[first]})
}

// TakeSnapshot takes the snapshot set cfg describes on side: with `zfs
// snapshot -r` when the set is a whole tree, else in one command naming
// every filesystem where the platform allows, else one by one. With
// cfg.LaterNames, a name taken meanwhile (by a run that listed before it
// and took it first) makes it plan again a second later.
func TakeSnapshot(ctx context.Context, side SnapshotTaker, cfg SnapshotConfig) (*SnapshotSet, error) {
	clock := cfg.Clock
	if clock == nil {
		clock = realClock{}
	}
	// The last name allowed: every try moves on at least a second.
	last := cfg.Now.Truncate(time.Second).Add(time.Duration(max(cfg.LaterNames, 0)) * time.Second)
	for {
		set, err := PlanSnapshot(ctx, side, cfg)
		if err != nil {
			return nil, err
		}
		at, _ := SnapshotNameTime(cfg.Prefix, set.Name)
		if err := waitUntil(ctx, clock, at); err != nil {
			return nil, err
		}
		// -r takes every descendant: only when none is excluded.
		res, err := side.TakeSnapshots(ctx, &pdu.SnapshotReq{Filesystems: set.Filesystems, Recursive: set.tree, Name: set.Name})
		if err == nil {
			set.Atomic = res.Atomic
			return set, nil
		}
		next := at.Add(time.Second)
		if !errors.Is(err, pdu.ErrSnapshotExists) || cfg.LaterNames <= 0 || next.After(last) {
			return nil, fmt.Errorf("snapshot %s@%s: %w", set.Filesystems[0], set.Name, err)
		}
		cfg.Now, cfg.LaterNames = next, int(last.Sub(next)/time.Second)
	}
}

// HoldSet puts the user hold tag on every snapshot of set, right after it
// was taken: the run that took it has not replicated it yet, and another
// run from the same source (another destination's) must not prune it
// meanwhile. Pruning after the replication moves the hold on as usual.
func HoldSet(ctx context.Context, side Holder, set *SnapshotSet, tag string) error {
	var errs []error
	for _, fs := range set.Filesystems {
		if err := side.Hold(ctx, fs, &pdu.FilesystemVersion{Name: set.Name, Type: pdu.Snapshot}, tag); err != nil {
			if ctx.Err() != nil {
				return err
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ReleaseUnreplicatedSet takes the hold tag that HoldSet put on the set
// off the filesystems that rep does not show completed: there the hold
// only guarded the set while the run was sending it, and left behind it
// would keep the set from a later rollback (a failback) or from pruning.
// On completed filesystems pruning has moved the hold already.
func ReleaseUnreplicatedSet(ctx context.Context, side Holder, set *SnapshotSet, tag string, rep *Report) error {
	done := map[string]bool{}
	for _, f := range rep.Completed {
		if f.Status == FilesystemCompleted.String() {
			done[f.Filesystem] = true
		}
	}
	var errs []error
	for _, fs := range set.Filesystems {
		if done[fs] {
			continue
		}
		if _, err := side.Release(ctx, fs, []*pdu.FilesystemVersion{{Name: set.Name, Type: pdu.Snapshot}}, tag); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// SnapshotNameTime is the time in name, a name SnapshotName made with
// prefix.
func SnapshotNameTime(prefix, name string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(snapshotTimeLayout, rest)
	return t, err == nil
}

// waitUntil waits on clock until t has come, or ctx is done.
func waitUntil(ctx context.Context, clock Clock, t time.Time) error {
	d := t.Sub(clock.Now())
	if d <= 0 {
		return nil
	}
	timer := clock.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C():
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// CheckSnapshotPrefix checks that prefix can start a snapshot name: not
// empty, and only the characters ZFS allows in names (letters, digits,
// _-.: and space), not starting with '-'.
func CheckSnapshotPrefix(prefix string) error {
	if prefix == "" {
		return fmt.Errorf("empty snapshot prefix")
	}
	if strings.HasPrefix(prefix, "-") {
		return fmt.Errorf("snapshot prefix %q starts with '-'", prefix)
	}
	for _, r := range prefix {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-.: ", r)) {
			return fmt.Errorf("snapshot prefix %q contains %q; ZFS names allow letters, digits, space and _-.:", prefix, r)
		}
	}
	return nil
}

func matchesAny(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}
