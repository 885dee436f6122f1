package endpoints

import (
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// startSend starts argv as a sender, as Endpoint.Send does.
func startSend(t *testing.T, ctx context.Context, argv ...string) *sendStream {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	growPipe(pw)
	p, err := newRunner(nil, "source", "").start(ctx, []string{"zfs", "send"}, argv, nil, pw)
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	return &sendStream{p: p, r: pr}
}

// counter is what the engine wraps the receiver's stdin in.
type counter struct {
	w      io.Writer
	n      atomic.Int64
	writes atomic.Int64
}

func (c *counter) Write(b []byte) (int, error) {
	c.writes.Add(1)
	n, err := c.w.Write(b)
	c.n.Add(int64(n))
	return n, err
}
func (c *counter) Unwrap() io.Writer { return c.w }
func (c *counter) Add(n int64)       { c.n.Add(n) }

// countingSource is the engine's countingReader in short: a WriterTo over
// the stream.
type countingSource struct {
	s *sendStream
	c *counter
}

func (r *countingSource) Read(b []byte) (int, error) { return r.s.Read(b) }
func (r *countingSource) WriteTo(w io.Writer) (int64, error) {
	r.c.w = w
	return r.s.WriteTo(r.c)
}

func TestSpliceMovesAndCountsEveryByte(t *testing.T) {
	ctx := context.Background()
	const size = 40<<20 + 12345
	s := startSend(t, ctx, "head", "-c", strconv.Itoa(size), "/dev/zero")
	src := &countingSource{s: s, c: &counter{}}
	var out strings.Builder
	err := newRunner(nil, "destination", "").run(ctx, []string{"zfs", "receive"}, []string{"wc", "-c"}, src, &out)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("send: %v", err)
	}
	if got := strings.TrimSpace(out.String()); got != strconv.Itoa(size) {
		t.Fatalf("receiver got %s bytes, want %d", got, size)
	}
	if n := src.c.n.Load(); n != size {
		t.Fatalf("counted %d bytes, want %d", n, size)
	}
	if w := src.c.writes.Load(); w != 0 {
		t.Fatalf("%d writes through zrep; want all spliced", w)
	}
}

func TestSpliceSlowSenderAndReceiver(t *testing.T) {
	// A sender that writes in bursts and a receiver that reads slowly: the
	// splice loop waits on both sides in turn.
	ctx := context.Background()
	s := startSend(t, ctx, "sh", "-c", "for i in 1 2 3 4 5; do head -c 300000 /dev/zero; sleep 0.05; done")
	src := &countingSource{s: s, c: &counter{}}
	var out strings.Builder
	err := newRunner(nil, "destination", "").run(ctx, []string{"zfs", "receive"},
		[]string{"sh", "-c", "n=0; while true; do k=$(head -c 100000 | wc -c); [ $k = 0 ] && break; n=$((n+k)); sleep 0.01; done; echo $n"}, src, &out)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("send: %v", err)
	}
	if got := strings.TrimSpace(out.String()); got != "1500000" {
		t.Fatalf("receiver got %s bytes, want 1500000", got)
	}
	if n := src.c.n.Load(); n != 1500000 {
		t.Fatalf("counted %d bytes", n)
	}
}

func TestSpliceReceiverGoneStopsTransfer(t *testing.T) {
	ctx := context.Background()
	s := startSend(t, ctx, "cat", "/dev/zero")
	src := &countingSource{s: s, c: &counter{}}
	done := make(chan error, 1)
	go func() {
		done <- newRunner(nil, "destination", "").run(ctx, []string{"zfs", "receive"}, []string{"head", "-c", "1000000"}, src, io.Discard)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("receive did not end after its process did")
	}
	if err := s.Close(); err == nil {
		t.Fatal("send stopped early: want an error")
	}
}

func TestSpliceCancelEndsPromptly(t *testing.T) {
	for _, stall := range []string{"sender", "receiver"} {
		t.Run(stall, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			send, recv := []string{"cat", "/dev/zero"}, []string{"sleep", "300"}
			if stall == "sender" {
				send, recv = []string{"sleep", "300"}, []string{"cat"}
			}
			s := startSend(t, ctx, send...)
			src := &countingSource{s: s, c: &counter{}}
			done := make(chan error, 1)
			go func() {
				done <- newRunner(nil, "destination", "").run(ctx, []string{"zfs", "receive"}, recv, src, io.Discard)
			}()
			time.Sleep(200 * time.Millisecond)
			begin := time.Now()
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("receive: %v, want context.Canceled", err)
				}
			case <-time.After(killGrace + 3*time.Second):
				t.Fatal("receive did not end after cancel")
			}
			if err := s.Close(); !errors.Is(err, context.Canceled) {
				t.Fatalf("send: %v, want context.Canceled", err)
			}
			if d := time.Since(begin); d > killGrace+time.Second {
				t.Fatalf("took %v to end", d)
			}
		})
	}
}

func TestSendStreamWriteToOtherWriterCopies(t *testing.T) {
	ctx := context.Background()
	s := startSend(t, ctx, "head", "-c", "3000000", "/dev/zero")
	c := &counter{w: io.Discard}
	n, err := s.WriteTo(c)
	if err != nil || n != 3000000 || c.n.Load() != 3000000 {
		t.Fatalf("WriteTo: %d, %v; counted %d", n, err, c.n.Load())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
