package endpoints

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// The start of a stream decides: text compresses, random data does not,
// and a stream that is random at its start crosses uncompressed even if
// text follows (the price of not running a decompressor for nothing).
func TestSampleAuto(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want bool
	}{
		{"empty", nil, false},
		{"a little text", text(4 << 10), true},
		{"text", text(3 * autoSample), true},
		{"random", random(3 * autoSample), false},
		{"random, a chunk of text inside the sample", append(append(random(4*autoChunk), text(autoChunk)...), random(autoSample)...), true},
		{"random, then text after the sample", append(random(autoSample), text(autoSample)...), false},
		{"text, then random", append(text(autoSample), random(autoSample)...), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in, got := sampleAuto(bytes.NewReader(c.in))
			if got != c.want {
				t.Errorf("compresses %v, want %v", got, c.want)
			}
			var out bytes.Buffer
			if _, err := io.Copy(&out, in); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), c.in) {
				t.Errorf("the stream came back with %d bytes, not its %d", out.Len(), len(c.in))
			}
		})
	}
}

// writerTo is a stream that can write itself, as an endpoint's does.
type writerTo struct {
	r    io.Reader
	used bool
}

func (w *writerTo) Read(b []byte) (int, error) { return w.r.Read(b) }
func (w *writerTo) WriteTo(dst io.Writer) (int64, error) {
	w.used = true
	return io.Copy(dst, w.r)
}

// Once the sample is written, a stream that can write itself does so
// (an endpoint's splices), and Read gives the same bytes in small reads.
func TestPrefixedKeepsTheFastPath(t *testing.T) {
	data := text(autoSample + autoChunk/3)
	src := &writerTo{r: bytes.NewReader(data)}
	in, _ := sampleAuto(src)
	var out bytes.Buffer
	if _, err := io.Copy(&out, in); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) || !src.used {
		t.Errorf("WriteTo: %d bytes of %d, the stream's own WriteTo used: %v", out.Len(), len(data), src.used)
	}

	in, _ = sampleAuto(bytes.NewReader(data))
	out.Reset()
	buf := make([]byte, 1000)
	for {
		n, err := in.Read(buf)
		out.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Errorf("Read: %d bytes of %d", out.Len(), len(data))
	}
}

// A stream that fails inside the sample gives its start, then its error:
// the receiver sees a short stream, as it would have without the sample.
func TestPrefixedKeepsTheError(t *testing.T) {
	boom := errors.New("zfs send died")
	data := random(autoChunk)
	for _, how := range []string{"Read", "WriteTo"} {
		t.Run(how, func(t *testing.T) {
			in, compresses := sampleAuto(io.MultiReader(bytes.NewReader(data), iotestErr{boom}))
			if compresses {
				t.Error("random data compresses")
			}
			var out bytes.Buffer
			var err error
			if how == "Read" {
				_, err = out.ReadFrom(struct{ io.Reader }{in})
			} else {
				_, err = in.(io.WriterTo).WriteTo(&out)
			}
			if !errors.Is(err, boom) {
				t.Errorf("error %v, want %v", err, boom)
			}
			if !bytes.Equal(out.Bytes(), data) {
				t.Errorf("%d bytes before the error, want %d", out.Len(), len(data))
			}
		})
	}
}

type iotestErr struct{ err error }

func (e iotestErr) Read([]byte) (int, error) { return 0, e.err }
