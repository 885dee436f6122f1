package main

import (
	"testing"
	"time"

	"github.com/zrep/zrep/endpoints"
)

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{
		"10M": 10 << 20, "500K": 500 << 10, "500k": 500 << 10, "1.5M": 3 << 19,
		"2G": 2 << 30, "4096": 4096, "10MB": 10 << 20, "10M/s": 10 << 20,
	} {
		if got, err := parseRate(in); err != nil || got != want {
			t.Errorf("parseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "-1M", "fast", "10X", "100"} {
		if _, err := parseRate(bad); err == nil {
			t.Errorf("parseRate(%q) accepted", bad)
		}
	}
}

func TestParseBuffer(t *testing.T) {
	for in, want := range map[string]int64{
		"16M": 16 << 20, "1M": 1 << 20, "1G": 1 << 30, "0": 0, "none": 0, "2048K": 2 << 20,
	} {
		if got, err := parseBuffer(in); err != nil || got != want {
			t.Errorf("parseBuffer(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "512K", "2G", "-16M", "big", "16X"} {
		if _, err := parseBuffer(bad); err == nil {
			t.Errorf("parseBuffer(%q) accepted", bad)
		}
	}
}

// Only a remote side compresses; the limit goes to exactly one side.
func TestLinkOptions(t *testing.T) {
	local := endpoints.Side{Dataset: "tank/a"}
	remote := endpoints.Side{Host: "h", Dataset: "tank/b"}
	lim := endpoints.NewLimiter(1 << 20)
	l := link{codec: endpoints.CodecZstd, limit: lim}
	for _, c := range []struct {
		name             string
		src, dst         endpoints.Side
		srcLim, dstLimit bool
	}{
		{"push", local, remote, false, true},
		{"pull", remote, local, true, false},
		{"remote to remote", remote, remote, false, true},
		{"local", local, local, false, true},
	} {
		s, d := l.options(c.src, c.dst)
		if (s.Limit != nil) != c.srcLim || (d.Limit != nil) != c.dstLimit {
			t.Errorf("%s: limit on source %v, destination %v", c.name, s.Limit != nil, d.Limit != nil)
		}
	}
	if got := l.describe(local, local); got != "local to local, not compressed, limited to 1048576 bytes/s" {
		t.Errorf("describe: %q", got)
	}
}

func TestWireRate(t *testing.T) {
	var w wireRate
	t0 := time.Unix(1000, 0)
	if got := w.describe(0, t0); got != "" {
		t.Errorf("first reading shows %q", got)
	}
	if got := w.describe(1<<20, t0.Add(time.Second)); got != "" {
		t.Errorf("before a full window: %q", got)
	}
	if got := w.describe(4<<20, t0.Add(2*time.Second)); got != " (wire 2.0 MiB/s)" {
		t.Errorf("got %q", got)
	}
}
