package endpoints

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/zrep/zrep/pdu"
)

// The limiter never lets more than the rate (plus its bucket) pass, and
// the wire count is what passed. Only the lower bound is asserted: a slow
// machine can make it slower, never faster.
func TestLimiterLowerBound(t *testing.T) {
	const rate = 8 << 20
	lim := NewLimiter(rate)
	if lim.chunk != rate/10 {
		t.Fatalf("bucket %d, want a tenth of a second's bytes", lim.chunk)
	}
	data := make([]byte, 4<<20)
	var wire pdu.WireCount
	var out bytes.Buffer
	w := &wireWriter{ctx: context.Background(), w: &out, wire: &wire, lim: lim}
	start := time.Now()
	if _, err := io.Copy(w, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if min := time.Duration(float64(len(data)-lim.chunk) / rate * float64(time.Second)); took < min {
		t.Errorf("%d bytes at %d/s took %s, less than %s", len(data), rate, took, min)
	}
	if n, ok := wire.Load(); !ok || n != int64(len(data)) || out.Len() != len(data) {
		t.Errorf("wire count %d (%v), written %d; want %d", n, ok, out.Len(), len(data))
	}

	var rwire pdu.WireCount
	r := &wireReader{ctx: context.Background(), r: bytes.NewReader(data), wire: &rwire, lim: NewLimiter(rate)}
	start = time.Now()
	n, err := io.Copy(io.Discard, r)
	if err != nil || n != int64(len(data)) {
		t.Fatal(n, err)
	}
	if took := time.Since(start); took < time.Duration(float64(len(data)-2*lim.chunk)/rate*float64(time.Second)) {
		t.Errorf("reading %d bytes at %d/s took only %s", n, rate, took)
	}
	if got, _ := rwire.Load(); got != n {
		t.Errorf("read wire count %d, want %d", got, n)
	}
}

// A limited wait ends with its context.
func TestLimiterHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := &wireWriter{ctx: ctx, w: io.Discard, lim: NewLimiter(4 << 10)}
	if _, err := w.Write(make([]byte, 64<<10)); err == nil {
		t.Fatal("a write under a cancelled context passed")
	}
}
