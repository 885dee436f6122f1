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
			decodesBack(t, wire.Bytes(), in)
		})
	}
}

// decodesBack checks that zrep's decoder and, where it is installed,
// zstd's own program give in back from wire.
func decodesBack(t *testing.T, wire, in []byte) {
	t.Helper()
	d, err := zstd.NewReader(bytes.NewReader(wire))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(d)
	d.Close()
	if err != nil || !bytes.Equal(got, in) {
		t.Fatalf("zrep's decoder: %d bytes back of %d, err %v", len(got), len(in), err)
	}
	if _, err := exec.LookPath("zstd"); err != nil {
		return
	}
	cmd := exec.Command("zstd", "-d", "-q", "-c")
	cmd.Stdin = bytes.NewReader(wire)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	got, err = cmd.Output()
	if err != nil || !bytes.Equal(got, in) {
		t.Fatalf("zstd -d: %d bytes back of %d, err %v: %s", len(got), len(in), err, stderr.String())
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
	keep *bytes.Buffer // what was written, if not nil
}

func (l *slowLink) Write(b []byte) (int, error) {
	l.now = l.now.Add(time.Duration(float64(len(b)) / l.rate * float64(time.Second)))
	l.n += int64(len(b))
	if l.keep != nil {
		l.keep.Write(b)
	}
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

// On a slow link long enough to look around, compressed output that waits
// for the link has the costlier levels tried, and what goes out
// at zstd's fastest level is the smaller part of the stream; the stream,
// its frames spanning chunks, decodes whole.
func TestAutoClimbsOnASlowLink(t *testing.T) {
	// Text long enough to climb, data that does not shrink in the middle
	// of a frame that spans chunks, then text again.
	in := append(append(text(160<<20), random(3*autoChunk+5)...), text(64<<20)...)
	link := &slowLink{now: time.Unix(0, 0), rate: 12.5e6, keep: new(bytes.Buffer)}
	enc := newAutoEncoder(link)
	enc.now = func() time.Time { return link.now }
	if _, err := enc.ReadFrom(bytes.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("wire %d bytes; %v", link.n, enc.summary())
	if costlier := enc.in[2] + enc.in[3]; costlier <= enc.in[1] {
		t.Fatalf("the costlier levels took %d bytes, the fastest %d: %v", costlier, enc.in[1], enc.summary())
	}
	if enc.unshrunk == 0 {
		t.Fatalf("the random part was compressed: %v", enc.summary())
	}
	decodesBack(t, link.keep.Bytes(), in)
}

func repeat[T any](v T, n int) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// The level of each window: storing or compressing by the rates measured,
// how hard by how long compressed output waited for the link.
func TestAutoLevelDecisions(t *testing.T) {
	// window: the level it ran at (as the encoder chose), its input rate
	// and the share of it spent waiting for the link; want: the level the
	// encoder picks for the next window.
	type window struct {
		level   int
		rate    float64
		blocked float64
		want    int
	}
	for _, tc := range []struct {
		name string
		ws   []window
	}{
		{"slow link, text: harder while output waits; storing never tried", append([]window{
			{1, 50e6, 1, 2}, {2, 55e6, 1, 3}, {3, 60e6, 1, 3}},
			repeat(window{3, 62e6, 0.9, 3}, 40)...),
		},
		{"the link no longer the bottleneck: cheaper levels, then storing is tried", []window{
			{1, 50e6, 1, 2}, {2, 55e6, 1, 3}, {3, 60e6, 1, 3}, {3, 40e6, 0.3, 2}, {2, 40e6, 0.3, 1}, {1, 40e6, 0.3, 0}, {0, 100e6, 1, 0},
		}},
		{"the compressor is the bottleneck: a cheaper level", []window{
			{1, 50e6, 1, 2}, {2, 40e6, 0.3, 0}, {0, 12e6, 1, 1}, {1, 50e6, 0.6, 1},
		}},
		{"fast link: storing is faster", []window{
			{1, 130e6, 0.7, 2}, {2, 100e6, 0.4, 0}, {0, 190e6, 1, 0}, {0, 185e6, 1, 0}, {0, 180e6, 1, 0},
		}},
		{"a tie goes to storing", []window{
			{1, 101e6, 0.2, 0}, {0, 100e6, 1, 0},
		}},
		{"after 4 windows the other way is tried again", []window{
			{1, 130e6, 0.4, 0}, {0, 190e6, 1, 0}, {0, 190e6, 1, 0}, {0, 190e6, 1, 0}, {0, 190e6, 1, 0}, {0, 190e6, 1, 1}, {1, 120e6, 0.5, 0},
		}},
		{"storing less than half as fast is tried again only after 16 windows", append(append([]window{
			{1, 50e6, 0.4, 0}, {0, 12e6, 1, 1}},
			repeat(window{1, 50e6, 0.6, 1}, 15)...), window{1, 50e6, 0.6, 0}, window{0, 12e6, 1, 1}),
		},
		{"then after 32 windows", append(append(append(append([]window{
			{1, 50e6, 0.4, 0}, {0, 12e6, 1, 1}},
			repeat(window{1, 50e6, 0.6, 1}, 15)...), window{1, 50e6, 0.6, 0}, window{0, 12e6, 1, 1}),
			repeat(window{1, 50e6, 0.6, 1}, 30)...), window{1, 50e6, 0.6, 0}),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAutoEncoder(io.Discard)
			start := time.Unix(0, 0)
			a.winT = start
			for i, w := range tc.ws {
				if a.level != w.level {
					t.Fatalf("window %d ran at level %d, want %d", i, a.level, w.level)
				}
				dt := time.Second
				a.winIn = int64(w.rate)
				a.winBlocked = time.Duration(w.blocked * float64(dt))
				start = start.Add(dt)
				a.endWindow(start)
				if a.level != w.want {
					t.Fatalf("after window %d (%+v) the level is %d, want %d", i, w, a.level, w.want)
				}
			}
		})
	}
}
