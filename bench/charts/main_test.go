package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Records are read in order; a later bar replaces an earlier one, a figure
// the run did not produce (null) is left out, and anything else is an
// error naming the line.
func TestRead(t *testing.T) {
	a := write(t, "a.tsv", "# comment\nchart\tr\tRate <a&b>\tMiB/s\thigher\tnote\nbar\tr\tlocal\tbare\t100\nbar\tr\tlocal\tzrep\t90\nbar\tr\tssh\tzrep\tnull\n")
	b := write(t, "b.tsv", "bar\tr\tlocal\tzrep\t120\nchart\tt\tTime\ts\tlower\t\nbar\tt\t25 fs\tzrep\t0.5\n")
	charts, order, err := read([]string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, " ") != "r t" {
		t.Fatalf("order %v", order)
	}
	r := charts["r"]
	if len(r.groups) != 1 || len(r.groups[0].bars) != 2 || r.groups[0].bars[1].value != 120 {
		t.Fatalf("chart r: %+v", r.groups[0])
	}
	if charts["t"].higherBetter {
		t.Fatal("chart t is lower-is-better")
	}
	s := svg(r)
	for _, want := range []string{"Rate &lt;a&amp;b&gt;", "higher is better", ">120<", "local, zrep: 120 MiB/s"} {
		if !strings.Contains(s, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	bad := write(t, "bad.tsv", "bar\tr\tlocal\tzrep\n")
	if _, _, err := read([]string{bad}); err == nil || !strings.Contains(err.Error(), "bad.tsv:1") {
		t.Fatalf("malformed record: err %v", err)
	}
}

func TestTicks(t *testing.T) {
	for _, tc := range []struct {
		max  float64
		last float64
	}{{0.905, 1}, {68.4, 80}, {222, 250}, {11.2, 12}} {
		tk := ticks(tc.max)
		if tk[0] != 0 || tk[len(tk)-1] != tc.last || len(tk) > 8 {
			t.Errorf("ticks(%v) = %v, want 0 .. %v", tc.max, tk, tc.last)
		}
	}
}
