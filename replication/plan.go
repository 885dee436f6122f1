package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/zrep/zrep/pdu"
)

// estimateConcurrency bounds the size estimates run at once: each one is a
// `zfs send -n` on the source, possibly over ssh.
const estimateConcurrency = 4

// plannedStep is one step as planning found it.
type plannedStep struct {
	from, to *pdu.FilesystemVersion
	// fromFS is from's filesystem when it is a clone's origin, in
	// another filesystem; "" otherwise.
	fromFS string
	// resumeToken is set when the step continues an interrupted receive.
	resumeToken string
	estimate    pdu.SizeEstimate
	// gapFree is true when no unselected sender snapshot lies between from
	// and to, so a `zfs send -I` spanning this step sends nothing the
	// operator left out.
	gapFree bool
}

// plannedFilesystem is the outcome of planning one source filesystem.
type plannedFilesystem struct {
	src, dst string
	dstState destinationState
	steps    []*plannedStep
	// conflict is what IncrementalPath found, resolved or not.
	conflict   error
	resolution string
	// problem is a permanent error: the filesystem is not replicated.
	problem error
	// rollbackTo is rolled back to on the receiver before the first step.
	rollbackTo *pdu.FilesystemVersion
	// forceReceive lets the first receive overwrite the destination.
	forceReceive bool
	// abortPartial discards the destination's partial receive state before
	// the first step.
	abortPartial bool
	// clearPlaceholder clears the placeholder mark of a destination that
	// already holds received snapshots.
	clearPlaceholder bool
	// placeholderOnly marks a source without snapshots kept on the
	// destination only as a placeholder for its children.
	placeholderOnly bool
	// origin is set for a clone received as a clone: its first step
	// sends from the origin snapshot, which must be on the destination.
	origin *originDependency
	// enc says whether the streams go raw, and why; srcEnc and dstEnc
	// are each side's encryption (dstEnc nil while there is no
	// destination).
	enc            encryptionPlan
	srcEnc, dstEnc *EncryptionStatus
	// receiveUnencrypted makes full receives keep the unencrypted source
	// unencrypted (encryption=off) below an encrypted parent.
	receiveUnencrypted bool
}

// sendOptions are the flags of pf's sends: the operator's, and -w where
// planning decided to send raw.
func (pf *plannedFilesystem) sendOptions(cfg *Config) pdu.SendOptions {
	opts := cfg.Send
	opts.Raw = pf.enc.mode == SendRaw
	return opts
}

// plan is the outcome of one planning round.
type plan struct {
	filesystems []*plannedFilesystem
	// leftOut are the listed source filesystems under SRC that the job
	// leaves out, with the reason.
	leftOut []LeftOut
	// destinations are the datasets the receiver listed.
	destinations map[string]destinationState
}

// planRound lists both sides once and plans every selected filesystem. It
// changes nothing on either side. The error is a listing failure (or one
// that stops planning as a whole); per-filesystem problems are in the plan.
func planRound(ctx context.Context, cfg *Config, sender Sender, receiver Receiver, log *slog.Logger) (*plan, error) {
	// The two listings are independent; run them at once so planning costs
	// the slower of the two, not their sum.
	var (
		rfss   []*pdu.Filesystem
		rerr   error
		listed = make(chan struct{})
	)
	go func() {
		defer close(listed)
		rfss, rerr = receiver.ListFilesystems(ctx)
	}()
	sfss, err := sender.ListFilesystems(ctx)
	<-listed
	if err != nil {
		return nil, fmt.Errorf("list source %s: %w", cfg.SourceRoot, err)
	}
	if rerr != nil {
		return nil, fmt.Errorf("list destination %s: %w", cfg.DestRoot, rerr)
	}

	p := &plan{destinations: make(map[string]destinationState, len(rfss)), leftOut: []LeftOut{}}
	receiverFS := make(map[string]*pdu.Filesystem, len(rfss))
	for _, fs := range rfss {
		receiverFS[fs.Path] = fs
		p.destinations[fs.Path] = destinationState{exists: true, placeholder: fs.Placeholder}
	}

	var sources []*pdu.Filesystem
	for _, fs := range sfss {
		switch why := cfg.LeftOut(fs); {
		case why == "":
			sources = append(sources, fs)
		case cfg.inside(fs.Path):
			p.leftOut = append(p.leftOut, LeftOut{Filesystem: fs.Path, Reason: why})
		}
	}
	slices.SortStableFunc(sources, func(a, b *pdu.Filesystem) int { return pdu.CompareDatasets(a.Path, b.Path) })

	withSnapshots := descendantsWithSnapshots(sources, cfg.selected)
	origins, needed := findOrigins(cfg, sfss, sources, receiverFS)
	sourceFS := make(map[string]*pdu.Filesystem, len(sources))
	for _, fs := range sources {
		sourceFS[fs.Path] = fs
	}
	for i, fs := range sources {
		dst := cfg.destination(fs.Path)
		pf, err := planFilesystem(ctx, cfg, sender, fs, receiverFS[dst], dst, withSnapshots[i], needed[fs.Path])
		if err != nil {
			return nil, err
		}
		if receiveUnencrypted(cfg, fs, sourceFS[pdu.Parent(fs.Path)], receiverFS[pdu.Parent(dst)]) {
			pf.receiveUnencrypted = true
			pf.enc.why += ", and received unencrypted (encryption=off) below its encrypted parent, whose key the destination need not have"
		}
		p.filesystems = append(p.filesystems, pf)
	}
	planClones(cfg, p, origins, receiverFS)
	for _, pf := range p.filesystems {
		logPlan(log, pf)
	}

	if err := estimate(ctx, sender, p, cfg, log); err != nil {
		return nil, err
	}
	return p, nil
}

// descendantsWithSnapshots says, for each of sources (sorted with
// pdu.CompareDatasets, so that a filesystem's descendants follow it), whether a
// descendant has a selected version. One pass from the end: a stack holds
// the subtrees already seen, whether each has a selected version anywhere
// in it; the descendants of a filesystem are the subtrees on top of it.
func descendantsWithSnapshots(sources []*pdu.Filesystem, selected func(*pdu.FilesystemVersion) bool) []bool {
	type subtree struct {
		path string
		any  bool
	}
	with := make([]bool, len(sources))
	var stack []subtree
	for i := len(sources) - 1; i >= 0; i-- {
		fs := sources[i]
		prefix := fs.Path + "/"
		for len(stack) > 0 && strings.HasPrefix(stack[len(stack)-1].path, prefix) {
			with[i] = with[i] || stack[len(stack)-1].any
			stack = stack[:len(stack)-1]
		}
		stack = append(stack, subtree{fs.Path, with[i] || slices.ContainsFunc(fs.Versions, selected)})
	}
	return with
}

// planFilesystem plans one source filesystem fs against its destination dst
// (nil if the receiver does not have it). descendantsWithSnapshots says
// whether a selected descendant has something to send, which makes fs a
// placeholder rather than an error when it has no snapshots itself.
// originsNeeded are fs's snapshots that clones replicated in this run have
// as their origin: an initial send includes them.
func planFilesystem(ctx context.Context, cfg *Config, sender Sender, fs, dst *pdu.Filesystem, dstName string, descendantsWithSnapshots bool, originsNeeded []*pdu.FilesystemVersion) (*plannedFilesystem, error) {
	pf, err := planSteps(ctx, cfg, sender, fs, dst, dstName, descendantsWithSnapshots, originsNeeded)
	if err != nil {
		return nil, err
	}
	pf.enc, pf.srcEnc = planEncryption(cfg, fs), EncryptionOf(fs)
	if dst != nil {
		pf.dstEnc = EncryptionOf(dst)
	}
	if pf.problem != nil || pf.placeholderOnly {
		return pf, nil
	}
	full := len(pf.steps) > 0 && pf.steps[0].from == nil && pf.steps[0].resumeToken == "" && pf.dstState.exists
	if err := encryptionProblem(cfg, pf.enc, fs, dst, full, len(pf.steps) > 0); err != nil {
		pf.problem, pf.steps, pf.resolution = err, nil, ""
		if c, ok := err.(*ConflictEncryption); ok {
			pf.conflict = c
		}
	}
	return pf, nil
}

// planSteps plans the steps of fs to dst, whatever their encryption.
func planSteps(ctx context.Context, cfg *Config, sender Sender, fs, dst *pdu.Filesystem, dstName string, descendantsWithSnapshots bool, originsNeeded []*pdu.FilesystemVersion) (*plannedFilesystem, error) {
	pf := &plannedFilesystem{src: fs.Path, dst: dstName}
	var receiverVersions []*pdu.FilesystemVersion
	if dst != nil {
		pf.dstState = destinationState{exists: true, placeholder: dst.Placeholder}
		receiverVersions = SortVersions(dst.Versions)
	}
	senderVersions := SortVersions(fs.Versions)
	selected := make([]*pdu.FilesystemVersion, 0, len(senderVersions))
	for _, v := range senderVersions {
		if cfg.selected(v) {
			selected = append(selected, v)
		}
	}

	var notes []string
	if dst != nil && dst.ResumeToken != "" {
		from, to, err := sender.ResumeTarget(ctx, fs.Path, dst.ResumeToken)
		if err != nil && pdu.IsRetryable(err) {
			return nil, fmt.Errorf("resume target for %s on %s: %w", dstName, fs.Path, err)
		}
		if err == nil {
			if ok := planResume(pf, from, to, receiverVersions, senderVersions, selected, dst.ResumeToken); ok {
				return pf, nil
			}
			err = errors.New("it does not continue a selected snapshot after the destination's newest")
			if to != nil {
				err = fmt.Errorf("it continues %s, which is not a selected snapshot after the destination's newest", to.RelName())
			}
		}
		pf.abortPartial = true
		notes = append(notes, fmt.Sprintf("partial receive state on %s cannot be resumed (%v) and is discarded (zfs receive -A)", dstName, err))
		if !dst.Placeholder && !slices.ContainsFunc(receiverVersions, func(v *pdu.FilesystemVersion) bool { return v.Type == pdu.Snapshot }) {
			// An interrupted full receive into a new filesystem: the
			// filesystem is that partial state, and discarding it
			// removes it. Should it still be there afterwards, the full
			// receive, without -F, is refused and nothing is lost.
			pf.dstState = destinationState{}
		}
	}

	path, conflict := incrementalPath(receiverVersions, senderVersions)
	switch c := conflict.(type) {
	case *ConflictNoCommonAncestor:
		c.Filesystem, c.Destination = fs.Path, dstName
	case *ConflictDiverged:
		c.Filesystem, c.Destination = fs.Path, dstName
	}

	switch {
	case conflict == nil:
		pf.steps = incrementalSteps(path[:min(1, len(path))], path, selected, senderVersions)
		if len(pf.steps) == 0 {
			notes = append(notes, "up to date")
		}
		if pf.dstState.placeholder && len(receiverVersions) > 0 {
			// A run that received into a placeholder but could not clear
			// it left it unmountable; finish that now.
			pf.clearPlaceholder = true
			notes = append(notes, "clears the placeholder mark left on "+dstName)
		}
	case len(selected) == 0 && descendantsWithSnapshots:
		pf.placeholderOnly = true
		if dst == nil || dst.Placeholder {
			notes = append(notes, "no snapshots; kept as placeholder for its children")
		} else {
			notes = append(notes, "no snapshots; nothing to send, its children are replicated below the existing destination")
		}
	case len(selected) == 0:
		msg := "sender does not have any versions"
		if cfg.Snapshots != nil && slices.ContainsFunc(senderVersions, func(v *pdu.FilesystemVersion) bool { return v.Type == pdu.Snapshot }) {
			msg += " matching --snapshots " + cfg.Snapshots.String()
		}
		pf.problem = fmt.Errorf("%s: %s", fs.Path, msg)
	default:
		if pf.dstState.exists {
			// A destination that does not exist yet is new, not in
			// conflict: the resolution says it gets a full send.
			pf.conflict = conflict
		}
		res, err := resolveConflict(conflict, pf.dstState, selected, cfg)
		if err != nil {
			pf.problem = err
			break
		}
		if res.full && len(originsNeeded) > 0 {
			if path, added := withOrigins(res.path, originsNeeded); added {
				res.path = path
				res.text = fmt.Sprintf("full send of %s, the oldest snapshot that clones need as their origin, then %s (--initial %s)",
					path[0].RelName(), versionList(path[1:]), cfg.Initial)
			}
		}
		notes = append(notes, res.text)
		pf.rollbackTo, pf.forceReceive = res.rollbackTo, res.forceReceive
		if res.full {
			pf.steps = append(pf.steps, &plannedStep{to: res.path[0]})
			pf.steps = append(pf.steps, incrementalSteps(res.path[:1], res.path, selected, senderVersions)...)
		} else {
			pf.steps = incrementalSteps(res.path[:1], res.path, selected, senderVersions)
		}
	}
	pf.resolution = strings.Join(notes, "; ")
	return pf, nil
}

// planResume plans fs as a resumed receive of from→to followed by the later
// selected snapshots, if the token's target fits: to must be a selected
// snapshot after the receiver's newest, and from that newest (or nothing,
// for an interrupted full receive into a destination without snapshots).
func planResume(pf *plannedFilesystem, from, to *pdu.FilesystemVersion, receiverVersions, senderVersions, selected []*pdu.FilesystemVersion, token string) bool {
	if to == nil {
		return false
	}
	k := slices.IndexFunc(selected, func(v *pdu.FilesystemVersion) bool { return v.Guid == to.Guid })
	if k < 0 {
		return false
	}
	var base *pdu.FilesystemVersion
	if from == nil {
		if slices.ContainsFunc(receiverVersions, func(v *pdu.FilesystemVersion) bool { return v.Type == pdu.Snapshot }) {
			return false
		}
	} else {
		path, conflict := incrementalPath(receiverVersions, senderVersions)
		if conflict != nil || len(path) == 0 || path[0].Guid != from.Guid || path[0].CreateTXG >= selected[k].CreateTXG {
			return false
		}
		base = path[0]
	}
	first := &plannedStep{from: base, to: selected[k], resumeToken: token}
	pf.steps = append([]*plannedStep{first}, incrementalSteps(selected[k:k+1], selected[k:], selected, senderVersions)...)
	pf.resolution = fmt.Sprintf("resume the interrupted receive of %s", selected[k].RelName())
	return true
}

// incrementalSteps turns base followed by the selected entries of
// path[1:] into steps.
func incrementalSteps(base, path, selected, senderVersions []*pdu.FilesystemVersion) []*plannedStep {
	if len(base) == 0 {
		return nil
	}
	prev := base[0]
	var steps []*plannedStep
	for _, v := range path[1:] {
		if !slices.Contains(selected, v) {
			continue
		}
		steps = append(steps, &plannedStep{from: prev, to: v, gapFree: gapFree(prev, v, selected, senderVersions)})
		prev = v
	}
	return steps
}

// gapFree reports whether every sender snapshot strictly between from and
// to is selected.
func gapFree(from, to *pdu.FilesystemVersion, selected, senderVersions []*pdu.FilesystemVersion) bool {
	for _, v := range senderVersions {
		if v.Type == pdu.Snapshot && v.CreateTXG > from.CreateTXG && v.CreateTXG < to.CreateTXG && !slices.Contains(selected, v) {
			return false
		}
	}
	return true
}

// estimate asks the sender for the size of every step, a few at a time. A
// failed estimate is only logged: the step's size is then unknown.
func estimate(ctx context.Context, sender Sender, p *plan, cfg *Config, log *slog.Logger) error {
	sem := make(chan struct{}, estimateConcurrency)
	var wg sync.WaitGroup
	for _, pf := range p.filesystems {
		for _, st := range pf.steps {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				wg.Wait()
				return context.Cause(ctx)
			}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				req := &pdu.SendReq{Filesystem: pf.src, From: st.from, FromFilesystem: st.fromFS, To: st.to, ResumeToken: st.resumeToken, Options: pf.sendOptions(cfg)}
				est, err := sender.EstimateSize(ctx, req)
				if err != nil {
					log.Warn("size estimate failed, size unknown", "filesystem", pf.src, "step", stepName(st.from, st.fromFS, st.to), "err", err)
					return
				}
				st.estimate = est
			}()
		}
	}
	wg.Wait()
	return ctx.Err()
}

func logPlan(log *slog.Logger, pf *plannedFilesystem) {
	attrs := []any{"filesystem", pf.src, "destination", pf.dst, "steps", len(pf.steps)}
	if pf.conflict != nil {
		attrs = append(attrs, "conflict", pf.conflict.Error())
	}
	if pf.resolution != "" {
		attrs = append(attrs, "resolution", pf.resolution)
	}
	if pf.problem != nil {
		log.Error("cannot replicate filesystem", append(attrs, "problem", pf.problem.Error())...)
		return
	}
	log.Debug("planned filesystem", attrs...)
}

func stepName(from *pdu.FilesystemVersion, fromFS string, to *pdu.FilesystemVersion) string {
	f := "(none)"
	if from != nil {
		f = *fromName(from, fromFS)
	}
	return f + " → " + to.ReportName()
}

// Plan runs one planning round without changing anything on either side
// and says what a run would do. The error is a listing failure; conflicts
// and other per-filesystem problems are in the PlanReport.
func Plan(ctx context.Context, cfg Config, sender Sender, receiver Receiver) (*PlanReport, error) {
	c := cfg.withDefaults()
	p, err := planRound(ctx, &c, sender, receiver, c.Logger)
	if err != nil {
		return nil, err
	}
	rep := &PlanReport{Filesystems: make([]*FilesystemPlan, 0, len(p.filesystems)), LeftOut: p.leftOut}
	for _, pf := range p.filesystems {
		fp := &FilesystemPlan{
			Filesystem:  pf.src,
			Destination: pf.dst,
			Steps:       make([]PlanStep, 0, len(pf.steps)),
			Resolution:  pf.resolution,
			Send:        pf.enc.mode,
			SendReason:  pf.enc.why,

			SourceEncryption:      pf.srcEnc,
			DestinationEncryption: pf.dstEnc,
		}
		if pf.conflict != nil {
			fp.Conflict = pf.conflict.Error()
		}
		if pf.problem != nil {
			fp.Problem = pf.problem.Error()
			if errors.Is(pf.problem, pf.conflict) {
				fp.Resolution = ""
			}
		}
		for _, st := range pf.steps {
			fp.Steps = append(fp.Steps, PlanStep{From: fromName(st.from, st.fromFS), To: st.to.ReportName(), ExpectedBytes: expectedBytes(st.estimate)})
		}
		rep.Filesystems = append(rep.Filesystems, fp)
	}
	return rep, nil
}

// fromName is how plans and reports write a step's base: nil for a full
// send, a version's ReportName, or a clone's origin by its full name
// (`tank/template@base`), since it belongs to another filesystem.
func fromName(v *pdu.FilesystemVersion, fs string) *string {
	if v == nil {
		return nil
	}
	n := v.ReportName()
	if fs != "" {
		n = v.FullPath(fs)
	}
	return &n
}

func expectedBytes(e pdu.SizeEstimate) *int64 {
	if !e.Known {
		return nil
	}
	b := e.Bytes
	return &b
}
