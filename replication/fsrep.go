package replication

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"

	"github.com/zrep/zrep/pdu"
)

// FilesystemState is the state of one filesystem's replication.
type FilesystemState int

const (
	// FilesystemReady has steps to take.
	FilesystemReady FilesystemState = iota
	// FilesystemRetryWait waits before retrying a step that failed with a
	// retryable error.
	FilesystemRetryWait
	// FilesystemPermanentError is given up: a conflict, a permanent error,
	// or retries exhausted.
	FilesystemPermanentError
	// FilesystemCompleted is up to date.
	FilesystemCompleted
)

var filesystemStateNames = []string{"Ready", "RetryWait", "PermanentError", "Completed"}

func (s FilesystemState) String() string {
	if s >= 0 && int(s) < len(filesystemStateNames) {
		return filesystemStateNames[s]
	}
	return fmt.Sprintf("FilesystemState(%d)", int(s))
}

// MarshalText writes the state's name, as in the Report.
func (s FilesystemState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a state's name.
func (s *FilesystemState) UnmarshalText(b []byte) error {
	return unmarshalName(b, filesystemStateNames, (*int)(s))
}

// StepState is the state of one step.
type StepState int

const (
	// StepReady is still to be sent.
	StepReady StepState = iota
	// StepRetry failed with a retryable error and will be sent again.
	StepRetry
	// StepPermanentError failed for good.
	StepPermanentError
	// StepCompleted is on the destination.
	StepCompleted
)

var stepStateNames = []string{"Ready", "Retry", "PermanentError", "Completed"}

func (s StepState) String() string {
	if s >= 0 && int(s) < len(stepStateNames) {
		return stepStateNames[s]
	}
	return fmt.Sprintf("StepState(%d)", int(s))
}

// MarshalText writes the state's name, as in the Report.
func (s StepState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a state's name.
func (s *StepState) UnmarshalText(b []byte) error {
	return unmarshalName(b, stepStateNames, (*int)(s))
}

// step sends one snapshot (to) on top of another (from, nil for a full send).
type step struct {
	from, to *pdu.FilesystemVersion
	// fromFS is from's filesystem when it is a clone's origin.
	fromFS   string
	expected *int64
	gapFree  bool
	// bytes counts the bytes of the current attempt while they flow.
	bytes atomic.Int64
	// sendWire and recvWire count the current attempt's bytes on the
	// link, where an endpoint compresses (see wireBytes).
	sendWire, recvWire atomic.Pointer[pdu.WireCount]

	// Guarded by Replication.mu.
	state       StepState
	resumeToken string
	resumed     bool
	failures    int
}

// fsReplication is the replication of one filesystem: its steps, taken
// in order. At most one goroutine takes its steps at a time.
type fsReplication struct {
	pf    *plannedFilesystem
	steps []*step
	// origin is the filesystem whose step a clone's first step waits for
	// (pf.origin), nil for any other.
	origin *fsReplication

	// Guarded by Replication.mu.
	state   FilesystemState
	problem error
	retryAt time.Time
	// warning is a complaint that did not stop the filesystem (a receive
	// that failed after its snapshot arrived); the Report shows it as the
	// problem of a completed filesystem.
	warning  error
	active   bool
	failures int // failures not attributable to a step
	// pruned and held are what pruning destroyed, and left for a hold,
	// after the run (Replication.Prune).
	pruned, held PrunedSnapshots

	// Touched only by the goroutine taking the filesystem's step.
	abortPartial     bool
	rolledBack       bool
	ancestorsReady   bool
	clearPlaceholder bool
	forceReceive     bool
	reconcile        bool
}

func newFSReplication(pf *plannedFilesystem, order int) *fsReplication {
	f := &fsReplication{
		pf:               pf,
		abortPartial:     pf.abortPartial,
		clearPlaceholder: pf.clearPlaceholder,
		forceReceive:     pf.forceReceive,
	}
	for _, ps := range pf.steps {
		s := &step{from: ps.from, fromFS: ps.fromFS, to: ps.to, expected: expectedBytes(ps.estimate), gapFree: ps.gapFree,
			resumeToken: ps.resumeToken, resumed: ps.resumeToken != ""}
		f.steps = append(f.steps, s)
	}
	switch {
	case pf.problem != nil:
		f.state, f.problem = FilesystemPermanentError, pf.problem
	case len(f.steps) == 0 && !f.clearPlaceholder:
		f.state = FilesystemCompleted
	}
	return f
}

// done reports whether f is finished, successfully or not. Replication.mu
// must be held.
func (f *fsReplication) done() bool {
	return f.state == FilesystemCompleted || f.state == FilesystemPermanentError
}

// nextRun returns the steps the next stream carries: the first pending
// step, and the pending steps after it when they may share one
// `zfs send -I` stream. Replication.mu must be held.
func (f *fsReplication) nextRun(separate bool) []*step {
	i := 0
	for i < len(f.steps) && f.steps[i].state == StepCompleted {
		i++
	}
	if i == len(f.steps) {
		return nil
	}
	first := f.steps[i]
	j := i + 1
	// A batch starts from a snapshot: a full send, a clone's send from
	// its origin or a resumed transfer carries exactly one step, and a
	// bookmark base is sent with -i.
	if !separate && first.from != nil && first.from.Type == pdu.Snapshot && first.fromFS == "" && first.resumeToken == "" && first.gapFree {
		for j < len(f.steps) && f.steps[j].gapFree {
			j++
		}
	}
	return f.steps[i:j]
}

// takeStep sends the filesystem's next stream, first doing what has to
// happen before it (discarding partial state, rolling back, creating
// placeholders), and records the outcome.
func (f *fsReplication) takeStep(ctx context.Context, e *engine) {
	log := e.log.With("filesystem", f.pf.src)
	var run []*step
	e.update(func() { run = f.nextRun(e.cfg.SeparateSteps) })

	if f.reconcile {
		if err := f.reconcileWithDestination(ctx, e); err != nil {
			f.fail(ctx, e, run[:min(1, len(run))], err)
			return
		}
		f.reconcile = false
		e.update(func() { run = f.nextRun(e.cfg.SeparateSteps) })
	}
	if err := f.prepare(ctx, e); err != nil {
		f.fail(ctx, e, run[:min(1, len(run))], err)
		return
	}
	if len(run) == 0 {
		e.update(func() { f.state, f.problem = FilesystemCompleted, nil })
		log.Info("filesystem up to date")
		return
	}

	log.Info("start step", "step", runName(run), "steps", len(run))
	full := run[0].from == nil
	wasPlaceholder := full && e.r.destination(f.pf.dst).placeholder
	if err := f.transfer(ctx, e, run, wasPlaceholder); err != nil {
		if !f.arrivedAnyway(ctx, e, run, err) {
			f.fail(ctx, e, run, err)
			return
		}
	}
	f.forceReceive = false
	e.r.setDestination(f.pf.dst, destinationState{exists: true})
	e.update(func() {
		for _, s := range run {
			s.state = StepCompleted
		}
	})
	log.Info("step completed", "step", runName(run), "bytes", run[len(run)-1].bytes.Load())
	f.moveCursor(ctx, e, run[len(run)-1].to)

	if wasPlaceholder {
		f.clearPlaceholder = true
		if err := f.clearPlaceholderMark(ctx, e); err != nil {
			f.fail(ctx, e, nil, err)
			return
		}
	}
	e.update(func() {
		f.problem = nil
		if f.nextRun(true) == nil {
			f.state = FilesystemCompleted
		}
	})
}

// arrivedAnyway looks at the destination after a transfer that failed:
// if the run's last snapshot is there with the source's guid, the data
// arrived and the failure came after it (zfs receive complaining once the
// snapshot was written: "step completed, lost"). The run then counts as
// completed and err is kept as a warning. Otherwise, or if the destination
// cannot be listed, the error stands.
func (f *fsReplication) arrivedAnyway(ctx context.Context, e *engine, run []*step, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	last := run[len(run)-1].to
	versions, lerr := e.receiver.ListFilesystemVersions(ctx, f.pf.dst)
	if lerr != nil {
		e.log.Debug("cannot list destination after failed transfer", "destination", f.pf.dst, "err", lerr)
		return false
	}
	for _, v := range versions {
		if v.Type == pdu.Snapshot && v.Guid == last.Guid {
			warning := fmt.Errorf("%s arrived on %s with the source's guid although the transfer reported a failure: %w", last.RelName(), f.pf.dst, err)
			e.log.Warn("transfer reported a failure but its snapshot arrived; step completed", "filesystem", f.pf.src,
				"destination", f.pf.dst, "snapshot", last.RelName(), "err", err)
			e.update(func() { f.warning = warning })
			return true
		}
	}
	return false
}

// moveCursor makes to, just received, the source's replication cursor for
// this destination. A failure is only logged: the snapshot is on the
// destination, and without a cursor the next run still sends from the
// newest common snapshot.
func (f *fsReplication) moveCursor(ctx context.Context, e *engine, to *pdu.FilesystemVersion) {
	if e.cfg.CursorID == "" {
		return
	}
	name := "#" + pdu.CursorName(e.cfg.CursorID, to.Guid)
	if err := e.sender.SetCursor(ctx, f.pf.src, to, e.cfg.CursorID); err != nil {
		e.log.Warn("could not move the replication cursor; the next run sends from the newest common snapshot",
			"filesystem", f.pf.src, "cursor", name, "snapshot", to.RelName(), "err", err)
		return
	}
	e.log.Debug("replication cursor moved", "filesystem", f.pf.src, "cursor", name, "snapshot", to.RelName())
}

// prepare does what must happen on the destination before the first
// stream; each action is done once, and retried after a failure.
func (f *fsReplication) prepare(ctx context.Context, e *engine) error {
	if f.abortPartial {
		if err := e.receiver.AbortPartialReceive(ctx, f.pf.dst); err != nil {
			return fmt.Errorf("discard partial receive state of %s: %w", f.pf.dst, err)
		}
		e.log.Info("discarded partial receive state", "destination", f.pf.dst)
		f.abortPartial = false
	}
	if f.pf.rollbackTo != nil && !f.rolledBack {
		if err := e.receiver.Rollback(ctx, f.pf.dst, f.pf.rollbackTo); err != nil {
			return fmt.Errorf("roll back %s to %s: %w", f.pf.dst, f.pf.rollbackTo.RelName(), err)
		}
		e.log.Warn("rolled back destination", "destination", f.pf.dst, "to", f.pf.rollbackTo.RelName())
		f.rolledBack = true
	}
	if !f.ancestorsReady {
		if err := e.r.createPlaceholders(ctx, e, f.pf.dst); err != nil {
			return err
		}
		f.ancestorsReady = true
	}
	return f.clearPlaceholderMark(ctx, e)
}

func (f *fsReplication) clearPlaceholderMark(ctx context.Context, e *engine) error {
	if !f.clearPlaceholder {
		return nil
	}
	if err := e.receiver.ClearPlaceholder(ctx, f.pf.dst, e.cfg.Receive); err != nil {
		return fmt.Errorf("clear placeholder mark of %s: %w", f.pf.dst, err)
	}
	f.clearPlaceholder = false
	e.r.setDestination(f.pf.dst, destinationState{exists: true})
	return nil
}

// transfer pipes one `zfs send` into one `zfs receive`, counting the bytes
// on the run's last step.
func (f *fsReplication) transfer(ctx context.Context, e *engine, run []*step, overwritePlaceholder bool) error {
	first, last := run[0], run[len(run)-1]
	var token string
	e.update(func() { token = first.resumeToken })
	sendReq := &pdu.SendReq{
		Filesystem:     f.pf.src,
		From:           first.from,
		FromFilesystem: first.fromFS,
		To:             last.to,
		Intermediates:  len(run) > 1,
		ResumeToken:    token,
		Options:        f.pf.sendOptions(e.cfg),
		Wire:           &pdu.WireCount{},
	}
	recvReq := &pdu.ReceiveReq{
		Filesystem:           f.pf.dst,
		OverwritePlaceholder: overwritePlaceholder,
		// With --rollback an incremental receive may also discard changes
		// made on the destination since its newest snapshot.
		// Not for a clone's first receive, which creates its destination.
		Rollback:  f.forceReceive || (e.cfg.Rollback && first.from != nil && first.fromFS == ""),
		Resumable: true,
		Options:   f.pf.receiveOptions(e.cfg, first.from == nil && token == ""),
		Wire:      &pdu.WireCount{},
	}
	last.bytes.Store(0)
	last.sendWire.Store(sendReq.Wire)
	last.recvWire.Store(recvReq.Wire)

	// A stream that moves no byte for StallTimeout is ended: the
	// processes go with the context, and its cause is the error.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var streamDone atomic.Bool
	defer e.watchStall(ctx, cancel, e.cfg.StallTimeout, &last.bytes, &streamDone)()

	stream, err := e.sender.Send(ctx, sendReq)
	if err != nil {
		return fmt.Errorf("send %s (%s): %w", f.pf.src, runName(run), err)
	}
	if stream == nil {
		return pdu.PermanentError(fmt.Errorf("send %s (%s): endpoint returned no stream", f.pf.src, runName(run)))
	}
	recvErr := e.receiver.Receive(ctx, recvReq, &countingReader{ctx: ctx, r: stream, n: &last.bytes, done: &streamDone})
	sendErr := stream.Close()
	if recvErr != nil {
		recvErr = fmt.Errorf("receive %s: %w", f.pf.dst, recvErr)
	}
	if sendErr != nil {
		sendErr = fmt.Errorf("send %s (%s): %w", f.pf.src, runName(run), sendErr)
	}
	if sendErr != nil && pdu.ClassOf(sendErr) == pdu.Permanent && last.bytes.Load() == 0 && token == "" {
		// zfs send refused before writing a byte (a missing snapshot, an
		// encryption key not loaded): the receiver's complaint about an
		// empty stream is only the echo, and retrying changes nothing. A
		// refused resume stays retryable: the retry discards the partial
		// state and starts over.
		return pdu.PermanentError(sendErr)
	}
	return transferError(recvErr, sendErr)
}

// transferError combines the two sides' errors of a transfer. The receiver
// knows best whether the destination refused the stream, so its permanent
// error wins; otherwise a retryable error on either side (typically the
// other side of a broken pipe) makes the whole retryable.
func transferError(recvErr, sendErr error) error {
	var err error
	switch {
	case recvErr == nil && sendErr == nil:
		return nil
	case recvErr == nil:
		err = sendErr
	case sendErr == nil:
		err = recvErr
	default:
		err = fmt.Errorf("%w; %w", recvErr, sendErr)
	}
	class := pdu.Permanent
	if pdu.ClassOf(recvErr) != pdu.Permanent && (pdu.IsRetryable(recvErr) || pdu.IsRetryable(sendErr)) {
		class = pdu.Retryable
	}
	return pdu.WithClass(err, class)
}

// reconcileWithDestination looks at the destination after a failed
// attempt: steps whose snapshot arrived anyway (a -I stream broken half-way,
// a sender that failed after the receiver finished) are completed, and
// partial receive state is resumed if it continues the next step, else
// discarded.
func (f *fsReplication) reconcileWithDestination(ctx context.Context, e *engine) error {
	fss, err := e.receiver.ListFilesystems(ctx)
	if err != nil {
		return fmt.Errorf("list destination %s after failed attempt: %w", e.cfg.DestRoot, err)
	}
	var dst *pdu.Filesystem
	for _, fs := range fss {
		if fs.Path == f.pf.dst {
			dst = fs
		}
	}
	if dst == nil {
		return nil
	}
	present := make(map[uint64]bool, len(dst.Versions))
	for _, v := range dst.Versions {
		if v.Type == pdu.Snapshot {
			present[v.Guid] = true
		}
	}
	var next *step
	e.update(func() {
		for _, s := range f.steps {
			if s.state != StepCompleted && present[s.to.Guid] {
				s.state = StepCompleted
			}
		}
		if run := f.nextRun(true); run != nil {
			next = run[0]
			next.resumeToken = ""
		}
	})
	if dst.ResumeToken == "" {
		return nil
	}
	if next != nil {
		from, to, err := e.sender.ResumeTarget(ctx, f.pf.src, dst.ResumeToken)
		if err != nil && pdu.IsRetryable(err) {
			return fmt.Errorf("resume target for %s: %w", f.pf.dst, err)
		}
		if err == nil && to != nil && to.Guid == next.to.Guid && sameVersion(from, next.from) {
			e.update(func() { next.resumeToken, next.resumed = dst.ResumeToken, true })
			e.log.Info("resuming interrupted receive", "destination", f.pf.dst, "to", to.RelName())
			return nil
		}
	}
	f.abortPartial = true
	return nil
}

func sameVersion(a, b *pdu.FilesystemVersion) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Guid == b.Guid
}

// fail records a failed attempt at run (nil when no step is to blame). A
// retryable error puts the filesystem into retry wait until a step has
// failed more than Retries times; any other error gives it up. An error
// caused by ctx ending records nothing: the run is over anyway.
func (f *fsReplication) fail(ctx context.Context, e *engine, run []*step, err error) {
	if ctx.Err() != nil {
		return
	}
	f.reconcile = true
	retryAt := e.now().Add(e.cfg.RetryWait)
	var state FilesystemState
	e.update(func() {
		permanent := !pdu.IsRetryable(err)
		if len(run) == 0 {
			f.failures++
			permanent = permanent || f.failures > e.cfg.Retries
		}
		for _, s := range run {
			s.failures++
			permanent = permanent || s.failures > e.cfg.Retries
		}
		stepState := StepRetry
		f.state, f.problem, f.retryAt = FilesystemRetryWait, err, retryAt
		if permanent {
			stepState = StepPermanentError
			f.state = FilesystemPermanentError
		}
		for _, s := range run {
			s.state = stepState
		}
		state = f.state
	})
	if state == FilesystemPermanentError {
		e.log.Error("filesystem failed", "filesystem", f.pf.src, "err", err)
	} else {
		e.log.Warn("step failed, will retry", "filesystem", f.pf.src, "err", err, "until", retryAt)
	}
}

// createPlaceholders creates the missing ancestors of dst below and
// including DestRoot as placeholders, so that dst can be received.
func (r *Replication) createPlaceholders(ctx context.Context, e *engine, dst string) error {
	if dst == r.cfg.DestRoot || !strings.HasPrefix(dst, r.cfg.DestRoot+"/") {
		return nil
	}
	r.placeholderMu.Lock()
	defer r.placeholderMu.Unlock()
	ancestors := []string{r.cfg.DestRoot}
	for _, part := range strings.Split(strings.TrimPrefix(pdu.Parent(dst), r.cfg.DestRoot), "/")[1:] {
		ancestors = append(ancestors, ancestors[len(ancestors)-1]+"/"+part)
	}
	for _, a := range ancestors {
		if r.destination(a).exists {
			continue
		}
		if err := e.receiver.CreatePlaceholder(ctx, a); err != nil {
			return fmt.Errorf("create placeholder %s: %w", a, err)
		}
		e.log.Info("created placeholder", "destination", a)
		r.setDestination(a, destinationState{exists: true, placeholder: true})
	}
	return nil
}

func (r *Replication) destination(ds string) destinationState {
	r.destMu.Lock()
	defer r.destMu.Unlock()
	return r.destinations[ds]
}

func (r *Replication) setDestination(ds string, s destinationState) {
	r.destMu.Lock()
	defer r.destMu.Unlock()
	r.destinations[ds] = s
}

func runName(run []*step) string {
	return stepName(run[0].from, run[0].fromFS, run[len(run)-1].to)
}

// streamBufferSize is the chunk size of a transfer: large reads keep
// the per-chunk overhead of pipes and ssh low.
const streamBufferSize = 1 << 20

// countingReader counts the bytes of a send stream as they pass, and stops
// the stream when ctx ends.
type countingReader struct {
	ctx  context.Context
	r    io.Reader
	n    *atomic.Int64
	done *atomic.Bool // set once the stream has ended, well or not
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	if err != nil && c.done != nil {
		c.done.Store(true)
	}
	return n, err
}

// WriteTo lets io.Copy in the receiver move the stream in large chunks.
// A stream that can write itself (an endpoint's, which may splice pipe to
// pipe without the data passing through zrep) does so into a
// countingWriter, which counts what it writes and what it is told of.
func (c *countingReader) WriteTo(w io.Writer) (int64, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	if wt, ok := c.r.(io.WriterTo); ok {
		n, err := wt.WriteTo(&countingWriter{ctx: c.ctx, w: w, n: c.n})
		if c.done != nil {
			c.done.Store(true)
		}
		return n, err
	}
	buf := make([]byte, streamBufferSize)
	var total int64
	for {
		n, err := c.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// countingWriter counts the bytes written through it, and those a stream
// moved to the writer beneath on its own (Unwrap) and reported with Add;
// it stops the stream when ctx ends.
type countingWriter struct {
	ctx context.Context
	w   io.Writer
	n   *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// Unwrap is the writer beneath.
func (c *countingWriter) Unwrap() io.Writer { return c.w }

// Add counts n bytes moved to Unwrap() directly.
func (c *countingWriter) Add(n int64) { c.n.Add(n) }

// wireBytes is what the current attempt of s moved over the link: the
// receiver's count where it compressed for its link, else the sender's,
// else the stream's own bytes, which is what crossed uncompressed.
func (s *step) wireBytes() int64 {
	if n, ok := s.recvWire.Load().Load(); ok {
		return n
	}
	if n, ok := s.sendWire.Load().Load(); ok {
		return n
	}
	return s.bytes.Load()
}
