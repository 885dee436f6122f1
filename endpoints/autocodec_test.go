package endpoints

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// text is n bytes of log-like lines, which zstd shrinks several times.
func text(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%08d zrep replicates ZFS filesystems over ssh; host web%d answered in %d ms\n", i, i%7, i%113)
	}
	return b.Bytes()[:n]
}

func random(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// An auto stream is a zstd stream: zstd's own program and zrep's decoder
// give back every byte, whatever mix of stored and compressed frames it
// holds, for every size around the chunk's.
func TestAutoStreamIsZstd(t *testing.T) {
	mixed := append(append(text(3*autoChunk), random(2*autoChunk)...), text(autoChunk/2)...)
	cases := map[string][]byte{
		"empty":         nil,
		"one byte":      {42},
		"a chunk":       text(autoChunk),
		"a chunk and 1": random(autoChunk + 1),
		"mixed":         mixed,
	}
	_, zerr := exec.LookPath("zstd")
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			var wire bytes.Buffer
			enc := newAutoEncoder(&wire)
			if _, err := enc.Write(in); err != nil {
				t.Fatal(err)
			}
			if err := enc.Close(); err != nil {
				t.Fatal(err)
			}
			d, err := zstd.NewReader(bytes.NewReader(wire.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(d)
			d.Close()
			if err != nil || !bytes.Equal(got, in) {
				t.Fatalf("zrep's decoder: %d bytes back of %d, err %v", len(got), len(in), err)
			}
			if zerr != nil {
				return
			}
			cmd := exec.Command("zstd", "-d", "-q", "-c")
			cmd.Stdin = bytes.NewReader(wire.Bytes())
			var stderr strings.Builder
			cmd.Stderr = &stderr
			got, err = cmd.Output()
			if err != nil || !bytes.Equal(got, in) {
				t.Fatalf("zstd -d: %d bytes back of %d, err %v: %s", len(got), len(in), err, stderr.String())
			}
		})
	}
}

func TestStoredFrameBlocks(t *testing.T) {
	c := random(300 << 10) // three raw blocks: 128, 128, 44 KiB
	f := storedFrame(nil, c)
	if want := 4 + 1 + 4 + 3*3 + len(c); len(f) != want {
		t.Fatalf("frame of %d bytes, want %d", len(f), want)
	}
	last := f[4+1+4+2*(3+128<<10):]
	if h := uint32(last[0]) | uint32(last[1])<<8 | uint32(last[2])<<16; h != uint32(44<<10)<<3|1 {
		t.Fatalf("last block header %#x", h)
	}
}

// slowLink is a writer behind a link of rate bytes per second: each write
// moves the fake clock on by its size at that rate.
type slowLink struct {
	now  time.Time
	rate float64
	n    int64
}

func (l *slowLink) Write(b []byte) (int, error) {
	l.now = l.now.Add(time.Duration(float64(len(b)) / l.rate * float64(time.Second)))
	l.n += int64(len(b))
	return len(b), nil
}

// On a link slower than the codec, text goes compressed and
// incompressible data stored: the wire carries a fraction of the text and
// no more than the random data (plus frame headers).
func TestAutoOnASlowLink(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in       []byte
		maxRatio float64
	}{
		{"text", text(96 << 20), 0.5},
		{"random", random(96 << 20), 1.001},
	} {
		t.Run(tc.name, func(t *testing.T) {
			link := &slowLink{now: time.Unix(0, 0), rate: 12.5e6}
			enc := newAutoEncoder(link)
			enc.now = func() time.Time { return link.now }
			if _, err := enc.Write(tc.in); err != nil {
				t.Fatal(err)
			}
			enc.Close()
			ratio := float64(link.n) / float64(len(tc.in))
			t.Logf("%s: wire %.3f of the stream; rates %v", tc.name, ratio, enc.rates)
			if ratio > tc.maxRatio {
				t.Fatalf("wire %.3f of the stream, want at most %.3f", ratio, tc.maxRatio)
			}
		})
	}
}

// The level kept is the fastest measured, the cheapest on a tie.
func TestAutoPicksTheFastest(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rates []float64
		want  int
	}{
		{"compression pays (slow link, text)", []float64{12e6, 45e6, 60e6}, 2},
		{"a tie goes to the cheapest (slow link, random)", []float64{12e6, 12.2e6, 12.1e6}, 0},
		{"CPU-bound: stored is fastest", []float64{200e6, 150e6, 90e6}, 0},
		{"the fastest level best", []float64{100e6, 220e6, 160e6}, 1},
		{"a level not measured yet is no candidate", []float64{100e6, 0, 0}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fastestLevel(tc.rates); got != tc.want {
				t.Fatalf("fastestLevel(%v) = %d, want %d", tc.rates, got, tc.want)
			}
		})
	}
}
