package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/zrep/zrep/endpoints"
	"github.com/zrep/zrep/pdu"
	"github.com/zrep/zrep/replication"
)

// linkFlag is --compress, a flag of plan (which shows it) and run.
func linkFlag() cli.Flag {
	return &cli.StringFlag{Name: "compress", Value: string(endpoints.DefaultCodec), Usage: "compress streams that cross ssh with `CODEC`: zstd, lz4, gzip or none (local to local never compresses)"}
}

// linkRunFlags are run's flags for the link.
func linkRunFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "bwlimit", Usage: "limit the bytes on the wire to `RATE` per second, e.g. 10M or 500K (default: none)"},
		&cli.DurationFlag{Name: "stall-timeout", Value: replication.DefaultStallTimeout, Usage: "end a transfer that moves no byte for `DURATION` and retry it (0: never)"},
	}
}

// link is the parsed link settings of a job.
type link struct {
	codec endpoints.Codec
	limit *endpoints.Limiter
}

// parseLink reads --compress, and on run --bwlimit and --stall-timeout
// into cfg. Every error it returns is a usage error.
func parseLink(c *cli.Context, cfg *replication.Config) (link, error) {
	var l link
	codec, err := endpoints.ParseCodec(c.String("compress"))
	if err != nil {
		return l, usageErrorf("%v", err)
	}
	l.codec = codec
	if c.IsSet("bwlimit") || c.String("bwlimit") != "" {
		rate, err := parseRate(c.String("bwlimit"))
		if err != nil {
			return l, usageErrorf("--bwlimit: %v", err)
		}
		l.limit = endpoints.NewLimiter(rate)
	}
	if d := c.Duration("stall-timeout"); d < 0 {
		return l, usageErrorf("--stall-timeout must not be negative, got %s", d)
	} else {
		cfg.StallTimeout = d
	}
	return l, nil
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

// options gives each side its part of the link. Only a remote side
// compresses: local to local nothing crosses a link. The rate limit goes
// to one side, the one whose link zrep feeds last: a remote destination,
// else a remote source, else the local destination.
func (l link) options(src, dst endpoints.Side) (srcLink, dstLink endpoints.Link) {
	srcLink.Compress, dstLink.Compress = l.codec, l.codec
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
			where = append(where, fmt.Sprintf("%s compresses on %s, zrep decompresses", l.codec, src.Host))
		}
		if !dst.Local() {
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
