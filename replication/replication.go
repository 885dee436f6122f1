// Package replication is zrep's engine: it plans and runs the replication of
// filesystems with their snapshots from a Sender to a Receiver, retrying
// what may succeed later, and reports progress while it runs.
//
// The engine never runs a command: it only talks to the Sender and
// Receiver interfaces, so it is tested with the in-memory endpoint in
// package memzfs.
package replication

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/zrep/zrep/pdu"
)

// DefaultRetryWait is the wait after a planning error or a retryable step
// error when Config.RetryWait is zero (the seed's RetrySleepDuration).
const DefaultRetryWait = 10 * time.Second

// Config is what one replication run does.
type Config struct {
	// SourceRoot is the source dataset, full name.
	SourceRoot string
	// DestRoot is the destination dataset: SourceRoot/x/y maps to DestRoot/x/y.
	DestRoot string
	// Exclude skips source datasets whose full name matches any of them.
	Exclude []*regexp.Regexp
	// Snapshots selects the snapshots that take part, matched against the
	// name after '@'; nil selects all. Bookmarks are always usable as
	// incremental bases.
	Snapshots *regexp.Regexp
	// Initial is what to send to a destination that has nothing yet.
	Initial InitialPolicy
	// Rollback allows rolling the destination back to the newest common
	// snapshot, and overwriting an existing destination without snapshots.
	Rollback bool
	// Retries is how many times planning, and each step, is retried after a
	// retryable error before it is given up.
	Retries int
	// RetryWait is the wait before a retry; zero means DefaultRetryWait.
	RetryWait time.Duration
	// Jobs is how many filesystems are replicated concurrently; <=1 means
	// one at a time.
	Jobs int
	// SeparateSteps sends every step as its own stream instead of carrying
	// consecutive steps in one `zfs send -I` stream.
	SeparateSteps bool
	// Send are the stream flags of every `zfs send`; planning sets Raw
	// per filesystem (see Decrypt).
	Send pdu.SendOptions
	// Decrypt sends encrypted source filesystems decrypted, their keys
	// loaded on the source, instead of raw (`zfs send -w`), which is the
	// default so that no destination receives plaintext by accident.
	Decrypt bool
	// Receive are the property flags of every `zfs receive`.
	Receive pdu.ReceiveOptions
	// CursorID identifies the destination among all destinations of the
	// source; it must be a stable, short lowercase hex string. When set,
	// each completed stream leaves a replication cursor, a bookmark
	// `#zrep_<CursorID>_<guid>` of its newest snapshot on the source
	// (Sender.SetCursor), which later runs can send from after that
	// snapshot is destroyed. Empty leaves the source untouched.
	CursorID string
	// StallTimeout ends a transfer whose stream moves no byte for that
	// long, with a retryable error (ErrStalled); 0 never does.
	StallTimeout time.Duration
	// Clock is the source of time; nil means the real clock.
	Clock Clock
	// Logger receives the engine's logs; nil discards them.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.RetryWait <= 0 {
		c.RetryWait = DefaultRetryWait
	}
	if c.Retries < 0 {
		c.Retries = 0
	}
	if c.Jobs < 1 {
		c.Jobs = 1
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// InScope reports whether the source filesystem fs takes part in the job:
// it is SourceRoot or one of its descendants, no Exclude pattern matches
// its full name, and its zrep:sync is not off (SPEC 15). Planning, pruning,
// clone origins and snapshot sets all ask this one question.
func (c *Config) InScope(fs *pdu.Filesystem) bool {
	return c.LeftOut(fs) == ""
}

// LeftOut says why the source filesystem fs takes no part in the job, or
// "" when it does (InScope).
func (c *Config) LeftOut(fs *pdu.Filesystem) string {
	switch {
	case !c.inside(fs.Path):
		return "outside SRC " + c.SourceRoot
	case matchesAny(c.Exclude, fs.Path):
		return "excluded (--exclude)"
	case fs.SyncOff:
		return "zrep:sync is off (set on it or inherited; zfs set zrep:sync=on to include it)"
	}
	return ""
}

// inside reports whether fs is SourceRoot or one of its descendants.
func (c *Config) inside(fs string) bool {
	return fs == c.SourceRoot || strings.HasPrefix(fs, c.SourceRoot+"/")
}

// selected reports whether v is a snapshot that may be sent.
func (c *Config) selected(v *pdu.FilesystemVersion) bool {
	return v.Type == pdu.Snapshot && (c.Snapshots == nil || c.Snapshots.MatchString(v.Name))
}

func (c *Config) destination(src string) string {
	return c.DestRoot + strings.TrimPrefix(src, c.SourceRoot)
}

// State is the state of a whole replication run.
type State int

const (
	// Planning lists both sides and decides what to send.
	Planning State = iota
	// PlanningError waits before planning again, or, once Drive has
	// returned, says that planning failed for good.
	PlanningError
	// Working runs steps.
	Working
	// WorkingWait waits for the earliest filesystem in retry wait.
	WorkingWait
	// Completed means every filesystem is done, successfully or not.
	Completed
	// ContextDone means the run was interrupted or timed out.
	ContextDone
)

var stateNames = []string{"Planning", "PlanningError", "Working", "WorkingWait", "Completed", "ContextDone"}

func (s State) String() string {
	if int(s) < len(stateNames) && s >= 0 {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// MarshalText writes the state's name, as in the Report.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a state's name.
func (s *State) UnmarshalText(b []byte) error { return unmarshalName(b, stateNames, (*int)(s)) }

func unmarshalName(b []byte, names []string, v *int) error {
	for i, n := range names {
		if n == string(b) {
			*v = i
			return nil
		}
	}
	return fmt.Errorf("unknown state %q", b)
}

// Replication replicates the filesystems of one Config. It is a state
// machine driven by Drive; Report gives its progress from any goroutine.
type Replication struct {
	cfg Config

	// mu guards everything below, and the mutable fields of the
	// filesystems and steps (see fsReplication); step bytes are atomics.
	mu               sync.Mutex
	state            State
	problem          error
	filesystems      []*fsReplication
	completed        []*fsReplication
	start, end       time.Time
	sleepUntil       time.Time
	planningFailures int
	driven, finished bool

	// destMu guards destinations; it is taken after mu, never before.
	destMu       sync.Mutex
	destinations map[string]destinationState
	// placeholderMu keeps two jobs from creating the same placeholder.
	placeholderMu sync.Mutex
}

// NewReplication returns a Replication in state Planning.
func NewReplication(cfg Config) *Replication {
	return &Replication{cfg: cfg.withDefaults(), state: Planning}
}

// engine is what the states and steps of one Drive share.
type engine struct {
	r        *Replication
	cfg      *Config
	sender   Sender
	receiver Receiver
	log      *slog.Logger
}

func (e *engine) now() time.Time { return e.cfg.Clock.Now() }

// update runs f with the Replication's lock held.
func (e *engine) update(f func()) {
	e.r.mu.Lock()
	defer e.r.mu.Unlock()
	f()
}

type stateFunc func(ctx context.Context, e *engine) stateFunc

// Drive runs the replication until it is done: every filesystem replicated
// or given up, planning failed for good, or ctx ended. It returns only then,
// and Report does not change afterwards. Drive runs once; later calls
// return at once.
func (r *Replication) Drive(ctx context.Context, sender Sender, receiver Receiver) {
	e := &engine{r: r, cfg: &r.cfg, sender: sender, receiver: receiver, log: r.cfg.Logger}
	r.mu.Lock()
	if r.driven {
		r.mu.Unlock()
		e.log.Warn("Drive called again on a finished replication; ignored")
		return
	}
	r.driven = true
	r.start = e.now()
	r.mu.Unlock()

	var s stateFunc = statePlanning
	for s != nil {
		pre, t := r.State(), e.now()
		s = s(ctx, e)
		post := r.State()
		e.log.Debug("state transition", "transition", fmt.Sprintf("%s => %s", pre, post), "duration", e.now().Sub(t))
	}

	r.mu.Lock()
	r.end = e.now()
	r.finished = true
	final, problem := r.state, r.problem
	r.mu.Unlock()
	if problem != nil {
		e.log.Info("replication ended", "state", final, "problem", problem)
	} else {
		e.log.Info("replication ended", "state", final)
	}
}

// State is the run's current state.
func (r *Replication) State() State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.state
}

func statePlanning(ctx context.Context, e *engine) stateFunc {
	e.log.Info("start planning")
	p, err := planRound(ctx, e.cfg, e.sender, e.receiver, e.log)
	if err != nil {
		if ctx.Err() != nil {
			return contextDone(ctx, e)
		}
		var final bool
		e.update(func() {
			e.r.planningFailures++
			e.r.state, e.r.problem = PlanningError, err
			final = pdu.ClassOf(err) == pdu.Permanent || e.r.planningFailures > e.cfg.Retries
		})
		if final {
			e.log.Error("planning failed", "err", err)
			return nil
		}
		e.log.Warn("planning failed, will retry", "err", err)
		return statePlanningError
	}

	fss := make([]*fsReplication, len(p.filesystems))
	clones := false
	for i, pf := range p.filesystems {
		fss[i] = newFSReplication(pf, i)
		clones = clones || pf.origin != nil
	}
	if clones {
		bySrc := make(map[string]*fsReplication, len(fss))
		for _, f := range fss {
			bySrc[f.pf.src] = f
		}
		for _, f := range fss {
			if f.pf.origin != nil {
				f.origin = bySrc[f.pf.origin.fs]
			}
		}
	}
	e.r.destMu.Lock()
	e.r.destinations = p.destinations
	e.r.destMu.Unlock()
	e.update(func() {
		e.r.filesystems = fss
		e.r.completed = nil
		for _, f := range fss {
			if f.done() {
				e.r.completed = append(e.r.completed, f)
			}
		}
		e.r.state, e.r.problem = Working, nil
	})
	e.log.Info("start working", "filesystems", len(fss))
	return stateWorking
}

func statePlanningError(ctx context.Context, e *engine) stateFunc {
	until := e.now().Add(e.cfg.RetryWait)
	e.update(func() { e.r.sleepUntil = until })
	e.log.Info("retry wait after planning error", "until", until)
	if !e.wait(ctx, e.cfg.RetryWait) {
		return contextDone(ctx, e)
	}
	e.update(func() { e.r.state = Planning })
	return statePlanning
}

// stateWorking runs steps, up to Jobs filesystems at a time, until every
// filesystem is done or only filesystems in retry wait remain.
func stateWorking(ctx context.Context, e *engine) stateFunc {
	results := make(chan *fsReplication)
	running := 0
	interrupted := func() stateFunc {
		next := contextDone(ctx, e)
		for ; running > 0; running-- {
			f := <-results
			e.update(func() { e.r.finishStep(f) })
		}
		return next
	}
	for {
		if ctx.Err() != nil {
			return interrupted()
		}
		var wakeAt time.Time
		var waiting bool
		e.update(func() {
			for running < e.cfg.Jobs {
				f := e.r.nextFilesystem(e.now())
				if f == nil {
					break
				}
				f.active = true
				f.state = FilesystemReady
				running++
				go func() {
					f.takeStep(ctx, e)
					results <- f
				}()
			}
			wakeAt, waiting = e.r.earliestRetry()
			switch {
			case running > 0:
				e.r.state = Working
			case waiting:
				e.r.state = WorkingWait
				e.r.sleepUntil = wakeAt
			default:
				e.r.state = Completed
			}
		})
		if running == 0 {
			if waiting {
				return stateWorkingWait
			}
			return nil
		}

		var timer Timer
		var timerC <-chan time.Time
		if waiting && running < e.cfg.Jobs {
			timer = e.cfg.Clock.NewTimer(wakeAt.Sub(e.now()))
			timerC = timer.C()
		}
		select {
		case f := <-results:
			running--
			e.update(func() { e.r.finishStep(f) })
		case <-timerC:
		case <-ctx.Done():
			return interrupted()
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

func stateWorkingWait(ctx context.Context, e *engine) stateFunc {
	var until time.Time
	e.update(func() { until = e.r.sleepUntil })
	e.log.Info("retry wait after step error", "until", until)
	if !e.wait(ctx, until.Sub(e.now())) {
		return contextDone(ctx, e)
	}
	e.update(func() { e.r.state = Working })
	return stateWorking
}

// wait waits for d, and reports false if ctx ended first.
func (e *engine) wait(ctx context.Context, d time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	t := e.cfg.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C():
		return true
	}
}

func contextDone(ctx context.Context, e *engine) stateFunc {
	e.update(func() {
		e.r.state, e.r.problem = ContextDone, context.Cause(ctx)
	})
	e.log.Warn("replication interrupted", "err", context.Cause(ctx))
	return nil
}

// finishStep records that f's step has returned.
func (r *Replication) finishStep(f *fsReplication) {
	f.active = false
	if f.done() {
		r.completed = append(r.completed, f)
	}
}
