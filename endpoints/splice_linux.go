//go:build linux

package endpoints

import (
	"context"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

const (
	// spliceChunk is the most one splice(2) call is asked to move.
	spliceChunk = 1 << 20
	// pipeSize is what the pipes of a transfer are enlarged to (best
	// effort; the default is 64 KiB, and 1 MiB is what
	// /proc/sys/fs/pipe-max-size allows without CAP_SYS_RESOURCE): fewer
	// wake-ups of zfs send, zrep and zfs receive per GiB. Why not larger:
	// docs/performance.md, "Line rate and zrep's CPU share, on a quiet
	// machine".
	pipeSize = 1 << 20

	spliceFMove     = 0x1 // SPLICE_F_MOVE
	spliceFNonblock = 0x2 // SPLICE_F_NONBLOCK
	fSetPipeSz      = 1031
	fGetPipeSz      = 1032
	pollIn          = 0x1
	pollOut         = 0x4
	pollErr         = 0x8
	pollHup         = 0x10
)

// growPipe enlarges the pipe f is an end of, if the system allows it.
func growPipe(f *os.File) {
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		syscall.Syscall(syscall.SYS_FCNTL, fd, fSetPipeSz, pipeSize)
	})
}

// splicePipes moves everything from src, the read end of a pipe, into dst,
// the write end of another, with splice(2): the data stays in the kernel,
// zrep only counts it (add is called with each chunk's size). Both ends must
// be non-blocking files of the runtime poller, as os.Pipe makes them; the
// goroutine waits there, not in the kernel, so closing either file ends the
// wait. handled is false, with nothing moved, when splice cannot be used
// (not pipes); the caller then copies. It returns at src's EOF with a nil
// error, or at the first error (EPIPE: the reader of dst went away).
//
// Waking up costs zrep more than moving the data: a reader that takes 16
// KiB at a time from a full pipe (ssh) would wake zrep 65,000 times per
// GiB. So once the rates of both neighbours are known (pacer), zrep naps
// where a neighbour moves little at a time: when the destination's reader
// took only a little of a full pipe, until it has drained it to a quarter;
// when the source is empty, until the sender has filled half of it; and
// never past the moment the receiver would run dry. A reader that drains
// in large bites is refilled at once. On a busy machine a nap ends when the
// scheduler lets zrep run again, often too late: a nap that overslept or
// left a neighbour waiting stops the naps for a while (pacer.woke).
func splicePipes(ctx context.Context, dst, src *os.File, add func(int64)) (written int64, handled bool, err error) {
	rc, err := src.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	wc, err := dst.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	pc := newPacer(pipeCapacity(rc), pipeCapacity(wc))
	// waitedForRoom: the last wait was for room in dst.
	waitedForRoom := false
	// napStart, nap: the last nap, checked when zrep is back (pc.woke).
	var napStart time.Time
	var nap time.Duration
	for {
		if err := ctx.Err(); err != nil {
			return written, true, err
		}
		var n int64
		var serr error
		rerr := rc.Read(func(rfd uintptr) bool {
			srcEmpty := false
			werr := wc.Write(func(wfd uintptr) bool {
				if nap > 0 {
					pc.woke(time.Now(), napStart, nap, queued(rfd), queued(wfd))
					nap = 0
				}
				if waitedForRoom {
					waitedForRoom = false
					// Woken by the first room in dst: if its reader took
					// only a little, let it take more before refilling.
					if nap = pc.roomNap(time.Now(), written, queued(rfd), queued(wfd)); nap > 0 {
						serr = syscall.EAGAIN
						return true
					}
				}
				for {
					n, serr = syscall.Splice(int(rfd), nil, int(wfd), nil, spliceChunk, spliceFMove|spliceFNonblock)
					if serr == syscall.EINTR {
						continue
					}
					if serr != syscall.EAGAIN {
						return true
					}
					// The source is empty or the destination full. Which
					// one is asked of the kernel now, level-triggered, after
					// both poller states were reset (at the start of
					// rc.Read and wc.Write): whatever changes later wakes
					// the wait chosen here.
					in, out, perr := pollPair(rfd, wfd)
					switch {
					case perr != nil:
						serr = perr
						return true
					case in && out:
						continue // the state changed meanwhile; retry
					case in:
						waitedForRoom = true
						return false // wait until dst has room
					}
					if nap = pc.dataNap(time.Now(), written, queued(rfd), queued(wfd)); nap > 0 {
						serr = syscall.EAGAIN
						return true
					}
					srcEmpty = true
					return true
				}
			})
			if werr != nil {
				serr = werr
				return true
			}
			if srcEmpty {
				srcEmpty = false
				return false // wait until src has data (or its writer closed)
			}
			return true
		})
		switch {
		case rerr != nil:
			return written, true, rerr
		case serr == syscall.EAGAIN:
			napStart = time.Now()
			if nap < timerNap {
				// Blocking the thread is cheaper and more punctual
				// than a Go timer, which may wake a millisecond late.
				ts := syscall.NsecToTimespec(nap.Nanoseconds())
				syscall.Nanosleep(&ts, nil)
			} else {
				// A thread blocked for 10 ms is taken for a stuck
				// system call: Go's monitor hands its processor over
				// and polls every 20 µs for a while. A long nap parks
				// the goroutine instead, a millisecond early.
				time.Sleep(nap - time.Millisecond)
			}
			continue
		case serr == syscall.EINVAL && written == 0:
			return 0, false, nil // not pipes
		case serr != nil:
			return written, true, os.NewSyscallError("splice", serr)
		case n == 0:
			return written, true, nil // EOF
		}
		written += n
		add(n)
	}
}

// pacer decides how long splicePipes may nap, from the rates at which the
// sender fills the source pipe and the receiver drains the destination
// pipe, measured over the transfer so far.
type pacer struct {
	capIn, capOut int64
	// The last sample: when, how much the receiver had taken in all
	// (written minus what still waits in its pipe), how much the sender
	// had given (written plus what waits in the source pipe).
	t                  time.Time
	consumed, produced int64
	// Rates in bytes per second, smoothed; 0 until measured.
	rateIn, rateOut float64
	// calmUntil: no naps before then, because a nap overslept; calmFor:
	// how long the last calm was.
	calmUntil time.Time
	calmFor   time.Duration
	// forData: the last nap waited for the sender (dataNap), not for the
	// receiver (roomNap).
	forData bool
}

const (
	// paceWindow is the shortest interval a rate is measured over.
	paceWindow = 20 * time.Millisecond
	// minNap is the shortest nap worth a sleep; below it zrep waits on the
	// poller instead.
	minNap = 100 * time.Microsecond
	// oversleep is how late a nap may end (a short nap is nanosleep(2),
	// not a Go timer, which may wake a millisecond late).
	oversleep = 100 * time.Microsecond
	// timerNap is the shortest nap taken on a Go timer (slow links)
	// rather than in nanosleep(2).
	timerNap = 8 * time.Millisecond
	// maxNap bounds a nap whatever the rates say.
	maxNap = 20 * time.Millisecond
	// lateWake is how late past its end a nap may come back before the
	// pacer takes the machine for busy: its naps then end when other
	// processes let zrep run, not when it asked, and starve the receiver
	// (measured on a loaded machine: a local transfer 1.5x the bare pipe's
	// time with naps, 1.0x without).
	lateWake = 500 * time.Microsecond
	// After a nap that overslept the pacer does without naps for a while:
	// minCalm after the first, twice as long after each further one, at
	// most maxCalm; each nap that went well halves the next calm.
	minCalm = 50 * time.Millisecond
	maxCalm = time.Second
)

func newPacer(capIn, capOut int64) *pacer {
	return &pacer{capIn: capIn, capOut: capOut}
}

// sample updates the rates at time now, with written bytes moved so far,
// qIn bytes waiting in the source pipe and qOut in the destination pipe.
// It reports whether both rates are known.
func (p *pacer) sample(now time.Time, written int64, qIn, qOut int) bool {
	consumed, produced := written-int64(qOut), written+int64(qIn)
	switch {
	case p.t.IsZero():
		p.t, p.consumed, p.produced = now, consumed, produced
		return false
	case now.Sub(p.t) >= paceWindow:
		dt := now.Sub(p.t).Seconds()
		p.rateIn = smooth(p.rateIn, float64(produced-p.produced)/dt)
		p.rateOut = smooth(p.rateOut, float64(consumed-p.consumed)/dt)
		p.t, p.consumed, p.produced = now, consumed, produced
	}
	return p.rateIn > 0 && p.rateOut > 0 && p.capIn > 0 && p.capOut > 0
}

// dry is how long the receiver can go on with qOut bytes waiting for it,
// keeping an eighth of its pipe in hand and allowing for a late wake-up.
func (p *pacer) dry(qOut int) time.Duration {
	return seconds(float64(int64(qOut)-p.capOut/8)/p.rateOut) - oversleep
}

// napsOverslept counts the naps woke found too long, in every transfer of
// the process: how busy the machine was for the pacer.
var napsOverslept atomic.Int64

// woke checks a nap of length nap begun at start, now that zrep is back
// with qIn and qOut bytes waiting in the pipes. A nap that ended well
// past its time, or late enough that the receiver found its pipe empty or,
// waiting for the sender, the sender found its pipe (nearly) full, cost the
// transfer time: no naps for a while, the longer the more often it
// happens. (A sender that fills its pipe while zrep waits for the receiver
// is not the bottleneck and loses nothing; a receiver that empties its pipe
// before a punctual nap ends reads in bursts and catches up.)
func (p *pacer) woke(now, start time.Time, nap time.Duration, qIn, qOut int) {
	want := nap
	if nap >= timerNap {
		want = nap - time.Millisecond
	}
	late := now.Sub(start) - want
	starved := qOut == 0 || p.forData && int64(qIn) >= p.capIn-p.capIn/16
	if late > lateWake || late > oversleep && starved {
		p.calmFor = min(max(2*p.calmFor, minCalm), maxCalm)
		napsOverslept.Add(1)
		p.calmUntil = now.Add(p.calmFor)
		return
	}
	p.calmFor /= 2
}

// roomNap is how long to wait, after the destination pipe's first free
// byte woke zrep, before refilling it: none if its reader took half of it
// or more (a reader that drains in large bites must not starve), else until
// it has drained to a quarter. The parameters are sample's.
func (p *pacer) roomNap(now time.Time, written int64, qIn, qOut int) time.Duration {
	if !p.sample(now, written, qIn, qOut) || int64(qOut) <= p.capOut/2 || now.Before(p.calmUntil) {
		return 0
	}
	want := seconds(float64(int64(qOut)-p.capOut/4) / p.rateOut)
	p.forData = false
	return bounded(min(want, p.dry(qOut)))
}

// dataNap is how long to wait, when the source pipe is empty, for the
// sender to fill half of it, no longer than the receiver has data for.
// 0 means: wait for the sender's next write. The parameters are sample's.
func (p *pacer) dataNap(now time.Time, written int64, qIn, qOut int) time.Duration {
	if !p.sample(now, written, qIn, qOut) || now.Before(p.calmUntil) {
		return 0
	}
	want := seconds(float64(p.capIn/2-int64(qIn)) / p.rateIn)
	p.forData = true
	return bounded(min(want, p.dry(qOut)))
}

// bounded is d within [minNap, maxNap], or 0 where it is too short.
func bounded(d time.Duration) time.Duration {
	if d < minNap {
		return 0
	}
	return min(d, maxNap)
}

func smooth(old, sample float64) float64 {
	if old == 0 {
		return sample
	}
	return 0.7*old + 0.3*sample
}

func seconds(s float64) time.Duration {
	if s <= 0 {
		return 0
	}
	return time.Duration(s * float64(time.Second))
}

// pipeCapacity is the size of the pipe behind c, 0 if unknown.
func pipeCapacity(c syscall.RawConn) int64 {
	var size int64
	c.Control(func(fd uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, fGetPipeSz, 0)
		if e == 0 {
			size = int64(r)
		}
	})
	return size
}

// queued is how many bytes wait in the pipe fd is an end of.
func queued(fd uintptr) int {
	var n int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n))); e != 0 {
		return 0
	}
	return int(n)
}

type pollFd struct {
	fd      int32
	events  int16
	revents int16
}

// pollPair reports, without waiting, whether rfd can be read (or is at its
// end or in error) and wfd written (or in error).
func pollPair(rfd, wfd uintptr) (in, out bool, err error) {
	fds := [2]pollFd{{fd: int32(rfd), events: pollIn}, {fd: int32(wfd), events: pollOut}}
	var ts syscall.Timespec
	for {
		_, _, e := syscall.Syscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), 2, uintptr(unsafe.Pointer(&ts)), 0, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return false, false, os.NewSyscallError("ppoll", e)
		}
		break
	}
	in = fds[0].revents&(pollIn|pollHup|pollErr) != 0
	out = fds[1].revents&(pollOut|pollHup|pollErr) != 0
	return in, out, nil
}
