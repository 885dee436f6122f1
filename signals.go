package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// survivePipes keeps zrep alive when stdout or stderr is a pipe whose
// reader went away (`zrep run ... 2>&1 | head`): Go's default is to die of
// SIGPIPE on such a write to fd 1 or 2. With the signal caught, the write
// fails with EPIPE instead, the output is lost, and the run goes on to its
// own exit status. Caught rather than ignored, so that the children zrep
// starts get SIGPIPE's default again.
func survivePipes() {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
}

// signalContext returns a context cancelled with cause errInterrupted on
// SIGINT or SIGTERM. Children run in their own process groups, so the
// terminal's signal reaches zrep alone and zrep ends them through the context.
func signalContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			cancel(errInterrupted)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel(context.Canceled)
	}
}
