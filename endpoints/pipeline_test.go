package endpoints

import (
	"bytes"
	"context"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zrep/zrep/pdu"
)

// runPipeline runs remotePipeline(programs) under shell, as ssh's remote
// side would with that login shell, and returns the verdict zrep's runner
// would reach: nil for success, else classify's error.
func runPipeline(t *testing.T, shell string, programs [][]string) (stdout string, err error) {
	t.Helper()
	if _, lerr := exec.LookPath(shell); lerr != nil {
		t.Skipf("no %s here", shell)
	}
	// The runner's own verdict, as for an ssh whose remote side ran the
	// pipeline: host "h" makes it read the status lines.
	r := newRunner(nil, "source", "h")
	var out bytes.Buffer
	var stderr string
	p, err := r.startWith(context.Background(), []string{"zfs", "send", "tank/x@s"},
		[]string{shell, "-c", remotePipeline(programs)}, nil, &out, func(s string) { stderr = s })
	if err != nil {
		t.Fatal(err)
	}
	err = p.wait()
	stderr = p.stderr.String()
	if remotePid(stderr) == 0 {
		t.Errorf("the pipeline did not report its pid first: %q", stderr)
	}
	return out.String(), err
}

// Each program's failure reaches zrep, whatever the program's place in the
// pipeline and whatever the shell (dash has no pipefail): a zfs send killed
// half-way behind a compressor that ended its output cleanly is a failure.
func TestRemotePipelineStatus(t *testing.T) {
	for _, shell := range []string{"sh", "dash", "bash"} {
		for _, c := range []struct {
			name     string
			programs [][]string
			class    pdu.Class // Unclassified: success
			message  string
		}{
			{"all well", [][]string{{"printf", "data"}, {"gzip", "-c"}}, pdu.Unclassified, ""},
			{"one program", [][]string{{"printf", "data"}}, pdu.Unclassified, ""},
			{"sender killed, compressor fine", [][]string{{"sh", "-c", "printf data; kill -KILL $$"}, {"gzip", "-c"}}, pdu.Retryable, "exited with status 137"},
			{"compressor fails", [][]string{{"printf", "data"}, {"gzip", "-c", "--no-such-option"}}, pdu.Permanent, "gzip in the remote pipeline exited with status 1"},
			{"decompressor fails before zfs receive", [][]string{{"gzip", "-d", "-c"}, {"cat"}}, pdu.Permanent, "gzip in the remote pipeline exited with status 1"},
			{"compressor killed, zfs complains", [][]string{{"sh", "-c", "sleep 1; echo \"warning: cannot send 'tank/x@s': signal received\" >&2; exit 1"}, {"sh", "-c", "kill -KILL $$"}}, pdu.Retryable, "status 137"},
			{"zfs fails, its reader then too", [][]string{{"sh", "-c", "echo 'cannot open tank/x@s: dataset does not exist' >&2; exit 1"}, {"gzip", "-c"}}, pdu.Permanent, "does not exist"},
		} {
			t.Run(shell+"/"+c.name, func(t *testing.T) {
				_, err := runPipeline(t, shell, c.programs)
				switch {
				case c.class == pdu.Unclassified && err != nil:
					t.Fatalf("want success, got %v", err)
				case c.class == pdu.Unclassified:
				case err == nil:
					t.Fatalf("a failed pipeline passed for a success")
				case pdu.ClassOf(err) != c.class:
					t.Errorf("class %v, want %v: %v", pdu.ClassOf(err), c.class, err)
				case !strings.Contains(err.Error(), c.message):
					t.Errorf("error %q does not say %q", err, c.message)
				}
				if err != nil && strings.Contains(err.Error(), pidMarker) {
					t.Errorf("the pid line leaks into the message: %v", err)
				}
			})
		}
	}
}

// The stream passes through the pipeline unchanged, and names with
// quotes, spaces and $ stay single arguments.
func TestRemotePipelineQuoting(t *testing.T) {
	name := "tank/it's a $HOME; `x`\nnew"
	out, err := runPipeline(t, "sh", [][]string{{"printf", "%s", name}, {"cat"}})
	if err != nil || out != name {
		t.Fatalf("got %q, %v; want %q", out, err, name)
	}
}

func TestRemotePid(t *testing.T) {
	for in, want := range map[string]int{
		"zrep-pid:1234\nrest": 1234,
		"zrep-pid:1\n":        0,
		"zrep-pid:x\n":        0,
		"":                    0,
		// Whatever the remote login prints first: a banner, a message
		// from a shell's startup file, with or without a line end.
		"Welcome to nas\n\nzrep-pid:12\nzrep-exit:zfs:0\n": 12,
		"no line endzrep-pid:77\n":                         77,
		"zrep-pid:5\nzrep-pid:6\n":                         5,
	} {
		if got := remotePid(in); got != want {
			t.Errorf("remotePid(%q) = %d, want %d", in, got, want)
		}
	}
}

// The kill request ends a whole process group, stopped programs included.
func TestKillRequestEndsTheGroup(t *testing.T) {
	group := exec.Command("sh", "-c", "sleep 300 & kill -STOP $!; wait")
	group.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := group.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- group.Wait() }()
	req := killRequest(group.Process.Pid)
	if out, err := exec.Command("sh", "-c", req.String()).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		group.Process.Kill()
		t.Fatal("the group lives on")
	}
	for _, bad := range []string{"-1", "0", "1 2", "$(id)", "012", "123456"} {
		req := Request{Kind: RequestKill, Words: []string{bad}}
		out, err := exec.Command("sh", "-c", req.String()).CombinedOutput()
		if statusOf(err).code != 2 || !strings.Contains(string(out), "malformed request") {
			t.Errorf("kill %q: %v: %s", bad, err, out)
		}
	}
}

// Each codec's stream made inside zrep is read by its program, and the
// program's by zrep.
func TestCodecsMatchTheirPrograms(t *testing.T) {
	data := bytes.Repeat([]byte("zrep replicates ZFS over ssh\n"), 50000)
	for _, c := range []Codec{CodecZstd, CodecLZ4, CodecGzip} {
		t.Run(string(c), func(t *testing.T) {
			if _, err := exec.LookPath(c.program()); err != nil {
				t.Skipf("no %s here", c.program())
			}
			var packed bytes.Buffer
			enc, err := c.newEncoder(&packed)
			if err != nil {
				t.Fatal(err)
			}
			enc.Write(data)
			if err := enc.Close(); err != nil {
				t.Fatal(err)
			}
			argv := c.decompressArgv()
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Stdin = &packed
			out, err := cmd.Output()
			if err != nil || !bytes.Equal(out, data) {
				t.Fatalf("%s could not read zrep's stream: %v (%d bytes back)", argv, err, len(out))
			}
			argv = c.compressArgv()
			cmd = exec.Command(argv[0], argv[1:]...)
			cmd.Stdin = bytes.NewReader(data)
			theirs, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			dec, err := c.newDecoder(bytes.NewReader(theirs))
			if err != nil {
				t.Fatal(err)
			}
			back, err := io.ReadAll(dec)
			dec.Close()
			if err != nil || !bytes.Equal(back, data) {
				t.Fatalf("zrep could not read %s's stream: %v", argv, err)
			}
		})
	}
}

// A cut compressed stream is an error, never a short success.
func TestCutCompressedStreamIsAnError(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	for _, c := range []Codec{CodecZstd, CodecLZ4, CodecGzip} {
		var packed bytes.Buffer
		enc, _ := c.newEncoder(&packed)
		enc.Write(data)
		enc.Close()
		cut := packed.Bytes()[:packed.Len()/2]
		dec, err := c.newDecoder(bytes.NewReader(cut))
		if err == nil {
			_, err = io.ReadAll(dec)
			dec.Close()
		}
		if err == nil {
			t.Errorf("%s: half a compressed stream read without error", c)
		}
	}
}

func TestParseCodec(t *testing.T) {
	for in, want := range map[string]Codec{"zstd": CodecZstd, "LZ4": CodecLZ4, "gzip": CodecGzip, "none": CodecNone} {
		if got, err := ParseCodec(in); err != nil || got != want {
			t.Errorf("ParseCodec(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "xz", "zstd -19", "lzo"} {
		if _, err := ParseCodec(bad); err == nil {
			t.Errorf("ParseCodec(%q) accepted", bad)
		}
	}
}

// A remote login that prints something first (a banner, a shell startup
// file's message, even without a line end) does not hide the pipeline's
// pid from the remote kill, nor change the pipeline's verdict.
func TestRemotePidAfterLoginBanner(t *testing.T) {
	for _, banner := range []string{"Welcome to nas\\n", "Authorized use only. "} {
		r := newRunner(nil, "source", "h")
		var out bytes.Buffer
		script := "printf '" + banner + "' >&2; " + remotePipeline([][]string{{"printf", "data"}, {"cat"}})
		p, err := r.startWith(context.Background(), []string{"zfs", "send", "tank/x@s"},
			[]string{"sh", "-c", script}, nil, &out, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = p.wait()
		stderr := p.stderr.String()
		if pid := remotePid(stderr); pid <= 1 {
			t.Errorf("banner %q: no pid found in %q", banner, stderr)
		}
		if err != nil || out.String() != "data" {
			t.Errorf("banner %q: %q, %v", banner, out.String(), err)
		}
		if code, _, ok := remoteStatus(pipelineStatus(stderr)); !ok || code != 0 {
			t.Errorf("banner %q: pipeline status %d (%v) from %q", banner, code, ok, stderr)
		}
	}
}
