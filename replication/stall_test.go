package replication_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zrep/zrep/pdu"
	"github.com/zrep/zrep/replication"
)

// stallingSender's first stream gives a few bytes and then nothing, until
// the transfer's context ends; later streams are the real ones.
type stallingSender struct {
	replication.Sender
	stalls atomic.Int32
}

func (s *stallingSender) Send(ctx context.Context, req *pdu.SendReq) (pdu.Stream, error) {
	st, err := s.Sender.Send(ctx, req)
	if err != nil || s.stalls.Add(-1) < 0 {
		return st, err
	}
	return &stalledStream{Stream: st, ctx: ctx}, nil
}

type stalledStream struct {
	pdu.Stream
	ctx  context.Context
	gave bool
}

func (s *stalledStream) Read(b []byte) (int, error) {
	if !s.gave {
		s.gave = true
		return s.Stream.Read(b[:min(len(b), 16)])
	}
	<-s.ctx.Done()
	return 0, context.Cause(s.ctx)
}

// A stream that stops moving is ended after StallTimeout as a retryable
// error naming the stall, and the step is retried and completes. The real
// clock runs: the watchdog must not fire while the data moves.
func TestStalledTransferIsRetried(t *testing.T) {
	w := newWorld(t, "tank/a")
	w.src.Snapshot("tank/a", "s1")
	cfg := w.config()
	cfg.Clock = nil
	cfg.RetryWait = time.Millisecond
	cfg.StallTimeout = 200 * time.Millisecond
	snd := &stallingSender{Sender: w.sender()}
	snd.stalls.Store(1)
	r := replication.NewReplication(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r.Drive(ctx, snd, w.receiver())
	rep := r.Report()
	if rep.Status != replication.Completed.String() || rep.Failed() {
		t.Fatalf("report %+v", rep)
	}
	assertSnapshots(t, w.dst, "backup/tank/a", "s1")
	if ctx.Err() != nil {
		t.Fatal("the stalled transfer was never ended")
	}
}

// The stall error reads as the spec writes it and is retryable.
func TestStallErrorText(t *testing.T) {
	err := pdu.RetryableError(&replication.ErrStalled{For: 5 * time.Minute})
	if !strings.Contains(err.Error(), "stalled: no data for 5m0s") || !pdu.IsRetryable(err) {
		t.Fatalf("%v", err)
	}
	var st *replication.ErrStalled
	if !errors.As(err, &st) {
		t.Fatal("not an ErrStalled")
	}
}
