//go:build linux

package endpoints

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"
)

// A stream handed over as a pipe (as an endpoint's send is) into an auto
// encoder that knows its output pipe: what it stores is spliced, as frames
// of raw blocks sized by what the source pipe holds, and the stream still
// decodes whole with zrep's decoder and zstd's own; every byte is counted
// once.
func TestAutoSplicesWhatItStores(t *testing.T) {
	in := append(append(append(text(3*autoChunk), random(8*autoChunk)...), text(2*autoChunk+7)...), random(3*autoChunk/2)...)
	sr, sw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	dr, dw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		// In uneven pieces, as a sender writes.
		for rest := in; len(rest) > 0; {
			k := min(len(rest), 100_000)
			sw.Write(rest[:k])
			rest = rest[k:]
		}
		sw.Close()
	}()
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(dr)
		got <- b
	}()
	var wire, counted int64
	enc := newAutoEncoder(writerFunc(func(b []byte) (int, error) {
		n, err := dw.Write(b)
		wire += int64(n)
		return n, err
	}))
	enc.pipeOut, enc.wire = dw, func(n int64) { wire += n }
	n, err := enc.readFromPipe(context.Background(), sr, func(n int64) { counted += n })
	if err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	dw.Close()
	out := <-got
	if n != int64(len(in)) || counted != n {
		t.Fatalf("read %d bytes, counted %d, of %d", n, counted, len(in))
	}
	if wire != int64(len(out)) {
		t.Fatalf("wire counted %d bytes, the pipe carried %d", wire, len(out))
	}
	if !bytes.Contains(out, rawFrameHeader) {
		t.Fatalf("no spliced frame in the stream: %v", enc.summary())
	}
	t.Logf("%d bytes on the wire for %d; %v", len(out), len(in), enc.summary())
	decodesBack(t, out, in)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
