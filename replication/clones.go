package replication

import (
	"fmt"
	"slices"

	"github.com/zrep/zrep/pdu"
)

// Clones (SPEC 11). A source filesystem that is a clone is received as a
// clone of the same snapshot on the destination: its first stream is
// `zfs send -i ORIGIN clone@first`, sent once the origin snapshot is on the
// destination, so that the destination shares the origin's blocks as the
// source does. Where the origin cannot be there, the clone is sent in full
// as any other filesystem, and the plan says why.

// cloneOrigin is a source clone's origin as planning sees it.
type cloneOrigin struct {
	// fs is the origin's filesystem on the source, snap its snapshot
	// there (nil when it cannot be used).
	fs   string
	snap *pdu.FilesystemVersion
	// name is the origin as the source lists it, `fs@snap`.
	name string
	// reason says why the clone cannot be received as a clone; empty
	// while it may be.
	reason string
}

// originDependency is what a clone's first step waits for: the step of
// the origin's filesystem that brings the origin snapshot (guid) to the
// destination. wait is false when the snapshot is there already.
type originDependency struct {
	fs   string
	guid uint64
	wait bool
}

// findOrigins looks up the origin of every source clone whose destination
// does not exist yet (the only clones zrep receives as clones: a
// destination that exists is brought up to date incrementally, whatever its
// origin). It returns them by clone, and per origin filesystem the origin
// snapshots clones need, which that filesystem's initial send must include.
func findOrigins(cfg *Config, listed, sources []*pdu.Filesystem, receiverFS map[string]*pdu.Filesystem) (map[string]*cloneOrigin, map[string][]*pdu.FilesystemVersion) {
	origins := map[string]*cloneOrigin{}
	needed := map[string][]*pdu.FilesystemVersion{}
	var byPath map[string]*pdu.Filesystem
	for _, fs := range sources {
		if fs.Origin == "" || !newDestination(receiverFS[cfg.destination(fs.Path)]) || !slices.ContainsFunc(fs.Versions, cfg.selected) {
			continue
		}
		if byPath == nil {
			byPath = make(map[string]*pdu.Filesystem, len(listed))
			for _, l := range listed {
				byPath[l.Path] = l
			}
		}
		co := &cloneOrigin{name: fs.Origin}
		origins[fs.Path] = co
		ofs, snap, ok := pdu.SplitOrigin(fs.Origin)
		switch {
		case !ok:
			co.reason = fmt.Sprintf("its origin %q is not a snapshot name", fs.Origin)
			continue
		case !cfg.inside(ofs):
			co.reason = fmt.Sprintf("its origin %s is outside SRC %s", fs.Origin, cfg.SourceRoot)
			continue
		case byPath[ofs] == nil:
			co.reason = fmt.Sprintf("its origin's filesystem %s is not listed (the run is not recursive)", ofs)
			continue
		case !cfg.InScope(byPath[ofs]):
			co.reason = fmt.Sprintf("its origin's filesystem %s is %s", ofs, cfg.LeftOut(byPath[ofs]))
			continue
		}
		co.fs = ofs
		i := slices.IndexFunc(byPath[ofs].Versions, func(v *pdu.FilesystemVersion) bool { return v.Type == pdu.Snapshot && v.Name == snap })
		switch {
		case i < 0:
			co.reason = fmt.Sprintf("its origin %s is not among %s's snapshots", fs.Origin, ofs)
			continue
		case !cfg.selected(byPath[ofs].Versions[i]):
			co.reason = fmt.Sprintf("its origin %s is not selected by --snapshots %s", fs.Origin, cfg.Snapshots)
			continue
		}
		co.snap = byPath[ofs].Versions[i]
		if !slices.ContainsFunc(needed[ofs], func(v *pdu.FilesystemVersion) bool { return v.Guid == co.snap.Guid }) {
			needed[ofs] = append(needed[ofs], co.snap)
		}
	}
	return origins, needed
}

// newDestination reports whether a destination will be created by its
// first receive: it does not exist, or it is only the partial state of an
// interrupted first receive (no snapshot, not a placeholder), which
// planning discards.
func newDestination(d *pdu.Filesystem) bool {
	return d == nil || d.ResumeToken != "" && !d.Placeholder &&
		!slices.ContainsFunc(d.Versions, func(v *pdu.FilesystemVersion) bool { return v.Type == pdu.Snapshot })
}

// withOrigins adds to an initial path (path[0] sent in full) the origin
// snapshots clones need from this filesystem, so that the full send is of
// the oldest of them. Paths stay in creation order.
func withOrigins(path, needed []*pdu.FilesystemVersion) (merged []*pdu.FilesystemVersion, added bool) {
	merged = slices.Clone(path)
	for _, v := range needed {
		if !slices.ContainsFunc(merged, func(p *pdu.FilesystemVersion) bool { return p.Guid == v.Guid }) {
			merged = append(merged, v)
			added = true
		}
	}
	slices.SortStableFunc(merged, func(a, b *pdu.FilesystemVersion) int {
		switch {
		case a.CreateTXG < b.CreateTXG:
			return -1
		case a.CreateTXG > b.CreateTXG:
			return 1
		}
		return 0
	})
	return merged, added
}

// planClones decides, for each clone findOrigins found, whether it is
// received as a clone: its plan must be a full send into a destination that
// does not exist, its origin's filesystem must be replicated without a
// problem, and the origin snapshot must be on the destination or be brought
// there by one of that filesystem's steps. A clone that is received as one
// gets its first step's base replaced by the origin; any other keeps its
// full send and its resolution says why.
func planClones(cfg *Config, p *plan, origins map[string]*cloneOrigin, receiverFS map[string]*pdu.Filesystem) {
	if len(origins) == 0 {
		return
	}
	bySrc := make(map[string]*plannedFilesystem, len(p.filesystems))
	for _, pf := range p.filesystems {
		bySrc[pf.src] = pf
	}
	accepted := map[string]string{} // clone → origin filesystem
	for _, pf := range p.filesystems {
		co := origins[pf.src]
		if co == nil || pf.problem != nil || len(pf.steps) == 0 || pf.steps[0].from != nil || pf.dstState.exists {
			continue
		}
		dep, reason := originAvailable(cfg, co, bySrc, receiverFS)
		if reason == "" && dependsOn(co.fs, pf.src, accepted, bySrc) {
			reason = fmt.Sprintf("its origin's filesystem %s can only be received after it", co.fs)
		}
		if reason != "" {
			pf.resolution = joinNotes(pf.resolution, fmt.Sprintf("sent in full, not as a clone of %s: %s", co.name, reason))
			continue
		}
		accepted[pf.src] = co.fs
		first := pf.steps[0]
		first.from, first.fromFS, first.gapFree = co.snap, co.fs, false
		pf.origin = dep
		text := fmt.Sprintf("received as a clone of %s: incremental from the origin to %s", co.name, first.to.RelName())
		switch {
		case cfg.Initial == InitialAll && len(pf.steps) > 1:
			text += ", the oldest snapshot, then every later one (--initial all)"
		case cfg.Initial == InitialAll:
			text += " (--initial all)"
		default:
			text += " (--initial newest)"
		}
		if dep.wait {
			text += fmt.Sprintf(", after %s's step that brings %s", co.fs, co.snap.RelName())
		}
		pf.resolution = text
	}
}

// originAvailable says whether co's snapshot is on the destination or will
// be brought there by its filesystem's plan, and if not, why.
func originAvailable(cfg *Config, co *cloneOrigin, bySrc map[string]*plannedFilesystem, receiverFS map[string]*pdu.Filesystem) (*originDependency, string) {
	if co.reason != "" {
		return nil, co.reason
	}
	dep := &originDependency{fs: co.fs, guid: co.snap.Guid}
	if dst := receiverFS[cfg.destination(co.fs)]; dst != nil && slices.ContainsFunc(dst.Versions, func(v *pdu.FilesystemVersion) bool {
		return v.Type == pdu.Snapshot && v.Guid == co.snap.Guid
	}) {
		return dep, ""
	}
	opf := bySrc[co.fs]
	switch {
	case opf == nil:
		return nil, fmt.Sprintf("its origin's filesystem %s is not replicated", co.fs)
	case opf.problem != nil:
		return nil, fmt.Sprintf("its origin's filesystem %s cannot be replicated", co.fs)
	}
	if slices.ContainsFunc(opf.steps, func(s *plannedStep) bool { return s.to.Guid == co.snap.Guid }) {
		dep.wait = true
		return dep, ""
	}
	return nil, fmt.Sprintf("its origin %s is not on the destination and this run does not send it (the destination %s already has later snapshots)", co.name, opf.dst)
}

// dependsOn reports whether filesystem a cannot be received before b: b
// is a, one of a's ancestors, or something they wait for, following the
// ancestors in this run and the clones already accepted (clone → origin).
func dependsOn(a, b string, accepted map[string]string, bySrc map[string]*plannedFilesystem) bool {
	seen := map[string]bool{}
	stack := []string{a}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n == b {
			return true
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		for p := pdu.Parent(n); p != ""; p = pdu.Parent(p) {
			if bySrc[p] != nil {
				stack = append(stack, p)
			}
		}
		if o, ok := accepted[n]; ok {
			stack = append(stack, o)
		}
	}
	return false
}

func joinNotes(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
