package endpoints

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
)

// The auto codec (--compress auto) writes a stream of zstd frames, each
// one chunk of the zfs stream: compressed, or stored in raw blocks, which
// every zstd decoder reads (`zstd -d` on a remote side, zrep's own here).
// Which one is decided as the stream goes, by the rate at which the zfs
// stream gets through: compression pays where the link (or the ssh behind
// it) is the bottleneck and the data shrinks, and costs a core where it is
// not. The encoder measures the input rate of each way of sending over a
// window, tries its neighbours now and then, and keeps the fastest; ties
// go to the cheaper. A chunk that does not shrink by a tenth is stored, and
// the next ones are stored without trying, more of them each time.
const (
	autoChunk = 1 << 20
	// autoPar chunks are compressed at once, each on a core.
	autoPar = 2
	// autoWindow is how much input one measurement covers, at least
	// autoMinWindow long.
	autoWindow = 16 << 20
	// autoShortWindow is the window of storing where compressed output
	// had to wait: on a slow link a long one would cost much.
	autoShortWindow = 4 << 20
	autoMinWindow   = 50 * time.Millisecond
	// autoSettle is how many chunks go out at a new level (or at the
	// start) before its window is measured: the buffers between zrep and
	// the receiver (its pipe, ssh's channel, the sockets) hold a few MiB of
	// the previous level's output.
	autoSettle = 4
	// autoExplore: the encoder tries a neighbour after so many windows,
	// then after twice as many each time the neighbour lost, at most
	// autoMaxExplore.
	autoExplore    = 4
	autoMaxExplore = 32
	// autoBetter is how much faster a costlier way must be to be kept.
	autoBetter = 1.05
	// autoMaxSkip bounds how many chunks are stored untried after ones
	// that did not shrink.
	autoMaxSkip = 64
)

// autoLevels are the ways of sending a chunk, cheapest first: stored, then
// zstd's fastest and default levels.
var autoLevels = []zstd.EncoderLevel{0, zstd.SpeedFastest, zstd.SpeedDefault}

type autoEncoder struct {
	w      io.Writer
	bufs   [autoPar][]byte // chunks waiting to be sent
	outs   [autoPar][]byte // their frames
	filled int             // full chunks in bufs
	encs   []*zstd.Encoder // per level; nil for stored and until first used
	any    bool            // a frame was written

	level   int       // index into autoLevels
	best    int       // the level to come back to after exploring
	rates   []float64 // input bytes per second per level, smoothed; 0 unknown
	winIn   int64     // input bytes of this window
	winT    time.Time // when this window began
	winOut  int64     // bytes written to the link in this window
	winSize int64     // input bytes this window measures
	// winBlocked: time spent in writes to the link in this window.
	winBlocked time.Duration
	windows    int
	settle     int // chunks to send before the window's clock starts

	explored                  int // neighbours tried
	nextExplore, exploreEvery int // at which window the next is tried; the wait after it

	skip, skipNext int // chunks to store untried; how many the next time
	now            func() time.Time

	// What went how, for the log: input bytes per level, and stored
	// because they did not shrink.
	in       []int64
	unshrunk int64
}

// summary is what the encoder did, for a debug log line.
func (a *autoEncoder) summary() []any {
	mib := func(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
	rate := func(r float64) string { return fmt.Sprintf("%.1f MB/s", r/1e6) }
	return []any{"stored", mib(a.in[0]), "fastest", mib(a.in[1]), "default", mib(a.in[2]),
		"unshrunk", mib(a.unshrunk), "rate_stored", rate(a.rates[0]), "rate_fastest", rate(a.rates[1]), "rate_default", rate(a.rates[2])}
}

func newAutoEncoder(w io.Writer) *autoEncoder {
	return &autoEncoder{w: w, encs: make([]*zstd.Encoder, len(autoLevels)), rates: make([]float64, len(autoLevels)), in: make([]int64, len(autoLevels)),
		level: autoLearn[0], best: autoLearn[0], skipNext: 1, now: time.Now, settle: 2 * autoSettle, winSize: autoWindow,
		nextExplore: len(autoLearn) + autoExplore, exploreEvery: autoExplore}
}

func (a *autoEncoder) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		b := &a.bufs[a.filled]
		k := min(len(p), autoChunk-len(*b))
		*b = append(*b, p[:k]...)
		p = p[k:]
		if len(*b) == autoChunk {
			if a.filled++; a.filled == autoPar {
				if err := a.flush(); err != nil {
					return n - len(p), err
				}
			}
		}
	}
	return n, nil
}

// Close writes what is left; it does not close w.
func (a *autoEncoder) Close() error {
	if a.filled < autoPar && len(a.bufs[a.filled]) > 0 {
		a.filled++
	}
	if a.filled > 0 || !a.any {
		a.filled = max(a.filled, 1)
		if err := a.flush(); err != nil {
			return err
		}
	}
	for _, e := range a.encs {
		if e != nil {
			e.Close()
		}
	}
	return nil
}

// flush sends the filled chunks, compressed at once on as many cores
// (each chunk is a frame of its own) where the level compresses.
func (a *autoEncoder) flush() error {
	k := a.filled
	a.filled = 0
	tried := a.level > 0 && a.skip == 0
	if tried {
		e := a.encs[a.level]
		if e == nil {
			var err error
			e, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(autoLevels[a.level]), zstd.WithEncoderConcurrency(autoPar))
			if err != nil {
				return err
			}
			a.encs[a.level] = e
		}
		var wg sync.WaitGroup
		for i := range k {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a.outs[i] = e.EncodeAll(a.bufs[i], a.outs[i][:0])
			}()
		}
		wg.Wait()
	}
	for i := range k {
		if err := a.send(a.bufs[i], &a.outs[i], tried); err != nil {
			return err
		}
		a.bufs[i] = a.bufs[i][:0]
	}
	return nil
}

// send writes chunk c: out holds its compressed frame if tried.
func (a *autoEncoder) send(c []byte, out *[]byte, tried bool) error {
	var frame []byte
	switch {
	case tried && len(*out) <= len(c)-len(c)/10:
		frame = *out
		a.skipNext = 1
	case tried:
		a.skip = a.skipNext
		a.skipNext = min(2*a.skipNext, autoMaxSkip)
	case a.skip > 0:
		a.skip--
	}
	if frame == nil {
		if a.level > 0 {
			a.unshrunk += int64(len(c))
		}
		*out = storedFrame((*out)[:0], c)
		frame = *out
	}
	a.in[a.level] += int64(len(c))
	t0 := a.now()
	if _, err := a.w.Write(frame); err != nil {
		return err
	}
	a.any = true
	if a.settle > 0 {
		// The pipes and ssh's buffers still hold what the previous level
		// wrote (or the stream is starting): not yet this level's rate.
		if a.settle--; a.settle == 0 {
			a.winT = a.now()
		}
		return nil
	}
	now := a.now()
	a.winBlocked += now.Sub(t0)
	a.winIn += int64(len(c))
	a.winOut += int64(len(frame))
	if a.winIn >= a.winSize && now.Sub(a.winT) >= autoMinWindow {
		a.endWindow(now)
	}
	return nil
}

// endWindow records the window's rate for its level and picks the next
// window's level. The first windows try the fastest level, then storing;
// after that the encoder keeps the fastest measured and now and then
// tries a neighbour of it, up and down in turn (storing is the cheapest,
// so a costlier level is tried only next to a level that already won),
// each time waiting twice as long if the neighbour lost, so that trying
// costs little on a long stream and a change of data or link is still
// noticed.
func (a *autoEncoder) endWindow(now time.Time) {
	dt := now.Sub(a.winT)
	r := float64(a.winIn) / dt.Seconds()
	if a.rates[a.level] == 0 {
		a.rates[a.level] = r
	} else {
		a.rates[a.level] = 0.5*a.rates[a.level] + 0.5*r
	}
	// Compressed output that still waited most of the window: the link,
	// or the receiver behind it, is slower than zrep compresses. If it is
	// the link, storing costs the ratio in time, so storing is then tried
	// on a short window only (its rate is less sure, but a slow link
	// shows soon enough).
	waited := a.level > 0 && a.winBlocked > dt/2
	a.winIn, a.winOut, a.winBlocked, a.winT = 0, 0, 0, now
	a.windows++
	prev := a.level
	defer func() {
		a.winSize = autoWindow
		if a.level != prev {
			a.settle = autoSettle
			if a.level == 0 && waited {
				a.settle, a.winSize = autoSettle/2, autoShortWindow
			}
		}
	}()
	if a.windows < len(autoLearn) {
		a.level = autoLearn[a.windows]
		return
	}
	best := fastestLevel(a.rates)
	if a.level != a.best && a.level == best {
		a.exploreEvery = autoExplore // a neighbour won: look around sooner
	}
	a.best, a.level = best, best
	if a.windows >= a.nextExplore {
		a.explored++
		up, down := best+1, best-1
		switch {
		case a.explored%2 == 1 && up < len(autoLevels):
			a.level = up
		case down >= 0:
			a.level = down
		case up < len(autoLevels):
			a.level = up
		}
		a.nextExplore = a.windows + a.exploreEvery
		a.exploreEvery = min(2*a.exploreEvery, autoMaxExplore)
	}
}

// autoLearn is the order in which the first windows try the levels.
var autoLearn = []int{1, 0}

// fastestLevel is the level of the highest rate, the cheapest unless a
// costlier one is faster by autoBetter; levels not measured (0) are left
// out.
func fastestLevel(rates []float64) int {
	best := -1
	for l, r := range rates {
		if r > 0 && (best < 0 || r > rates[best]*autoBetter) {
			best = l
		}
	}
	return max(best, 0)
}

// storedFrame appends to dst a zstd frame holding c in raw blocks: the
// magic number, a single-segment frame header with a 4-byte content size,
// and blocks of at most 128 KiB (RFC 8878, 3.1.1).
func storedFrame(dst, c []byte) []byte {
	const maxBlock = 128 << 10
	dst = binary.LittleEndian.AppendUint32(dst, 0xFD2FB528)
	dst = append(dst, 0xA0) // FCS field 4 bytes, single segment, no checksum
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(c)))
	for first := true; first || len(c) > 0; first = false {
		k := min(len(c), maxBlock)
		h := uint32(k) << 3 // block type 0: raw
		if k == len(c) {
			h |= 1 // last block
		}
		dst = append(dst, byte(h), byte(h>>8), byte(h>>16))
		dst = append(dst, c[:k]...)
		c = c[k:]
	}
	return dst
}
