package endpoints

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/time/rate"

	"github.com/zrep/zrep/pdu"
)

// Link is how a side's streams cross the link between zrep and the side.
// Only a remote side compresses; the codec runs as a program on the remote
// machine and inside zrep on this one. A local side's stream never crosses
// a link, so it moves as it is (spliced from pipe to pipe).
type Link struct {
	// Compress is the codec of a remote side's streams; "" or CodecNone
	// leaves them as they are.
	Compress Codec
	// Limit, when set, bounds the rate of the bytes this side moves
	// through zrep: over ssh for a remote side (compressed bytes, if they
	// are), into zfs receive for a local destination. Give it to one
	// side of a run only (see NewLimiter).
	Limit *Limiter
	// Buffer, when positive, is the memory of the buffer a remote side's
	// streams run through (mbuffer), where mbuffer is installed there:
	// after zfs send and its compressor, or before the decompressor and
	// zfs receive (buffer.go).
	Buffer int64
}

// Limiter bounds a rate of bytes, shared by every stream of a run.
type Limiter struct {
	bytesPerSec int64
	l           *rate.Limiter
	chunk       int
}

// NewLimiter limits to bytesPerSec. Its bucket holds a tenth of a
// second's bytes (at least 4 KiB, at most 1 MiB), so that over any 10 s
// no more than 1 % beyond the rate passes; every transfer is cut into
// pieces of at most that size.
func NewLimiter(bytesPerSec int64) *Limiter {
	burst := min(max(bytesPerSec/10, 4<<10), 1<<20)
	return &Limiter{bytesPerSec: bytesPerSec, l: rate.NewLimiter(rate.Limit(bytesPerSec), int(burst)), chunk: int(burst)}
}

// BytesPerSec is the limit.
func (l *Limiter) BytesPerSec() int64 { return l.bytesPerSec }

// wait blocks until n more bytes (n <= l.chunk) may pass.
func (l *Limiter) wait(ctx context.Context, n int) error {
	if l == nil || n <= 0 {
		return nil
	}
	return l.l.WaitN(ctx, n)
}

// wireWriter passes writes to w in pieces the limiter allows, counting them.
type wireWriter struct {
	ctx  context.Context
	w    io.Writer
	wire *pdu.WireCount
	lim  *Limiter
}

func (w *wireWriter) Write(b []byte) (int, error) {
	var done int
	for len(b) > 0 {
		k := len(b)
		if w.lim != nil {
			k = min(k, w.lim.chunk)
			if err := w.lim.wait(w.ctx, k); err != nil {
				return done, err
			}
		}
		n, err := w.w.Write(b[:k])
		done += n
		w.wire.Add(int64(n))
		if err != nil {
			return done, err
		}
		b = b[k:]
	}
	return done, nil
}

// wireReader reads from r in pieces the limiter allows, counting them.
type wireReader struct {
	ctx  context.Context
	r    io.Reader
	wire *pdu.WireCount
	lim  *Limiter
}

func (r *wireReader) Read(b []byte) (int, error) {
	if r.lim != nil && len(b) > r.lim.chunk {
		b = b[:r.lim.chunk]
	}
	n, err := r.r.Read(b)
	r.wire.Add(int64(n))
	if n > 0 && r.lim != nil {
		if werr := r.lim.wait(r.ctx, n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}

// compresses reports whether this side's streams are compressed: only a
// remote side's are.
func (e *Endpoint) compresses() bool {
	return e.ssh != nil && e.opts.Link.Compress.compresses()
}

// linkCodec is the codec of this side's streams: --compress's on a remote
// side, none on a local one.
func (e *Endpoint) linkCodec() Codec {
	if !e.compresses() {
		return CodecNone
	}
	return e.opts.Link.Compress
}

// CheckLink makes sure the side can take part in the link as configured:
// on a remote side that compresses, the codec's program must be there. It
// runs the program once (`zstd --version`) and remembers the answer, so
// that a missing program is a clear, permanent error before any stream
// starts. Send and Receive call it too.
func (e *Endpoint) CheckLink(ctx context.Context) error {
	if !e.compresses() {
		return nil
	}
	e.linkCheck.mu.Lock()
	defer e.linkCheck.mu.Unlock()
	if e.linkCheck.done {
		return e.linkCheck.err
	}
	c := e.opts.Link.Compress
	err := e.run(ctx, c.versionArgv(), nil, io.Discard)
	var ce *CommandError
	switch {
	case err == nil:
	case errors.As(err, &ce) && (ce.ExitCode == 127 || ce.ExitCode == 126):
		err = pdu.PermanentError(fmt.Errorf("--compress %s needs the program %s on %s, which is not installed there (or not in the PATH of its ssh sessions): install it (apt-get install %s) or choose another --compress",
			c, c.program(), e.side.Host, c.program()))
	case pdu.IsRetryable(err):
		// A lost connection says nothing about the program: ask again later.
		return fmt.Errorf("check --compress %s on %s: %w", c, e.side.Host, err)
	default:
		err = pdu.PermanentError(fmt.Errorf("--compress %s: %s --version on %s failed: %w", c, c.program(), e.side.Host, err))
	}
	e.linkCheck.done, e.linkCheck.err = true, err
	return err
}

// linkCheck remembers CheckLink's verdict.
type linkCheck struct {
	mu   sync.Mutex
	done bool
	err  error
	// bufferKnown: whether mbuffer is installed is known (buffer).
	bufferKnown, buffer bool
}

// streamArgv wraps the zfs argv of a stream for this side. A remote stream
// runs as a pipeline (remotePipeline) with codec c's program (c is
// linkCodec's, or none where --compress auto chose so) after zfs
// send or before zfs receive, and the buffer (mbuffer) at the pipeline's
// end that meets the link, and reports its process group so that it
// can be ended whole; onKill does that. Locally argv is run as it is.
func (e *Endpoint) streamArgv(ctx context.Context, zfsArgv []string, send bool, c Codec) (argv []string, onKill func(stderr string), err error) {
	if e.ssh == nil {
		return zfsArgv, nil, nil
	}
	zfsArgv = e.remoteArgv(zfsArgv)
	programs := [][]string{zfsArgv}
	if c.compresses() {
		if err := e.CheckLink(ctx); err != nil {
			return nil, nil, err
		}
		if send {
			programs = append(programs, c.compressArgv())
		} else {
			programs = [][]string{c.decompressArgv(), zfsArgv}
		}
	}
	if e.buffers(ctx) {
		if send {
			programs = append(programs, bufferArgv(e.opts.Link.Buffer))
		} else {
			programs = append([][]string{bufferArgv(e.opts.Link.Buffer)}, programs...)
		}
	}
	argv, err = e.ssh.wrapScript(ctx, remotePipeline(programs))
	if err != nil {
		return nil, nil, err
	}
	return argv, e.ssh.killGroup, nil
}

// linkSendStream puts the link's work on a send stream read here: the
// wire bytes counted and limited, and decompressed when the side
// compresses. Without either, s is returned as it is and keeps its splice
// fast path.
func (e *Endpoint) linkSendStream(ctx context.Context, s *sendStream, wire *pdu.WireCount) pdu.Stream {
	lim := e.opts.Link.Limit
	if !e.compresses() && lim == nil {
		return s
	}
	if e.compresses() {
		wire.Add(0)
	} else {
		wire = nil // the stream's own count is the wire's
	}
	return &linkStream{s: s, codec: e.opts.Link.Compress, wire: &wireReader{ctx: ctx, r: s, wire: wire, lim: lim}}
}

// linkStream is a send stream that crossed the link compressed or
// limited: Read gives the zfs stream.
type linkStream struct {
	s     *sendStream
	codec Codec
	wire  *wireReader

	dec    io.ReadCloser // created at the first Read (gzip reads a header)
	decErr error
	eof    atomic.Bool
}

func (l *linkStream) Read(b []byte) (int, error) {
	if !l.codec.compresses() {
		n, err := l.wire.Read(b)
		if err == io.EOF {
			l.eof.Store(true)
		}
		return n, err
	}
	if l.decErr != nil {
		return 0, l.decErr
	}
	if l.dec == nil {
		d, err := l.codec.newDecoder(l.wire)
		if err != nil {
			l.decErr = fmt.Errorf("%s: %w: %v", l.codec, errCodec, err)
			return 0, l.decErr
		}
		l.dec = d
	}
	n, err := l.dec.Read(b)
	switch {
	case err == io.EOF:
		// The compressed stream ended; what is left on the wire (nothing,
		// normally) is read so that the sender ends on its own.
		if _, derr := io.Copy(io.Discard, l.wire); derr != nil {
			l.decErr = derr
			return n, derr
		}
		l.eof.Store(true)
	case err != nil && !l.s.eof.Load():
		// A damaged stream, or a cut one: the decoder's complaint.
		l.decErr = fmt.Errorf("decompress (%s) the stream from %s: %w: %v", l.codec, describe(l.s.p.zfsArgv, l.s.p.r.host), errCodec, err)
		return n, l.decErr
	case err != nil:
		// The wire ended inside a compressed frame.
		l.decErr = fmt.Errorf("decompress (%s) the stream from %s: %w: it ends early (%v)", l.codec, describe(l.s.p.zfsArgv, l.s.p.r.host), errCodec, err)
		return n, l.decErr
	}
	return n, err
}

// WriteTo copies in large chunks.
func (l *linkStream) WriteTo(w io.Writer) (int64, error) {
	return copyChunks(w, l)
}

// copyChunks copies r to w through one 1 MiB buffer, with r's own Read (a
// plain loop, so that io.Copy does not call WriteTo back).
func copyChunks(w io.Writer, r io.Reader) (int64, error) {
	buf := make([]byte, 1<<20)
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Close ends the sender, as sendStream's Close does; a sender that ended
// well behind a stream that could not be decompressed is still a
// failure, and a retryable one.
func (l *linkStream) Close() error {
	err := l.s.Close()
	if l.dec != nil {
		l.dec.Close()
	}
	if err == nil && l.decErr != nil {
		err = pdu.RetryableError(l.decErr)
	}
	return err
}

// linkReceiveInput is what a receiving side feeds its zfs receive (or the
// ssh carrying it): stream compressed for the link and counted and limited
// on the wire where the side compresses; limited where only a limit is
// set; stream itself otherwise. afterStart must be called once the
// process started (or failed to).
//
// Compressed, the encoder writes straight into the pipe that is the
// child's stdin (1 MiB, growPipe), with no copy in between; closing the
// parent's read end after the start means the encoder's writes fail at
// once if the child goes away.
func (e *Endpoint) linkReceiveInput(ctx context.Context, stream io.Reader, wire *pdu.WireCount, c Codec) (in io.Reader, afterStart func(), err error) {
	lim := e.opts.Link.Limit
	if !c.compresses() {
		if lim == nil {
			return stream, func() {}, nil
		}
		return &wireReader{ctx: ctx, r: stream, lim: lim}, func() {}, nil
	}
	wire.Add(0)
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	growPipe(pw)
	go func() {
		ww := &wireWriter{ctx: ctx, w: pw, wire: wire, lim: lim}
		enc, err := c.newEncoder(ww)
		if err == nil {
			if a, ok := enc.(*autoEncoder); ok {
				if canSpliceStored && lim == nil {
					a.pipeOut, a.wire = pw, wire.Add
				}
				if wt, ok := stream.(io.WriterTo); ok {
					// An endpoint's stream hands its pipe over
					// (readFromPipe).
					_, err = wt.WriteTo(a)
				} else {
					_, err = a.ReadFrom(stream)
				}
			} else {
				_, err = io.Copy(enc, stream)
			}
			if err == nil {
				err = enc.Close()
			}
			if a, ok := enc.(*autoEncoder); ok {
				e.log.Debug("--compress auto", a.summary()...)
			}
		}
		// An error ends the compressed stream early, which the remote
		// decompressor and zfs receive report; the sender's own error
		// comes from its Close.
		pw.Close()
	}()
	return pr, func() { pr.Close() }, nil
}
