package endpoints

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
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
// go to the cheaper. Where compressed output still waits for the link, the
// next costlier level is tried at once. A chunk that does not shrink by a
// tenth is stored, and the next ones are stored without trying, more of
// them each time.
//
// Chunks are compressed autoPar at once, one per core, while a goroutine
// of their own writes the previous batch: the link is not left idle while
// zrep compresses.
const (
	// autoChunk is the unit of each decision, and a frame's input at the
	// fastest level (larger chunks compress a little better there, where
	// each frame starts without history, but make storing's probe on a
	// slow link longer).
	autoChunk = 1 << 20
	// autoPar chunks are compressed at once, each on a core.
	autoPar = 2
	// autoWindow is how much input one measurement covers, at least
	// autoMinWindow long.
	autoWindow = 24 << 20
	// autoShortWindow is the window of storing where compressed output
	// had to wait, measured at once: on a slow link a long one would cost
	// much, and the compressed output still on the way only makes storing
	// look slower there.
	autoShortWindow = 2 * autoPar * autoChunk
	autoMinWindow   = 50 * time.Millisecond
	// autoSettle is how much input goes out at a new level (or at the
	// start) before its window is measured: the buffers between zrep and
	// the receiver (its pipe, ssh's channel, the sockets) hold a few MiB of
	// the previous level's output.
	autoSettle = 8 << 20
	// autoExplore: the encoder tries the other way (storing or
	// compressing) after so many windows, then after twice as many each
	// time it lost (four times if it was less than half as fast), at most
	// autoMaxExplore.
	autoExplore    = 4
	autoMaxExplore = 32
	// autoBetter is how much faster compressing must be to be kept.
	autoBetter = 1.05
	// A compressing window whose output waited for the link more than
	// autoWaited of the time has the next costlier level used; one that
	// waited less than autoFreed the next cheaper.
	autoWaited = 0.8
	autoFreed  = 0.5
	// autoMaxSkip bounds how many chunks are stored untried after ones
	// that did not shrink.
	autoMaxSkip = 64
	// autoStreamFrom is the first level whose chunks go through a
	// streaming encoder (frames that span chunks) rather than each in a
	// frame of its own.
	autoStreamFrom = 2
)

// autoLevels are the ways of sending a chunk, cheapest first: stored, then
// zstd's fastest, default and better levels.
var autoLevels = []zstd.EncoderLevel{0, zstd.SpeedFastest, zstd.SpeedDefault, zstd.SpeedBetterCompression}

// autoBatch is autoPar chunks and their frames, filled and compressed by
// the encoder, written by its writer.
type autoBatch struct {
	bufs   [autoPar][]byte // the chunks
	outs   [autoPar][]byte // their frames
	head   []byte          // written before them: the end of a frame begun earlier
	frames int             // frames to write (outs[:frames])
	sent   bool            // handed to the writer and not yet back
	level  int             // the level it was sent at
	in     int64           // input bytes
	// Set by the writer: bytes written, time spent in writes, when the
	// last write ended, and the first error.
	out     int64
	blocked time.Duration
	done    time.Time
	err     error
}

type autoEncoder struct {
	w      io.Writer
	slots  [2]*autoBatch
	cur    *autoBatch      // the batch being filled
	filled int             // full chunks in cur
	encs   []*zstd.Encoder // per level, for frames of one chunk; nil until used
	// streams: per level, for frames that span chunks; open is the level
	// whose frame is not ended yet (0: none); sink is where they write.
	streams []*zstd.Encoder
	open    int
	sink    appendSink
	any     bool // a frame was sent to the writer
	// pipeOut is w's pipe itself, into which stored chunks are spliced
	// (readFromPipe), wire what counts the bytes that go there; nil:
	// every chunk goes through w.
	pipeOut *os.File
	wire    func(int64)

	// The writer goroutine takes batches from todo and gives them back
	// on free; started with the first batch.
	todo     chan *autoBatch
	free     chan *autoBatch
	started  bool
	inFlight int
	err      error // the writer's first error

	level  int // index into autoLevels
	clevel int // the level compressing uses, at least 1
	best   int // 0 storing or 1 compressing: the faster, to come back to after exploring
	// rates: input bytes per second stored (0) and compressed (1),
	// smoothed; 0 unknown. levelRates: the last window's per level, for
	// the log.
	rates      [2]float64
	levelRates []float64
	winIn      int64     // input bytes of this window
	winT       time.Time // when this window began
	winOut     int64     // bytes written to the link in this window
	winSize    int64     // input bytes this window measures
	// winBlocked: time spent in writes to the link in this window.
	winBlocked time.Duration
	windows    int
	settle     int64 // input to send at this level before the window's clock starts
	// linkBound: a costlier level got more of the stream through than a
	// cheaper one, its output waiting for the link, since the last window
	// at the fastest level whose output seldom waited.
	linkBound bool

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
	var out []any
	for l, name := range []string{"stored", "fastest", "default", "better"} {
		out = append(out, name, mib(a.in[l]))
	}
	out = append(out, "unshrunk", mib(a.unshrunk))
	for l, name := range []string{"last_rate_stored", "last_rate_fastest", "last_rate_default", "last_rate_better"} {
		out = append(out, name, rate(a.levelRates[l]))
	}
	return out
}

func newAutoEncoder(w io.Writer) *autoEncoder {
	a := &autoEncoder{w: w, encs: make([]*zstd.Encoder, len(autoLevels)), streams: make([]*zstd.Encoder, len(autoLevels)), levelRates: make([]float64, len(autoLevels)), in: make([]int64, len(autoLevels)),
		level: 1, clevel: 1, best: 1, skipNext: 1, now: time.Now, settle: autoSettle, winSize: autoWindow,
		todo: make(chan *autoBatch, 1), free: make(chan *autoBatch, 2)}
	for i := range a.slots {
		a.slots[i] = &autoBatch{}
	}
	a.cur = a.slots[0]
	return a
}

func (a *autoEncoder) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		if a.err != nil {
			return n - len(p), a.err
		}
		b := &a.cur.bufs[a.filled]
		k := min(len(p), autoChunk-len(*b))
		*b = append(*b, p[:k]...)
		p = p[k:]
		if err := a.chunkDone(); err != nil {
			return n - len(p), err
		}
	}
	return n, nil
}

// ReadFrom reads r into the chunks themselves, in large reads, until its
// end.
func (a *autoEncoder) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		if a.err != nil {
			return total, a.err
		}
		n, done, err := a.readChunk(r)
		total += n
		if done || err != nil {
			return total, err
		}
	}
}

// readChunk reads once from r into the chunk being filled, and sends the
// batch if that filled it; done is r's end.
func (a *autoEncoder) readChunk(r io.Reader) (n int64, done bool, err error) {
	b := &a.cur.bufs[a.filled]
	if cap(*b) < autoChunk {
		*b = append(make([]byte, 0, autoChunk), *b...)
	}
	k, rerr := r.Read((*b)[len(*b):autoChunk])
	*b = (*b)[:len(*b)+k]
	if err := a.chunkDone(); err != nil {
		return int64(k), false, err
	}
	if rerr == io.EOF {
		return int64(k), true, nil
	}
	return int64(k), false, rerr
}

// readFromPipe is ReadFrom for a source that is a pipe (a sending
// endpoint's stream, which hands it over), with add told of what is taken
// from it. A chunk to be stored, where w's pipe is known, is spliced from
// pipe to pipe as a frame of raw blocks, without entering zrep, as
// `--compress none` moves the whole stream; chunks to be compressed are
// read.
func (a *autoEncoder) readFromPipe(ctx context.Context, src *os.File, add func(int64)) (int64, error) {
	var total int64
	for {
		if a.err != nil {
			return total, a.err
		}
		if a.pipeOut != nil && a.filled == 0 && len(a.cur.bufs[0]) == 0 && (a.level == 0 || a.skip > 0) {
			if err := a.drain(); err != nil {
				return total, err
			}
			n, frame, blocked, eof, err := spliceRawFrame(ctx, a.pipeOut, src, autoChunk, add)
			total += n
			a.wire(frame)
			if err != nil {
				a.err = err
				return total, err
			}
			a.any = true
			a.in[a.level] += n
			if a.skip > 0 {
				a.skip--
			}
			if a.level > 0 {
				a.unshrunk += n
			}
			a.record(&autoBatch{level: a.level, in: n, out: frame, blocked: blocked, done: a.now()})
			if eof {
				return total, nil
			}
			continue
		}
		n, done, err := a.readChunk(src)
		total += n
		add(n)
		if done || err != nil {
			return total, err
		}
	}
}

// drain waits until the writer has written every batch, and ends a
// streaming frame still open, so that what comes next may go into w's
// pipe directly.
func (a *autoEncoder) drain() error {
	for ; a.inFlight > 0; a.inFlight-- {
		b := <-a.free
		a.record(b)
		b.sent, b.frames = false, 0
	}
	if a.err != nil {
		return a.err
	}
	if a.open > 0 {
		if _, err := a.w.Write(a.endStream(nil)); err != nil {
			a.err = err
		}
	}
	return a.err
}

// chunkDone counts the chunk being filled if it is full, and sends the
// batch once autoPar are.
func (a *autoEncoder) chunkDone() error {
	if len(a.cur.bufs[a.filled]) < autoChunk {
		return nil
	}
	if a.filled++; a.filled == autoPar {
		return a.flush()
	}
	return nil
}

// Close writes what is left and waits for the writer; it does not close w.
func (a *autoEncoder) Close() error {
	if a.filled < autoPar && len(a.cur.bufs[a.filled]) > 0 {
		a.filled++
	}
	if a.err == nil && (a.filled > 0 || !a.any) {
		a.filled = max(a.filled, 1)
		a.flush()
	}
	if a.err == nil && a.open > 0 {
		b := a.cur
		b.head, b.frames, b.in, b.level = a.endStream(b.head[:0]), 0, 0, a.level
		a.send(b)
	}
	if a.started {
		close(a.todo)
		for ; a.inFlight > 0; a.inFlight-- {
			a.record(<-a.free)
		}
	}
	for _, e := range a.encs {
		if e != nil {
			e.Close()
		}
	}
	return a.err
}

// flush makes the frames of the current batch's filled chunks, hands the
// batch to the writer, and takes the other one, once the writer is done
// with it. At the fastest level the chunks are compressed at once on as
// many cores, each a frame of its own; at the costlier levels, used where
// the link is slow, they go through one streaming encoder whose frame
// spans chunks, so that each chunk compresses with the history of those
// before it, as `--compress zstd` does.
func (a *autoEncoder) flush() error {
	b, k := a.cur, a.filled
	a.filled = 0
	b.level, b.frames, b.in = a.level, k, 0
	b.head = b.head[:0]
	tried := a.level > 0 && a.skip == 0
	switch {
	case tried && a.level >= autoStreamFrom:
		for i := range k {
			if err := a.streamed(b, i); err != nil {
				return err
			}
		}
	case tried:
		b.head = a.endStream(b.head)
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
				b.outs[i] = e.EncodeAll(b.bufs[i], b.outs[i][:0])
			}()
		}
		wg.Wait()
		for i := range k {
			a.framed(b, i, true)
		}
	default:
		b.head = a.endStream(b.head)
		for i := range k {
			a.framed(b, i, false)
		}
	}
	a.send(b)
	next := a.slots[0]
	if next == b {
		next = a.slots[1]
	}
	if next.sent {
		// The other batch was sent before: wait until it is written.
		a.record(<-a.free)
		a.inFlight--
	}
	for i := range next.bufs {
		next.bufs[i] = next.bufs[i][:0]
	}
	next.frames, next.sent = 0, false
	a.cur = next
	return a.err
}

// send hands b to the writer, started with the first batch.
func (a *autoEncoder) send(b *autoBatch) {
	if !a.started {
		a.started = true
		go a.writer()
	}
	b.sent = true
	a.todo <- b
	a.inFlight++
	a.any = true
}

// framed makes chunk i's frame on its own: outs[i] holds its compressed
// frame if tried; it is replaced by a stored one where that did not
// shrink.
func (a *autoEncoder) framed(b *autoBatch, i int, tried bool) {
	c := b.bufs[i]
	b.in += int64(len(c))
	a.in[a.level] += int64(len(c))
	switch {
	case tried && len(b.outs[i]) <= len(c)-len(c)/10:
		a.skipNext = 1
		return
	case tried:
		a.skip = a.skipNext
		a.skipNext = min(2*a.skipNext, autoMaxSkip)
	case a.skip > 0:
		a.skip--
	}
	if a.level > 0 {
		a.unshrunk += int64(len(c))
	}
	b.outs[i] = storedFrame(b.outs[i][:0], c)
}

// streamed puts chunk i through the streaming encoder of the level, in
// the frame open at that level or a new one; a chunk that did not shrink
// goes out as it came out of the encoder, and the next ones are stored
// (after the frame's end) untried.
func (a *autoEncoder) streamed(b *autoBatch, i int) error {
	c := b.bufs[i]
	out := b.outs[i][:0]
	defer func() { b.outs[i] = out }()
	b.in += int64(len(c))
	a.in[a.level] += int64(len(c))
	if a.skip > 0 {
		a.skip--
		a.unshrunk += int64(len(c))
		out = storedFrame(a.endStream(out), c)
		return nil
	}
	if a.open != a.level {
		out = a.endStream(out)
		e := a.streams[a.level]
		if e == nil {
			var err error
			// One goroutine: the costlier levels are used where the link
			// is slow, and its output then comes whole out of Flush.
			e, err = zstd.NewWriter(&a.sink, zstd.WithEncoderLevel(autoLevels[a.level]), zstd.WithEncoderConcurrency(1))
			if err != nil {
				return err
			}
			a.streams[a.level] = e
		} else {
			e.Reset(&a.sink)
		}
		a.open = a.level
	}
	start := len(out)
	a.sink.p = &out
	e := a.streams[a.level]
	if _, err := e.Write(c); err != nil {
		return err
	}
	if err := e.Flush(); err != nil {
		return err
	}
	a.sink.p = nil
	if len(out)-start <= len(c)-len(c)/10 {
		a.skipNext = 1
	} else {
		a.unshrunk += int64(len(c))
		a.skip = a.skipNext
		a.skipNext = min(2*a.skipNext, autoMaxSkip)
	}
	return nil
}

// endStream appends to out the end of the open streaming frame, if any.
func (a *autoEncoder) endStream(out []byte) []byte {
	if a.open == 0 {
		return out
	}
	a.sink.p = &out
	a.streams[a.open].Close() // writes to a slice: cannot fail
	a.sink.p = nil
	a.open = 0
	return out
}

// appendSink is where the streaming encoders write: the slice it points
// to, which flush sets for each chunk.
type appendSink struct{ p *[]byte }

func (s *appendSink) Write(b []byte) (int, error) {
	*s.p = append(*s.p, b...)
	return len(b), nil
}

// writer writes each batch's frames and gives the batch back with what
// the writes cost. After an error it writes no more.
func (a *autoEncoder) writer() {
	var err error
	for b := range a.todo {
		b.out, b.blocked = 0, 0
		for i := -1; i < b.frames && err == nil; i++ {
			f := b.head
			if i >= 0 {
				f = b.outs[i]
			}
			if len(f) == 0 {
				continue
			}
			t0 := a.now()
			_, err = a.w.Write(f)
			b.done = a.now()
			b.blocked += b.done.Sub(t0)
			b.out += int64(len(f))
		}
		b.err = err
		a.free <- b
	}
}

// record counts a written batch in the window of its level.
func (a *autoEncoder) record(b *autoBatch) {
	if b.err != nil && a.err == nil {
		a.err = b.err
	}
	if b.level != a.level || a.err != nil {
		return // sent before the level changed: not this level's rate
	}
	if a.settle > 0 {
		// The pipes and ssh's buffers still hold what the previous level
		// wrote (or the stream is starting): not yet this level's rate.
		if a.settle -= b.in; a.settle <= 0 {
			a.settle, a.winT = 0, b.done
		}
		return
	}
	a.winBlocked += b.blocked
	a.winIn += b.in
	a.winOut += b.out
	if a.winIn >= a.winSize && b.done.Sub(a.winT) >= autoMinWindow {
		a.endWindow(b.done)
	}
}

// endWindow records the window's rate and picks the next window's level,
// in two decisions.
//
// How hard to compress is decided as zstd's own --adapt does, by where the
// compressed output waits: output that waited for the link most of the
// window (the link is slower than zrep compresses) has the next costlier
// level used, and output that seldom did (the compressor is the
// bottleneck) the next cheaper one. Rates of windows seconds apart differ
// with the data more than the levels do; which side waits does not.
//
// Whether to compress at all is decided by the rates measured: the encoder
// keeps the faster of storing and compressing (storing, the cheaper,
// unless compressing is faster by autoBetter) and now and then tries the
// other, each time waiting twice as long if it lost (four times if it was
// less than half as fast), so that trying costs little on a long stream
// and a change of data or link is still noticed. Storing is not tried
// while the link is known to be the bottleneck: a costlier level got more
// of the stream through (its output waiting for the link all along), so
// the bytes on the wire are what limits, and storing would put more
// there. On a slow link a try of storing costs seconds, and its first
// MiBs vanish into the buffers on the way, which takes a settling of its
// own.
func (a *autoEncoder) endWindow(now time.Time) {
	dt := now.Sub(a.winT)
	r := float64(a.winIn) / dt.Seconds()
	blocked := a.winBlocked.Seconds() / dt.Seconds()
	kind := min(a.level, 1) // stored or compressed
	if a.rates[kind] == 0 {
		a.rates[kind] = r
	} else {
		a.rates[kind] = 0.5*a.rates[kind] + 0.5*r
	}
	waited := a.level > 0 && blocked > autoWaited
	if a.level > 0 {
		if below := a.levelRates[a.level-1]; a.level >= 2 && waited && below > 0 && r > below*autoBetter {
			a.linkBound = true
		}
		if blocked < autoFreed && a.level == 1 {
			// Even the fastest level's output seldom waited. (At a
			// costlier level the compressor may be the bottleneck
			// for a while, where the data compresses the most.)
			a.linkBound = false
		}
	}
	a.levelRates[a.level] = r
	if a.level > 0 {
		switch {
		case waited && a.clevel+1 < len(autoLevels):
			a.clevel++
		case blocked < autoFreed && a.clevel > 1:
			a.clevel--
		}
	}
	a.winIn, a.winOut, a.winBlocked, a.winT = 0, 0, 0, now
	a.windows++
	prev := a.level
	defer func() {
		a.winSize = autoWindow
		if a.level != prev {
			a.settle = autoSettle
			if a.level == 0 && blocked > autoFreed {
				// Compressed output waited: if it is for the link,
				// storing costs the ratio in time, so it is tried on a
				// short window, after enough to fill the buffers on the
				// way. (Where it did not wait, a short window would
				// measure the buffers more than the link.)
				a.settle, a.winSize = autoSettle/2, autoShortWindow
			}
		}
	}()
	if a.rates[0] == 0 {
		// Storing not measured yet: first see whether a costlier level
		// gets more through, where the fastest's output waited.
		switch {
		case a.linkBound:
			a.level = a.clevel
		case a.windows == 1 && blocked > autoFreed:
			a.clevel = max(a.clevel, 2)
			a.level = a.clevel
		default:
			a.level = 0
		}
		return
	}
	best := 0
	if a.rates[1] > a.rates[0]*autoBetter {
		best = 1
	}
	// lopsided: the other way is less than half as fast.
	lopsided := min(a.rates[0], a.rates[1]) < max(a.rates[0], a.rates[1])/2
	switch {
	case a.nextExplore == 0:
		// The first decision with both measured.
		a.nextExplore, a.exploreEvery = a.windows+autoExplore, autoExplore
		if lopsided {
			a.nextExplore, a.exploreEvery = a.windows+4*autoExplore, 4*autoExplore
		}
	case kind != a.best && kind == best:
		a.exploreEvery = autoExplore // the other won: look again sooner
	}
	a.best = best
	if a.windows >= a.nextExplore && !(best == 1 && a.linkBound) {
		best = 1 - best
		grow := 2
		if lopsided {
			grow = 4
		}
		a.exploreEvery = min(grow*a.exploreEvery, autoMaxExplore)
		a.nextExplore = a.windows + a.exploreEvery
	}
	a.level = best * a.clevel
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
