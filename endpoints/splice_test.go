package endpoints

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// startSend starts argv as a sender, as Endpoint.Send does.
func startSend(t *testing.T, ctx context.Context, argv ...string) *sendStream {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	growPipe(pw)
	p, err := newRunner(nil, "source", "").start(ctx, []string{"zfs", "send"}, argv, nil, pw)
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	return &sendStream{p: p, r: pr}
}

// counter is what the engine wraps the receiver's stdin in.
type counter struct {
	w      io.Writer
	n      atomic.Int64
	writes atomic.Int64
	adds   atomic.Int64
}

func (c *counter) Write(b []byte) (int, error) {
	c.writes.Add(1)
	n, err := c.w.Write(b)
	c.n.Add(int64(n))
	return n, err
}
func (c *counter) Unwrap() io.Writer { return c.w }
func (c *counter) Add(n int64)       { c.n.Add(n); c.adds.Add(1) }

// countingSource is the engine's countingReader in short: a WriterTo over
// the stream.
type countingSource struct {
	s *sendStream
	c *counter
	// feeding, when not nil, is closed once the receiver runs and zrep
	// feeds it the stream.
	feeding chan struct{}
}

func (r *countingSource) Read(b []byte) (int, error) { return r.s.Read(b) }
func (r *countingSource) WriteTo(w io.Writer) (int64, error) {
	r.c.w = w
	if r.feeding != nil {
		close(r.feeding)
	}
	return r.s.WriteTo(r.c)
}

// transfer moves send's output into recv through zrep, as a step does;
// recv must print the byte count it got, which must be want, as must
// zrep's count. It returns zrep's counter.
func transfer(t *testing.T, send, recv []string, want int) *counter {
	t.Helper()
	ctx := context.Background()
	s := startSend(t, ctx, send...)
	src := &countingSource{s: s, c: &counter{}}
	var out strings.Builder
	if err := newRunner(nil, "destination", "").run(ctx, []string{"zfs", "receive"}, recv, src, &out); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("send: %v", err)
	}
	if got := strings.TrimSpace(out.String()); got != strconv.Itoa(want) {
		t.Fatalf("receiver got %s bytes, want %d", got, want)
	}
	if n := src.c.n.Load(); n != int64(want) {
		t.Fatalf("counted %d bytes, want %d", n, want)
	}
	return src.c
}

func TestSpliceMovesAndCountsEveryByte(t *testing.T) {
	const size = 40<<20 + 12345
	c := transfer(t, []string{"head", "-c", strconv.Itoa(size), "/dev/zero"}, []string{"wc", "-c"}, size)
	if w := c.writes.Load(); w != 0 {
		t.Fatalf("%d writes through zrep; want all spliced", w)
	}
}

func TestSpliceSlowSenderAndReceiver(t *testing.T) {
	// A sender that writes in bursts and a receiver that reads slowly: the
	// splice loop waits on both sides in turn.
	transfer(t, []string{"sh", "-c", "for i in 1 2 3 4 5; do head -c 300000 /dev/zero; sleep 0.05; done"},
		[]string{"sh", "-c", "n=0; while true; do k=$(head -c 100000 | wc -c); [ $k = 0 ] && break; n=$((n+k)); sleep 0.01; done; echo $n"},
		1500000)
}

func TestSpliceFewWakeupsForASmallBitesReader(t *testing.T) {
	// A fast sender and a receiver that reads 16 KiB at a time at a
	// steady 300 MB/s, as ssh does: zrep lets the receiver drain its pipe
	// before refilling it, rather than topping it up after every read.
	const size = 256 << 20
	overslept := napsOverslept.Load()
	c := transfer(t, []string{"head", "-c", strconv.Itoa(size), "/dev/zero"},
		[]string{"env", smallBitesReaderEnv + "=300000000", os.Args[0], "-test.run=^$"}, size)
	overslept = napsOverslept.Load() - overslept
	splices := c.adds.Load()
	t.Logf("%d splices, %d KiB each on average; %d naps overslept", splices, size/1024/max(splices, 1), overslept)
	if splices > size/(128<<10) {
		if overslept > 0 {
			t.Skipf("%d splices: this machine is busy (%d naps overslept), and the pacer rightly naps less there", splices, overslept)
		}
		t.Fatalf("%d splices for %d MiB: want at most one per 128 KiB", splices, size>>20)
	}
}

// smallBitesReaderEnv makes the test binary a receiver that reads stdin 16
// KiB at a time at the rate (bytes per second) it gives, then prints the
// byte count, as ssh reads its stdin.
const smallBitesReaderEnv = "ZREP_TEST_SMALL_BITES_READER"

func TestMain(m *testing.M) {
	if v := os.Getenv(smallBitesReaderEnv); v != "" {
		rate, _ := strconv.ParseFloat(v, 64)
		buf := make([]byte, 16<<10)
		var n int64
		t0 := time.Now()
		for {
			k, err := os.Stdin.Read(buf)
			n += int64(k)
			if err != nil {
				break
			}
			if ahead := time.Duration(float64(n)/rate*float64(time.Second)) - time.Since(t0); ahead > time.Millisecond {
				time.Sleep(ahead)
			}
		}
		fmt.Println(n)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestSpliceReceiverGoneStopsTransfer(t *testing.T) {
	ctx := context.Background()
	s := startSend(t, ctx, "cat", "/dev/zero")
	src := &countingSource{s: s, c: &counter{}}
	done := make(chan error, 1)
	go func() {
		done <- newRunner(nil, "destination", "").run(ctx, []string{"zfs", "receive"}, []string{"head", "-c", "1000000"}, src, io.Discard)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("receive did not end after its process did")
	}
	if err := s.Close(); err == nil {
		t.Fatal("send stopped early: want an error")
	}
}

func TestSpliceCancelEndsPromptly(t *testing.T) {
	for _, stall := range []string{"sender", "receiver"} {
		t.Run(stall, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			send, recv := []string{"cat", "/dev/zero"}, []string{"sleep", "300"}
			if stall == "sender" {
				send, recv = []string{"sleep", "300"}, []string{"cat"}
			}
			s := startSend(t, ctx, send...)
			src := &countingSource{s: s, c: &counter{}, feeding: make(chan struct{})}
			done := make(chan error, 1)
			go func() {
				done <- newRunner(nil, "destination", "").run(ctx, []string{"zfs", "receive"}, recv, src, io.Discard)
			}()
			select {
			case <-src.feeding:
			case err := <-done:
				t.Fatalf("receive ended before it was fed: %v", err)
			}
			begin := time.Now()
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("receive: %v, want context.Canceled", err)
				}
			case <-time.After(killGrace + 3*time.Second):
				t.Fatal("receive did not end after cancel")
			}
			if err := s.Close(); !errors.Is(err, context.Canceled) {
				t.Fatalf("send: %v, want context.Canceled", err)
			}
			if d := time.Since(begin); d > killGrace+time.Second {
				t.Fatalf("took %v to end", d)
			}
		})
	}
}

func TestSendStreamWriteToOtherWriterCopies(t *testing.T) {
	ctx := context.Background()
	s := startSend(t, ctx, "head", "-c", "3000000", "/dev/zero")
	c := &counter{w: io.Discard}
	n, err := s.WriteTo(c)
	if err != nil || n != 3000000 || c.n.Load() != 3000000 {
		t.Fatalf("WriteTo: %d, %v; counted %d", n, err, c.n.Load())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestPacerNaps(t *testing.T) {
	const mib = 1 << 20
	t0 := time.Unix(1000, 0)
	// 1 MiB pipes; 100 ms into the transfer the receiver has taken 20 MB
	// (200 MB/s) and the sender given 20 MB and 1.5 MiB (about 216 MB/s).
	measured := func() *pacer {
		p := newPacer(mib, mib)
		if d := p.roomNap(t0, 0, 0, 0); d != 0 {
			t.Fatalf("first call napped %v; want the poller until rates are known", d)
		}
		p.sample(t0.Add(100*time.Millisecond), 20e6+mib, mib/2, mib)
		return p
	}
	p := measured()
	if p.rateOut < 199e6 || p.rateOut > 201e6 || p.rateIn < 215e6 || p.rateIn > 217e6 {
		t.Fatalf("rates in %.0f, out %.0f; want about 216e6 and 200e6", p.rateIn, p.rateOut)
	}
	now := t0.Add(101 * time.Millisecond)
	tests := []struct {
		name     string
		nap      func(p *pacer) time.Duration
		qOut     int
		min, max time.Duration
	}{
		// The reader took 16 KiB of a full pipe: until a quarter is left,
		// 770,048 B at 200 MB/s.
		{"reader took a little", func(p *pacer) time.Duration { return p.roomNap(now, 20e6+mib, mib/2, mib-16<<10) }, mib - 16<<10, 3800 * time.Microsecond, 3900 * time.Microsecond},
		// The reader took more than half: refill at once.
		{"reader took a lot", func(p *pacer) time.Duration { return p.roomNap(now, 20e6+mib, mib/2, mib/2-4096) }, mib/2 - 4096, 0, 0},
		// Empty source, full destination: until the sender filled half
		// its pipe (524,288 B at 216 MB/s).
		{"source empty", func(p *pacer) time.Duration { return p.dataNap(now, 20e6+mib, 0, mib) }, mib, 2400 * time.Microsecond, 2500 * time.Microsecond},
		// Empty source, little waiting for the receiver: never past the
		// moment it would run dry.
		{"source empty, receiver low", func(p *pacer) time.Duration { return p.dataNap(now, 20e6+mib, 0, mib/4) }, mib / 4, 400 * time.Microsecond, 600 * time.Microsecond},
		// Empty source and a receiver about to run dry: the poller.
		{"receiver nearly dry", func(p *pacer) time.Duration { return p.dataNap(now, 20e6+mib, 0, mib/8) }, mib / 8, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := measured()
			d := tt.nap(p)
			if d < tt.min || d > tt.max {
				t.Fatalf("nap = %v, want %v to %v", d, tt.min, tt.max)
			}
			dry := time.Duration(float64(int64(tt.qOut)-mib/8) / p.rateOut * float64(time.Second))
			if d > 0 && d > dry {
				t.Fatalf("nap %v outlasts what the receiver has waiting (%v)", d, dry)
			}
		})
	}
	// However slow the receiver, a nap is bounded.
	p = newPacer(mib, mib)
	p.sample(t0, 0, 0, 0)
	p.sample(t0.Add(time.Second), 1000+mib, 1000, mib)
	if d := p.roomNap(t0.Add(1001*time.Millisecond), 1000+mib, 1000, mib-100); d != maxNap {
		t.Fatalf("nap at 1 kB/s = %v, want the bound %v", d, maxNap)
	}
}

// A nap that ended late, or after which a neighbour waited, stops the naps
// for a while: on a busy machine naps end when the scheduler says, and
// starve the receiver.
func TestPacerCalmsAfterAnOversleptNap(t *testing.T) {
	const mib = 1 << 20
	t0 := time.Unix(1000, 0)
	measured := func() *pacer {
		p := newPacer(mib, mib)
		p.sample(t0, 0, 0, 0)
		p.sample(t0.Add(100*time.Millisecond), 20e6+mib, mib/2, mib)
		return p
	}
	start := t0.Add(101 * time.Millisecond)
	nap := 2 * time.Millisecond
	for _, tc := range []struct {
		name      string
		back      time.Duration // how long the nap took
		qIn, qOut int
		calm      bool
	}{
		{"on time, both pipes in range", nap + 50*time.Microsecond, mib / 2, mib / 4, false},
		{"late", nap + 3*time.Millisecond, mib / 2, mib / 4, true},
		{"a little late, the receiver's pipe empty", nap + 200*time.Microsecond, mib / 2, 0, true},
		{"on time, the receiver's pipe empty (a bursty reader)", nap + 50*time.Microsecond, mib / 2, 0, false},
		{"a little late, the receiver's pipe nearly empty", nap + 200*time.Microsecond, mib / 2, 4096, false},
		{"waiting for the receiver, a little late, the sender's pipe full", nap + 200*time.Microsecond, mib, mib / 4, false},
		{"waiting for the sender, a little late, its pipe full", nap + 200*time.Microsecond, mib, mib / 4, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := measured()
			p.forData = strings.HasPrefix(tc.name, "waiting for the sender")
			now := start.Add(tc.back)
			p.woke(now, start, nap, tc.qIn, tc.qOut)
			// The reader took a little of a full pipe: a nap unless calm.
			d := p.roomNap(now, 20e6+mib, mib/2, mib-16<<10)
			if tc.calm && d != 0 {
				t.Fatalf("napped %v right after a nap that overslept", d)
			}
			if !tc.calm && d == 0 {
				t.Fatal("no nap after a nap that went well")
			}
			if tc.calm {
				if p.calmFor != minCalm {
					t.Fatalf("first calm %v, want %v", p.calmFor, minCalm)
				}
				later := now.Add(p.calmFor + time.Millisecond)
				p.sample(later, 20e6+mib+int64(200e6*(later.Sub(t0.Add(100*time.Millisecond))).Seconds()), mib/2, mib)
				if d := p.dataNap(later, 20e6+mib+int64(200e6*(later.Sub(t0.Add(100*time.Millisecond))).Seconds()), 0, mib); d == 0 {
					t.Fatal("still no nap once the calm is over")
				}
			}
		})
	}
}
