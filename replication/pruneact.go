package replication

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/zrep/zrep/pdu"
)

// Pruning, the part that acts: it lists both sides, asks DecidePrune
// (prunedecide.go) per filesystem pair, destroys what it decided, moves
// the hold forward and reports what it did.

// PrunedSnapshots names snapshots of one filesystem pair, by side.
type PrunedSnapshots struct {
	Source      []string `json:"source"`
	Destination []string `json:"destination"`
}

// MarshalJSON writes both lists, empty ones as [], never null.
func (p PrunedSnapshots) MarshalJSON() ([]byte, error) {
	type plain PrunedSnapshots
	return json.Marshal(plain(p.clone()))
}

func (p PrunedSnapshots) clone() PrunedSnapshots {
	return PrunedSnapshots{Source: append([]string{}, p.Source...), Destination: append([]string{}, p.Destination...)}
}

func versionNames(vs []*pdu.FilesystemVersion) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, v.Name)
	}
	return out
}

// PruneOptions is what pruning does after (or without) a replication.
type PruneOptions struct {
	// Retention is what to keep; nil or without policies destroys nothing.
	Retention *Retention
	// Hold keeps the user hold HoldTag(Config.CursorID) on the newest
	// snapshot of each source filesystem that the destination has, and
	// releases it from the older ones. The source must be a Holder.
	Hold bool
}

func (o PruneOptions) enabled() bool { return o.Retention.Enabled() || o.Hold }

// pruneOutcome is what pruning did to one filesystem pair.
type pruneOutcome struct {
	pruned, held PrunedSnapshots
	err          error
}

// pruner prunes filesystem pairs of one Config from fresh listings.
type pruner struct {
	cfg              *Config
	opts             PruneOptions
	sender, receiver Endpoint
	log              *slog.Logger
	src, dst         map[string]*pdu.Filesystem
}

func newPruner(ctx context.Context, cfg *Config, opts PruneOptions, sender, receiver Endpoint) (*pruner, error) {
	p := &pruner{cfg: cfg, opts: opts, sender: sender, receiver: receiver, log: cfg.Logger,
		src: map[string]*pdu.Filesystem{}, dst: map[string]*pdu.Filesystem{}}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if opts.Hold {
		if _, ok := sender.(Holder); !ok {
			return nil, pdu.PermanentError(errors.New("the source cannot keep holds"))
		}
		if cfg.CursorID == "" {
			return nil, pdu.PermanentError(errors.New("--hold needs the destination's id"))
		}
	}
	srcs, err := sender.ListFilesystems(ctx)
	if err != nil {
		return nil, fmt.Errorf("list source %s for pruning: %w", cfg.SourceRoot, err)
	}
	dsts, err := receiver.ListFilesystems(ctx)
	if err != nil {
		return nil, fmt.Errorf("list destination %s for pruning: %w", cfg.DestRoot, err)
	}
	for _, fs := range srcs {
		p.src[fs.Path] = fs
	}
	for _, fs := range dsts {
		p.dst[fs.Path] = fs
	}
	return p, nil
}

// prune moves the hold and destroys what the policies let go on one
// filesystem pair. Only srcPath and its mapped destination are touched.
func (p *pruner) prune(ctx context.Context, srcPath, dstPath string, failed bool) pruneOutcome {
	out := pruneOutcome{pruned: PrunedSnapshots{Source: []string{}, Destination: []string{}},
		held: PrunedSnapshots{Source: []string{}, Destination: []string{}}}
	in := PruneInput{Source: p.src[srcPath], Dest: p.dst[dstPath], Failed: failed, Snapshots: p.cfg.Snapshots}
	var errs []error
	if p.opts.Hold && !failed && in.Source != nil && in.Dest != nil {
		if err := p.moveHold(ctx, in.Source, in.Dest); err != nil {
			errs = append(errs, err)
		}
	}
	d := DecidePrune(p.opts.Retention, in)
	if d.Reason != "" && p.opts.Retention.Enabled() {
		p.log.Info("nothing pruned", "filesystem", srcPath, "reason", d.Reason)
	}
	out.held.Source, out.held.Destination = versionNames(d.HeldSource), versionNames(d.HeldDest)
	for _, h := range []struct {
		fs   string
		held []*pdu.FilesystemVersion
	}{{srcPath, d.HeldSource}, {dstPath, d.HeldDest}} {
		for _, v := range h.held {
			p.log.Warn("snapshot has a user hold; not pruned", "snapshot", v.FullPath(h.fs))
		}
	}
	var err error
	out.pruned.Source, err = destroy(ctx, p.sender, srcPath, d.Source)
	if err != nil {
		errs = append(errs, fmt.Errorf("prune source: %w", err))
	}
	out.pruned.Destination, err = destroy(ctx, p.receiver, dstPath, d.Dest)
	if err != nil {
		errs = append(errs, fmt.Errorf("prune destination: %w", err))
	}
	if len(out.pruned.Source)+len(out.pruned.Destination) > 0 {
		p.log.Info("pruned", "filesystem", srcPath, "source", len(out.pruned.Source), "destination", len(out.pruned.Destination))
	}
	out.err = errors.Join(errs...)
	return out
}

// moveHold puts zrep's hold on the newest snapshot both sides share and
// takes it off the source's older snapshots, updating their UserRefs so
// that pruning sees the holds as they now are.
func (p *pruner) moveHold(ctx context.Context, src, dst *pdu.Filesystem) error {
	base := newestCommon(src.Versions, dst.Versions)
	if base == nil {
		return nil
	}
	h := p.sender.(Holder)
	tag := HoldTag(p.cfg.CursorID)
	if err := h.Hold(ctx, src.Path, base, tag); err != nil {
		return fmt.Errorf("hold %s on %s: %w", tag, base.FullPath(src.Path), err)
	}
	base.UserRefs++
	var held []*pdu.FilesystemVersion
	for _, v := range src.Versions {
		if v.Type == pdu.Snapshot && v.UserRefs > 0 && v.Guid != base.Guid {
			held = append(held, v)
		}
	}
	if len(held) == 0 {
		return nil
	}
	released, err := h.Release(ctx, src.Path, held, tag)
	for _, r := range released {
		for _, v := range src.Versions {
			if v.Type == pdu.Snapshot && v.Guid == r.Guid && v.UserRefs > 0 {
				v.UserRefs--
			}
		}
	}
	if err != nil {
		return fmt.Errorf("release %s on %s: %w", tag, src.Path, err)
	}
	p.log.Debug("hold moved", "snapshot", base.FullPath(src.Path), "tag", tag, "released", len(released))
	return nil
}

// destroy destroys snaps of fs in one request and returns the names
// destroyed; the error names those that were not.
func destroy(ctx context.Context, side Endpoint, fs string, snaps []*pdu.FilesystemVersion) ([]string, error) {
	done := []string{}
	if len(snaps) == 0 {
		return done, nil
	}
	res, err := side.DestroySnapshots(ctx, &pdu.DestroySnapshotsReq{Filesystem: fs, Snapshots: snaps})
	if err != nil {
		return done, fmt.Errorf("destroy snapshots of %s: %w", fs, err)
	}
	var failed []string
	for _, r := range res.Results {
		switch {
		case r.Gone:
			// Another run from this source pruned it first.
		case r.Error == "":
			done = append(done, r.Snapshot.Name)
		default:
			failed = append(failed, r.Snapshot.FullPath(fs)+": "+r.Error)
		}
	}
	if len(failed) > 0 {
		return done, fmt.Errorf("could not destroy %s", strings.Join(failed, "; "))
	}
	return done, nil
}

// Prune moves holds and prunes both sides after Drive, per opts, with one
// fresh listing per side. Only filesystems that completed are touched; a
// filesystem whose replication failed keeps everything. A failure becomes
// that filesystem's problem and PermanentError status (what was replicated
// stays). It does nothing unless Drive ended Completed.
func (r *Replication) Prune(ctx context.Context, sender, receiver Endpoint, opts PruneOptions) {
	r.mu.Lock()
	state, fss := r.state, r.filesystems
	r.mu.Unlock()
	if !opts.enabled() || state != Completed {
		return
	}
	fail := func(f *fsReplication, err error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		f.state, f.problem = FilesystemPermanentError, err
	}
	p, err := newPruner(ctx, &r.cfg, opts, sender, receiver)
	if err != nil {
		for _, f := range fss {
			r.mu.Lock()
			ok := f.state == FilesystemCompleted
			r.mu.Unlock()
			if ok {
				fail(f, err)
			}
		}
		return
	}
	for _, f := range fss {
		if ctx.Err() != nil {
			return
		}
		r.mu.Lock()
		failed := f.state != FilesystemCompleted
		r.mu.Unlock()
		out := p.prune(ctx, f.pf.src, f.pf.dst, failed)
		r.mu.Lock()
		f.pruned, f.held = out.pruned, out.held
		r.mu.Unlock()
		if out.err != nil {
			r.cfg.Logger.Error("pruning failed", "filesystem", f.pf.src, "err", out.err)
			fail(f, out.err)
		}
	}
}

// PruneReport is what `zrep prune` did; its JSON form is the one
// `zrep prune --json` prints.
type PruneReport struct {
	Filesystems []*FilesystemPrune `json:"filesystems"`
}

// FilesystemPrune is what pruning did to one filesystem pair.
type FilesystemPrune struct {
	Filesystem  string          `json:"filesystem"`
	Destination string          `json:"destination"`
	Pruned      PrunedSnapshots `json:"pruned"`
	// Held are snapshots the policy let go that carry a user hold.
	Held    PrunedSnapshots `json:"held"`
	Problem string          `json:"problem"`
}

// HasProblem reports whether pruning failed somewhere.
func (p *PruneReport) HasProblem() bool {
	for _, f := range p.Filesystems {
		if f.Problem != "" {
			return true
		}
	}
	return false
}

// Prune prunes both sides without replicating: every selected source
// filesystem (Config.Exclude) and its destination, with the same rules as
// after a run. A listing failure is the returned error; a failed destroy
// is that filesystem's Problem.
func Prune(ctx context.Context, cfg Config, sender, receiver Endpoint, opts PruneOptions) (*PruneReport, error) {
	cfg = cfg.withDefaults()
	p, err := newPruner(ctx, &cfg, opts, sender, receiver)
	if err != nil {
		return nil, err
	}
	rep := &PruneReport{Filesystems: []*FilesystemPrune{}}
	for _, path := range p.sourcePaths() {
		if ctx.Err() != nil {
			return rep, context.Cause(ctx)
		}
		dst := cfg.destination(path)
		out := p.prune(ctx, path, dst, false)
		fp := &FilesystemPrune{Filesystem: path, Destination: dst, Pruned: out.pruned, Held: out.held}
		if out.err != nil {
			fp.Problem = out.err.Error()
		}
		rep.Filesystems = append(rep.Filesystems, fp)
	}
	return rep, nil
}

// sourcePaths are the listed source filesystems that Config selects,
// parents first.
func (p *pruner) sourcePaths() []string {
	var out []string
	for path, fs := range p.src {
		if p.cfg.InScope(fs) {
			out = append(out, path)
		}
	}
	slices.SortFunc(out, pdu.CompareDatasets)
	return out
}

// WriteText writes the prune report for a human.
func (p *PruneReport) WriteText(w interface{ Write([]byte) (int, error) }) error {
	tw := &textWriter{w: w}
	for i, f := range p.Filesystems {
		if i > 0 {
			tw.printf("\n")
		}
		tw.printf("%s → %s\n", f.Filesystem, f.Destination)
		writePruned(tw, "pruned", f.Pruned, f.Held)
		if f.Problem != "" {
			tw.printf("    problem: %s\n", f.Problem)
		}
	}
	return tw.err
}

// writePruned lists pruned and held snapshots; verb is "pruned" or, in a
// plan, "would prune".
func writePruned(tw *textWriter, verb string, pruned, held PrunedSnapshots) {
	for _, l := range []struct {
		what  string
		names []string
	}{
		{verb + " on source", pruned.Source},
		{verb + " on destination", pruned.Destination},
		{"held, not pruned, on source", held.Source},
		{"held, not pruned, on destination", held.Destination},
	} {
		if len(l.names) > 0 {
			tw.printf("    %s: %s\n", l.what, strings.Join(l.names, ", "))
		}
	}
}
