package replication

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/zrep/zrep/pdu"
)

// DefaultStallTimeout is what the CLI gives Config.StallTimeout unless told
// otherwise: long enough for the pauses of a healthy transfer (a receive
// committing a large free, a busy pool's txg sync, a sender reading a
// fragmented dataset: seconds to a minute or two), short enough that a
// cron job every 15 minutes or more finds the lock free again.
const DefaultStallTimeout = 5 * time.Minute

// ErrStalled is the cause of a transfer ended because its stream moved no
// byte for Config.StallTimeout.
type ErrStalled struct{ For time.Duration }

func (e *ErrStalled) Error() string { return fmt.Sprintf("stalled: no data for %s", e.For) }

// watchStall ends the transfer (cancel, with a retryable ErrStalled as the
// cause) if the count n does not move for timeout while the stream is not
// over (done). It returns a function that stops watching.
func (e *engine) watchStall(ctx context.Context, cancel context.CancelCauseFunc, timeout time.Duration, n *atomic.Int64, done *atomic.Bool) (stop func()) {
	if timeout <= 0 {
		return func() {}
	}
	quit := make(chan struct{})
	go func() {
		clock := e.cfg.Clock
		check := min(max(timeout/4, 10*time.Millisecond), 5*time.Second)
		last, since := n.Load(), clock.Now()
		for {
			t := clock.NewTimer(check)
			select {
			case <-quit:
				t.Stop()
				return
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C():
			}
			now := clock.Now()
			switch cur := n.Load(); {
			case cur != last || done.Load():
				last, since = cur, now
			case now.Sub(since) >= timeout:
				e.log.Warn("transfer stalled; ending it", "no_data_for", timeout)
				cancel(pdu.RetryableError(&ErrStalled{For: timeout}))
				return
			}
		}
	}()
	return func() { close(quit) }
}
