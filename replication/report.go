package replication

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Report is a snapshot of a replication's progress; its JSON form is the
// one `zrep run --json` prints.
type Report struct {
	// Status is a State's name.
	Status  string `json:"status"`
	Problem string `json:"problem"`
	// Snapshot is the snapshot set the run took (run --snapshot), nil
	// when it took none.
	Snapshot *string `json:"snapshot"`
	// Completed are the filesystems that are done, successfully or not,
	// in the order they finished.
	Completed []*FilesystemReport `json:"completed"`
	// Pending are the filesystems still to do, in planned order.
	Pending []*FilesystemReport `json:"pending"`
	// Active is a filesystem whose step runs now; with several jobs the
	// others running are in Pending.
	Active *FilesystemReport `json:"active"`
	Bytes  int64             `json:"bytes"`
	// WireBytes is Bytes as they crossed the link, after compression.
	WireBytes       int64   `json:"wire_bytes"`
	DurationSeconds float64 `json:"duration_seconds"`
}

// FilesystemReport is the progress of one filesystem.
type FilesystemReport struct {
	Filesystem  string `json:"filesystem"`
	Destination string `json:"destination"`
	// Status is a FilesystemState's name.
	Status  string `json:"status"`
	Problem string `json:"problem"`
	Bytes   int64  `json:"bytes"`
	// Pruned are the snapshots pruning destroyed after the run; Held
	// those it left because they carry a user hold.
	Pruned PrunedSnapshots `json:"pruned"`
	Held   PrunedSnapshots `json:"held"`
	Steps  []*StepReport   `json:"steps"`
}

// StepReport is the progress of one step.
type StepReport struct {
	// From is nil for a full send; a bookmark is written "#name".
	From *string `json:"from"`
	To   string  `json:"to"`
	// Status is a StepState's name.
	Status string `json:"status"`
	// ExpectedBytes is nil when the size is unknown.
	ExpectedBytes *int64 `json:"expected_bytes"`
	// Bytes counts the bytes sent so far. When steps share one stream,
	// the last of them counts the stream's bytes.
	Bytes int64 `json:"bytes"`
	// WireBytes are the bytes that crossed the link: after compression,
	// equal to Bytes without it.
	WireBytes int64 `json:"wire_bytes"`
	Resumed   bool  `json:"resumed"`
}

// Report returns the replication's progress. It is safe to call from any
// goroutine while Drive runs, and does not change once Drive has returned.
func (r *Replication) Report() *Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := &Report{
		Status:    r.state.String(),
		Completed: make([]*FilesystemReport, 0, len(r.completed)),
		Pending:   make([]*FilesystemReport, 0, len(r.filesystems)),
	}
	if r.problem != nil {
		rep.Problem = r.problem.Error()
	}
	for _, f := range r.completed {
		rep.Completed = append(rep.Completed, f.report())
	}
	for _, f := range r.filesystems {
		if f.done() {
			continue
		}
		fr := f.report()
		if f.active && rep.Active == nil {
			rep.Active = fr
		} else {
			rep.Pending = append(rep.Pending, fr)
		}
	}
	for _, f := range r.filesystems {
		for _, s := range f.steps {
			rep.Bytes += s.bytes.Load()
			rep.WireBytes += s.wireBytes()
		}
	}
	switch {
	case r.finished:
		rep.DurationSeconds = r.end.Sub(r.start).Seconds()
	case r.driven:
		rep.DurationSeconds = r.cfg.Clock.Now().Sub(r.start).Seconds()
	}
	return rep
}

// report describes f. Replication.mu must be held.
func (f *fsReplication) report() *FilesystemReport {
	fr := &FilesystemReport{
		Filesystem:  f.pf.src,
		Destination: f.pf.dst,
		Status:      f.state.String(),
		Pruned:      f.pruned.clone(),
		Held:        f.held.clone(),
		Steps:       make([]*StepReport, 0, len(f.steps)),
	}
	switch {
	case f.problem != nil:
		fr.Problem = f.problem.Error()
	case f.warning != nil:
		fr.Problem = "warning: " + f.warning.Error()
	}
	for _, s := range f.steps {
		sr := &StepReport{
			From:          fromName(s.from, s.fromFS),
			To:            s.to.ReportName(),
			Status:        s.state.String(),
			ExpectedBytes: s.expected,
			Bytes:         s.bytes.Load(),
			WireBytes:     s.wireBytes(),
			Resumed:       s.resumed,
		}
		fr.Bytes += sr.Bytes
		fr.Steps = append(fr.Steps, sr)
	}
	return fr
}

// Failed reports whether a filesystem ended in PermanentError.
func (r *Report) Failed() bool {
	for _, list := range [][]*FilesystemReport{r.Completed, r.Pending} {
		for _, f := range list {
			if f.Status == FilesystemPermanentError.String() {
				return true
			}
		}
	}
	return r.Active != nil && r.Active.Status == FilesystemPermanentError.String()
}

// ExpectedBytes is the sum of the known size estimates of all steps, for a
// progress bar's total; 0 when none is known.
func (r *Report) ExpectedBytes() int64 {
	var total int64
	for _, list := range [][]*FilesystemReport{r.Completed, r.Pending, {r.Active}} {
		for _, f := range list {
			if f == nil {
				continue
			}
			for _, s := range f.Steps {
				if s.ExpectedBytes != nil {
					total += *s.ExpectedBytes
				}
			}
		}
	}
	return total
}

// WriteText writes the report for a human, with the status words of the
// JSON form. A run in which a filesystem failed leads with what failed
// and why, one line per failed filesystem, so that the first lines of a
// cron mail say it; the details follow as after a success.
func (r *Report) WriteText(w io.Writer) error {
	tw := &textWriter{w: w}
	var all []*FilesystemReport
	all = append(all, r.Completed...)
	if r.Active != nil {
		all = append(all, r.Active)
	}
	all = append(all, r.Pending...)
	var failed []*FilesystemReport
	for _, f := range all {
		if f.Status == FilesystemPermanentError.String() {
			failed = append(failed, f)
		}
	}
	if len(failed) > 0 {
		tw.printf("FAILED: %d of %d filesystems\n", len(failed), len(all))
		for _, f := range failed {
			problem := strings.Join(strings.Fields(f.Problem), " ")
			if problem == "" {
				problem = "failed (see its steps below)"
			}
			tw.printf("  %s → %s: %s\n", f.Filesystem, f.Destination, problem)
		}
		tw.printf("\n")
	}
	tw.printf("Status: %s\n", r.Status)
	if r.Snapshot != nil {
		tw.printf("Snapshot: %s\n", *r.Snapshot)
	}
	if r.Problem != "" {
		tw.printf("Problem: %s\n", r.Problem)
	}
	tw.printf("Transferred: %s in %s\n", humanBytes(r.Bytes), time.Duration(r.DurationSeconds*float64(time.Second)).Round(time.Millisecond))
	for _, f := range all {
		tw.printf("\n%s → %s: %s, %s\n", f.Filesystem, f.Destination, f.Status, humanBytes(f.Bytes))
		if f.Problem != "" {
			tw.printf("    problem: %s\n", f.Problem)
		}
		writePruned(tw, "pruned", f.Pruned, f.Held)
		for _, s := range f.Steps {
			tw.printf("    %s: %s, %s", stepText(s.From, s.To), s.Status, humanBytes(s.Bytes))
			if s.ExpectedBytes != nil {
				tw.printf(" of %s", humanBytes(*s.ExpectedBytes))
			}
			if s.Resumed {
				tw.printf(" (resumed)")
			}
			tw.printf("\n")
		}
	}
	return tw.err
}

// PlanReport is what a run would do; its JSON form is the one
// `zrep plan --json` prints.
type PlanReport struct {
	// Snapshot is the snapshot set a run would take first (--snapshot),
	// nil when none.
	Snapshot *string `json:"snapshot"`
	// Link says how streams cross the link (compression, rate limit); the
	// caller fills it in, the engine knows nothing of it.
	Link string `json:"link,omitempty"`
	// Hooks are the hooks a run would run ("pre-snapshot: CMD"); plan
	// runs none. The caller fills them in.
	Hooks       []string          `json:"hooks,omitempty"`
	Filesystems []*FilesystemPlan `json:"filesystems"`
	// LeftOut are the source filesystems under SRC that the job leaves
	// out (--exclude, zrep:sync=off), with the reason.
	LeftOut []LeftOut `json:"left_out"`
}

// LeftOut is a source filesystem the job leaves out, and why.
type LeftOut struct {
	Filesystem string `json:"filesystem"`
	Reason     string `json:"reason"`
}

// FilesystemPlan is the plan for one source filesystem.
type FilesystemPlan struct {
	Filesystem  string     `json:"filesystem"`
	Destination string     `json:"destination"`
	Steps       []PlanStep `json:"steps"`
	// Conflict is what stands between the two sides, if anything.
	Conflict string `json:"conflict"`
	// Resolution is how the conflict, or the situation, is handled.
	Resolution string `json:"resolution"`
	// Problem is why the filesystem will not be replicated.
	Problem string `json:"problem"`
	// Pruned is what pruning would destroy once the steps are done; Held
	// what it would leave because of a user hold.
	Pruned PrunedSnapshots `json:"pruned"`
	Held   PrunedSnapshots `json:"held"`
	// Send says how the streams go: raw, decrypted or plain; SendReason
	// says why.
	Send       SendMode `json:"send"`
	SendReason string   `json:"send_reason"`
	// SourceEncryption and DestinationEncryption are each side's
	// encryption; DestinationEncryption is null while the destination
	// does not exist.
	SourceEncryption      *EncryptionStatus `json:"source_encryption"`
	DestinationEncryption *EncryptionStatus `json:"destination_encryption"`
}

// PlanStep is one planned step.
type PlanStep struct {
	// From is nil for a full send; a bookmark is written "#name".
	From *string `json:"from"`
	To   string  `json:"to"`
	// ExpectedBytes is nil when the size is unknown.
	ExpectedBytes *int64 `json:"expected_bytes"`
}

// HasProblem reports whether a filesystem has a problem that stops its
// replication.
func (p *PlanReport) HasProblem() bool {
	for _, f := range p.Filesystems {
		if f.Problem != "" {
			return true
		}
	}
	return false
}

// WriteText writes the plan for a human.
func (p *PlanReport) WriteText(w io.Writer) error {
	tw := &textWriter{w: w}
	if p.Snapshot != nil {
		tw.printf("would take snapshot %s\n\n", *p.Snapshot)
	}
	if p.Link != "" {
		tw.printf("link: %s\n\n", p.Link)
	}
	for _, h := range p.Hooks {
		tw.printf("would run hook %s\n", h)
	}
	if len(p.Hooks) > 0 {
		tw.printf("\n")
	}
	for i, f := range p.Filesystems {
		if i > 0 {
			tw.printf("\n")
		}
		tw.printf("%s → %s\n", f.Filesystem, f.Destination)
		if f.Conflict != "" && f.Conflict != f.Problem {
			tw.printf("    conflict: %s\n", f.Conflict)
		}
		if f.Resolution != "" {
			tw.printf("    resolution: %s\n", f.Resolution)
		}
		if f.Problem != "" {
			tw.printf("    problem: %s\n", f.Problem)
		}
		if f.Send != SendPlain || f.DestinationEncryption != nil && f.DestinationEncryption.Encrypted {
			tw.printf("    send: %s\n", f.SendReason)
			tw.printf("    encryption: source %s; destination %s\n", f.SourceEncryption, f.DestinationEncryption)
		}
		for _, s := range f.Steps {
			size := "size unknown"
			if s.ExpectedBytes != nil {
				size = humanBytes(*s.ExpectedBytes)
			}
			tw.printf("    %s: %s\n", stepText(s.From, s.To), size)
		}
		if len(f.Steps) == 0 && f.Problem == "" {
			tw.printf("    nothing to send\n")
		}
		writePruned(tw, "would prune", f.Pruned, f.Held)
	}
	if len(p.LeftOut) > 0 {
		tw.printf("\nleft out:\n")
		for _, l := range p.LeftOut {
			tw.printf("    %s: %s\n", l.Filesystem, l.Reason)
		}
	}
	return tw.err
}

func stepText(from *string, to string) string {
	f := "(none)"
	if from != nil {
		f = *from
	}
	return f + " → " + to
}

// textWriter keeps the first write error so the text can be written
// without checking every line.
type textWriter struct {
	w   io.Writer
	err error
}

func (t *textWriter) printf(format string, args ...any) {
	if t.err == nil {
		_, t.err = fmt.Fprintf(t.w, format, args...)
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
