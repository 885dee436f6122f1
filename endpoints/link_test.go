package endpoints

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zrep/zrep/pdu"
)

// The limiter never lets more than the rate (plus its bucket) pass, and
// the wire count is what passed. Only the lower bound is asserted: a slow
// machine can make it slower, never faster.
func TestLimiterLowerBound(t *testing.T) {
	const rate = 8 << 20
	lim := NewLimiter(rate)
	if lim.chunk != rate/10 {
		t.Fatalf("bucket %d, want a tenth of a second's bytes", lim.chunk)
	}
	data := make([]byte, 4<<20)
	var wire pdu.WireCount
	var out bytes.Buffer
	w := &wireWriter{ctx: context.Background(), w: &out, wire: &wire, lim: lim}
	start := time.Now()
	if _, err := io.Copy(w, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if min := time.Duration(float64(len(data)-lim.chunk) / rate * float64(time.Second)); took < min {
		t.Errorf("%d bytes at %d/s took %s, less than %s", len(data), rate, took, min)
	}
	if n, ok := wire.Load(); !ok || n != int64(len(data)) || out.Len() != len(data) {
		t.Errorf("wire count %d (%v), written %d; want %d", n, ok, out.Len(), len(data))
	}

	var rwire pdu.WireCount
	r := &wireReader{ctx: context.Background(), r: bytes.NewReader(data), wire: &rwire, lim: NewLimiter(rate)}
	start = time.Now()
	n, err := io.Copy(io.Discard, r)
	if err != nil || n != int64(len(data)) {
		t.Fatal(n, err)
	}
	if took := time.Since(start); took < time.Duration(float64(len(data)-2*lim.chunk)/rate*float64(time.Second)) {
		t.Errorf("reading %d bytes at %d/s took only %s", n, rate, took)
	}
	if got, _ := rwire.Load(); got != n {
		t.Errorf("read wire count %d, want %d", got, n)
	}
}

// A limited wait ends with its context.
func TestLimiterHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := &wireWriter{ctx: ctx, w: io.Discard, lim: NewLimiter(4 << 10)}
	if _, err := w.Write(make([]byte, 64<<10)); err == nil {
		t.Fatal("a write under a cancelled context passed")
	}
}

// fakeSSH puts an `ssh` first on PATH that runs the remote command here,
// under a PATH holding only sh and env, so that no codec program is found.
func fakeSSH(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, prog := range []string{"sh", "env"} {
		p, err := exec.LookPath(prog)
		if err != nil {
			t.Skip(err)
		}
		if err := os.Symlink(p, filepath.Join(bin, prog)); err != nil {
			t.Fatal(err)
		}
	}
	script := "#!/bin/sh\nfor a; do last=$a; done\ncase \" $* \" in *' -N '*|*' -O '*) exit 0 ;; esac\nPATH=" + bin + " exec sh -c \"$last\"\n"
	if err := os.WriteFile(filepath.Join(dir, "ssh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
}

// A codec program missing on a remote side is a permanent error that names
// it, the host and the way out, before any stream starts.
func TestMissingCompressorIsRefusedFirst(t *testing.T) {
	fakeSSH(t)
	e := New(Side{Host: "nas", Dataset: "tank/a"}, Options{Role: "source", Link: Link{Compress: CodecZstd}})
	defer e.Close()
	err := e.CheckLink(context.Background())
	if err == nil || pdu.ClassOf(err) != pdu.Permanent {
		t.Fatalf("CheckLink: %v (%v)", err, pdu.ClassOf(err))
	}
	for _, want := range []string{"zstd", "nas", "not installed", "--compress"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	_, serr := e.Send(context.Background(), &pdu.SendReq{Filesystem: "tank/a", To: &pdu.FilesystemVersion{Name: "s1"}})
	if serr == nil || serr.Error() != err.Error() {
		t.Errorf("Send started anyway: %v", serr)
	}
	// Without compression nothing is asked.
	e2 := New(Side{Host: "nas", Dataset: "tank/a"}, Options{Role: "source", Link: Link{Compress: CodecNone}})
	defer e2.Close()
	if err := e2.CheckLink(context.Background()); err != nil {
		t.Errorf("CheckLink without compression: %v", err)
	}
}
