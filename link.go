package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/zrep/zrep/endpoints"
	"github.com/zrep/zrep/pdu"
)

// link is the parsed link settings of a job.
type link struct {
	codec endpoints.Codec
	limit *endpoints.Limiter
	// buffer is a remote side's stream buffer in bytes (--buffer), 0 for
	// none.
	buffer int64
}

// parseRate reads a rate in bytes per second: a number with an optional
// suffix K, M or G (powers of 1024; a trailing B or /s is allowed).
func parseRate(s string) (int64, error) {
	t := strings.TrimSpace(s)
	t = strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(t), "/S"), "B")
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mult, t = 1<<10, t[:n-1]
		case 'M':
			mult, t = 1<<20, t[:n-1]
		case 'G':
			mult, t = 1<<30, t[:n-1]
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 || v*float64(mult) < 1024 || v*float64(mult) > 1<<50 {
		return 0, fmt.Errorf("%q is not a rate of at least 1K bytes per second, such as 10M or 500K", s)
	}
	return int64(v * float64(mult)), nil
}

// parseBuffer reads --buffer: 0 (none), or a size from 1M to 1G with an
// optional suffix K, M or G (powers of 1024).
func parseBuffer(s string) (int64, error) {
	if t := strings.TrimSpace(s); t == "0" || strings.EqualFold(t, "none") {
		return 0, nil
	}
	n, err := parseRate(s)
	if err != nil || n < endpoints.MinBuffer || n > endpoints.MaxBuffer {
		return 0, fmt.Errorf("%q is not a buffer size from 1M to 1G, such as 16M, or 0 for none", s)
	}
	return n, nil
}

// options gives each side its part of the link. Only a remote side
// compresses: local to local nothing crosses a link. The rate limit goes
// to one side, the one whose link zrep feeds last: a remote destination,
// else a remote source, else the local destination.
func (l link) options(src, dst endpoints.Side) (srcLink, dstLink endpoints.Link) {
	srcLink.Compress, dstLink.Compress = l.codec, l.codec
	srcLink.Buffer, dstLink.Buffer = l.buffer, l.buffer
	switch {
	case !dst.Local() || src.Local():
		dstLink.Limit = l.limit
	default:
		srcLink.Limit = l.limit
	}
	return srcLink, dstLink
}

// describe says, for the plan, how streams will cross the link.
func (l link) describe(src, dst endpoints.Side) string {
	var parts []string
	if src.Local() && dst.Local() {
		parts = append(parts, "local to local, not compressed")
	} else if l.codec == endpoints.CodecNone {
		parts = append(parts, "not compressed")
	} else {
		var where []string
		if !src.Local() {
			prog := string(l.codec)
			if l.codec == endpoints.CodecAuto {
				prog = "zstd --adapt"
			}
			where = append(where, fmt.Sprintf("%s compresses on %s, zrep decompresses", prog, src.Host))
		}
		switch {
		case dst.Local():
		case l.codec == endpoints.CodecAuto:
			// endpoints.sampleAuto decides, stream by stream.
			where = append(where, fmt.Sprintf("a stream whose start shrinks: zrep compresses, zstd decompresses on %s; any other crosses as it is", dst.Host))
		default:
			where = append(where, fmt.Sprintf("zrep compresses, %s decompresses on %s", l.codec, dst.Host))
		}
		parts = append(parts, strings.Join(where, "; "))
	}
	if l.limit != nil {
		parts = append(parts, fmt.Sprintf("limited to %d bytes/s", l.limit.BytesPerSec()))
	}
	return strings.Join(parts, ", ")
}

// checkLink makes sure each remote side has the codec's program before
// anything is sent.
// A connection that fails is left to the run's retries; only a verdict
// on the program itself (missing, broken) stops the run here.
func checkLink(ctx context.Context, sides ...*endpoints.Endpoint) error {
	for _, e := range sides {
		if err := e.CheckLink(ctx); err != nil && pdu.ClassOf(err) == pdu.Permanent {
			return err
		}
	}
	return nil
}
