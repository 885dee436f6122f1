package endpoints

import (
	"errors"
	"io"

	"github.com/klauspost/compress/zstd"
)

// Before a remote side's receive starts under --compress auto, zrep reads
// the start of the stream and tries a few of its chunks at zstd's fastest
// level. Where none shrinks by a tenth (random data, data zfs compressed
// already, raw encrypted streams), the stream crosses as it is: no zstd
// frames, no `zstd -d` on the remote side, the same pipeline as
// --compress none. Only there does the choice cost something: that
// decompressor copies every byte once more on the receiving host, stored
// or not, which on a link faster than its cores is a tenth of the rate.
// Where a chunk shrinks, the stream goes through autoEncoder, which
// still stores what does not shrink further on.
const (
	// autoSample is how much of the stream is read before the choice.
	autoSample = 8 * autoChunk
	// autoSampleTries chunks of it, spread over it, are compressed.
	autoSampleTries = 4
)

// sampleAuto reads the start of stream and reports whether it compresses;
// in gives the whole stream, that start included. A read error other than
// the stream's end comes back from in once the start has been read from
// it.
func sampleAuto(stream io.Reader) (in io.Reader, compresses bool) {
	buf := make([]byte, autoSample)
	n, err := io.ReadFull(stream, buf)
	buf = buf[:n]
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = nil
	}
	return &prefixed{head: buf, err: err, r: stream}, shrinks(buf)
}

// shrinks reports whether any of autoSampleTries chunks of b, spread over
// it, shrinks by a tenth at zstd's fastest level (autoEncoder's rule for
// storing a chunk).
func shrinks(b []byte) bool {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
	if err != nil {
		return true // let autoEncoder decide
	}
	defer enc.Close()
	chunks := (len(b) + autoChunk - 1) / autoChunk
	stride := max(1, chunks/autoSampleTries)
	var out []byte
	for i := 0; i < chunks; i += stride {
		c := b[i*autoChunk : min(len(b), (i+1)*autoChunk)]
		out = enc.EncodeAll(c, out[:0])
		if len(out) <= len(c)-len(c)/10 {
			return true
		}
	}
	return false
}

// prefixed is a stream whose start was read already: head, then the
// error that ended that read if any, else the rest of r.
type prefixed struct {
	head []byte
	err  error
	r    io.Reader
}

func (p *prefixed) Read(b []byte) (int, error) {
	if len(p.head) > 0 {
		n := copy(b, p.head)
		p.head = p.head[n:]
		if len(p.head) == 0 {
			p.head = nil
		}
		return n, nil
	}
	if p.err != nil {
		return 0, p.err
	}
	return p.r.Read(b)
}

// WriteTo writes the head, then lets r write itself where it can (an
// endpoint's stream splices into a receiving process's pipe, or hands its
// pipe to autoEncoder).
func (p *prefixed) WriteTo(w io.Writer) (int64, error) {
	var total int64
	if len(p.head) > 0 {
		n, err := w.Write(p.head)
		total += int64(n)
		p.head = p.head[n:]
		if err != nil {
			return total, err
		}
	}
	p.head = nil
	if p.err != nil {
		return total, p.err
	}
	if wt, ok := p.r.(io.WriterTo); ok {
		n, err := wt.WriteTo(w)
		return total + n, err
	}
	n, err := copyChunks(w, p.r)
	return total + n, err
}
