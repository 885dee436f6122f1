package endpoints

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
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
	fakeSSHWith(t, nil)
}

// fakeSSHWith is fakeSSH whose "remote" PATH also has the scripts of
// programs, by name.
func fakeSSHWith(t *testing.T, programs map[string]string) {
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
	for name, body := range programs {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
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

// A remote side's streams run through mbuffer where it is installed: at
// the end of the pipeline that meets the link, after the compressor of a
// send and before the decompressor of a receive. Where it is not, or with
// no buffer asked for, they run without it, and nothing fails.
func TestBufferWhereMbufferIs(t *testing.T) {
	ctx := context.Background()
	zfsSend := []string{"zfs", "send", "tank/a@s1"}
	zfsRecv := []string{"zfs", "receive", "-u", "tank/a"}
	programs := func(t *testing.T, e *Endpoint, zfsArgv []string, send bool) [][]string {
		t.Helper()
		argv, _, err := e.streamArgv(ctx, zfsArgv, send, e.linkCodec())
		if err != nil {
			t.Fatalf("streamArgv: %v", err)
		}
		req, err := ParseRequest(argv[len(argv)-1])
		if err != nil {
			t.Fatalf("ParseRequest: %v", err)
		}
		groups, err := req.Groups()
		if err != nil {
			t.Fatal(err)
		}
		return groups
	}
	buf := bufferArgv(DefaultBuffer)
	t.Run("installed", func(t *testing.T) {
		fakeSSHWith(t, map[string]string{"mbuffer": "echo mbuffer version R20230301", "zstd": "echo zstd v1.5.4"})
		for _, c := range []struct {
			codec Codec
			send  bool
			want  [][]string
		}{
			{CodecNone, true, [][]string{zfsSend, buf}},
			{CodecNone, false, [][]string{buf, zfsRecv}},
			{CodecZstd, true, [][]string{zfsSend, CodecZstd.compressArgv(), buf}},
			{CodecZstd, false, [][]string{buf, CodecZstd.decompressArgv(), zfsRecv}},
		} {
			e := New(Side{Host: "nas", Dataset: "tank/a"}, Options{Role: "source", Link: Link{Compress: c.codec, Buffer: DefaultBuffer}})
			defer e.Close()
			zfsArgv := zfsRecv
			if c.send {
				zfsArgv = zfsSend
			}
			if got := programs(t, e, zfsArgv, c.send); !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s, send %v: %q, want %q", c.codec, c.send, got, c.want)
			}
			// What zrep sends, serve takes.
			p := ServePolicy{Role: ReceiveOnly, Dataset: "tank/a"}
			if c.send {
				p.Role = SendOnly
			}
			if err := p.checkPipeline(c.want, nil); err != nil {
				t.Errorf("serve refuses %q: %v", c.want, err)
			}
		}
	})
	t.Run("missing", func(t *testing.T) {
		fakeSSH(t)
		e := New(Side{Host: "nas", Dataset: "tank/a"}, Options{Role: "destination", Link: Link{Buffer: DefaultBuffer}})
		defer e.Close()
		for i := 0; i < 2; i++ {
			if got := programs(t, e, zfsRecv, false); !reflect.DeepEqual(got, [][]string{zfsRecv}) {
				t.Errorf("without mbuffer: %q", got)
			}
		}
		if !e.linkCheck.bufferKnown {
			t.Error("the missing mbuffer was not remembered")
		}
	})
	t.Run("not asked for", func(t *testing.T) {
		fakeSSHWith(t, map[string]string{"mbuffer": "echo asked >&2; exit 1"})
		e := New(Side{Host: "nas", Dataset: "tank/a"}, Options{Role: "destination"})
		defer e.Close()
		if got := programs(t, e, zfsRecv, false); !reflect.DeepEqual(got, [][]string{zfsRecv}) {
			t.Errorf("with --buffer 0: %q", got)
		}
		if e.linkCheck.bufferKnown {
			t.Error("mbuffer was looked for with --buffer 0")
		}
	})
}

func TestBufferSizeBounds(t *testing.T) {
	for s, want := range map[string]bool{
		"16384k": true, "1024k": true, "1048576k": true,
		"1023k": false, "1048577k": false, "016384k": false, "+16384k": false,
		"16384": false, "16M": false, "k": false, "": false, "16384kk": false, "9999999k": false,
	} {
		if _, ok := bufferSize(s); ok != want {
			t.Errorf("bufferSize(%q): %v, want %v", s, ok, want)
		}
	}
	if got := bufferArgv(DefaultBuffer); !isBufferStage(got) || got[5] != "16384k" {
		t.Errorf("bufferArgv(DefaultBuffer) = %q", got)
	}
}
