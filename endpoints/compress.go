package endpoints

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Codec is how a stream is compressed while it crosses ssh (--compress).
type Codec string

// The codecs. Each compresses fast, since the point is to spare the link,
// not to archive: lz4 at level 1, gzip at its fastest, zstd at level 3,
// its own default (why level 3: docs/performance.md, "Over a link").
const (
	CodecNone Codec = "none"
	CodecZstd Codec = "zstd"
	CodecLZ4  Codec = "lz4"
	CodecGzip Codec = "gzip"
	// CodecAuto compresses with zstd where that makes the stream get
	// through faster and stores it (in zstd's raw blocks) where not; see
	// autoEncoder. Its streams are zstd streams to every decoder.
	CodecAuto Codec = "auto"
)

// DefaultCodec is --compress's default: none. Where the link is faster
// than a core can compress, the codec is the bottleneck and slows a push
// down more than the spec allows the default; on a link slower than the
// codec --compress zstd is the one to choose. The measurements are in
// docs/performance.md, "The default codec, on the unshaped lab loopback".
const DefaultCodec = CodecNone

// ParseCodec reads a --compress value.
func ParseCodec(s string) (Codec, error) {
	switch c := Codec(strings.ToLower(s)); c {
	case CodecNone, CodecZstd, CodecLZ4, CodecGzip, CodecAuto:
		return c, nil
	}
	return "", fmt.Errorf("--compress must be auto, zstd, lz4, gzip or none, not %q", s)
}

// compresses reports whether c changes the stream at all.
func (c Codec) compresses() bool { return c != "" && c != CodecNone }

// program is the command that implements c on a remote side.
func (c Codec) program() string {
	if c == CodecAuto {
		return string(CodecZstd)
	}
	return string(c)
}

// compressArgv is the program that compresses stdin to stdout on a remote
// sending side.
func (c Codec) compressArgv() []string {
	switch c {
	case CodecZstd:
		return []string{"zstd", "-3", "-T0", "-q", "-c"}
	case CodecAuto:
		// zstd's own adaptation: its level follows how fast its output
		// is taken.
		return []string{"zstd", "--adapt=min=1,max=6", "-q", "-c"}
	case CodecLZ4:
		return []string{"lz4", "-1", "-q", "-c"}
	case CodecGzip:
		return []string{"gzip", "-1", "-c"}
	}
	return nil
}

// decompressArgv is the program that decompresses stdin to stdout on a
// remote receiving side.
func (c Codec) decompressArgv() []string {
	switch c {
	case CodecZstd, CodecAuto:
		return []string{"zstd", "-d", "-q", "-c"}
	case CodecLZ4:
		return []string{"lz4", "-d", "-q", "-c"}
	case CodecGzip:
		return []string{"gzip", "-d", "-c"}
	}
	return nil
}

// versionArgv asks the program for its version: what the probe runs to
// learn whether it is there.
func (c Codec) versionArgv() []string {
	return []string{c.program(), "--version"}
}

// newEncoder compresses what is written to it into w, inside zrep, for a
// side that sends from this machine. Close flushes the end of the stream
// but does not close w.
func (c Codec) newEncoder(w io.Writer) (io.WriteCloser, error) {
	switch c {
	case CodecAuto:
		return newAutoEncoder(w), nil
	case CodecZstd:
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault))
	case CodecLZ4:
		zw := lz4.NewWriter(w)
		if err := zw.Apply(lz4.CompressionLevelOption(lz4.Fast), lz4.ConcurrencyOption(-1)); err != nil {
			return nil, err
		}
		return zw, nil
	case CodecGzip:
		return gzip.NewWriterLevel(w, gzip.BestSpeed)
	}
	return nil, fmt.Errorf("codec %q has no encoder", c)
}

// newDecoder decompresses r, inside zrep, for a side that receives on
// this machine. Close releases the decoder; it does not close r.
func (c Codec) newDecoder(r io.Reader) (io.ReadCloser, error) {
	switch c {
	case CodecZstd, CodecAuto:
		d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(2))
		if err != nil {
			return nil, err
		}
		return zstdDecoder{d}, nil
	case CodecLZ4:
		return io.NopCloser(lz4.NewReader(r)), nil
	case CodecGzip:
		d, err := gzip.NewReader(r)
		if err != nil {
			return nil, err
		}
		return d, nil
	}
	return nil, fmt.Errorf("codec %q has no decoder", c)
}

// zstdDecoder adapts *zstd.Decoder, whose Close returns nothing.
type zstdDecoder struct{ *zstd.Decoder }

func (d zstdDecoder) Close() error { d.Decoder.Close(); return nil }

// errCodec marks a stream that zrep could not compress or decompress: a
// damaged or cut compressed stream.
var errCodec = errors.New("compressed stream damaged")
