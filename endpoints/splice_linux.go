//go:build linux

package endpoints

import (
	"context"
	"os"
	"syscall"
	"unsafe"
)

const (
	// spliceChunk is the most one splice(2) call is asked to move.
	spliceChunk = 1 << 20
	// pipeSize is what the pipes of a transfer are enlarged to (best
	// effort; the default is 64 KiB): fewer wake-ups of zfs send, zrep
	// and zfs receive per GiB.
	pipeSize = 1 << 20

	spliceFMove     = 0x1 // SPLICE_F_MOVE
	spliceFNonblock = 0x2 // SPLICE_F_NONBLOCK
	fSetPipeSz      = 1031
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
func splicePipes(ctx context.Context, dst, src *os.File, add func(int64)) (written int64, handled bool, err error) {
	rc, err := src.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	wc, err := dst.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return written, true, err
		}
		var n int64
		var serr error
		rerr := rc.Read(func(rfd uintptr) bool {
			srcEmpty := false
			werr := wc.Write(func(wfd uintptr) bool {
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
					case !in:
						srcEmpty = true
						return true
					case !out:
						return false // wait until dst has room
					}
					// Both ready again: the state changed meanwhile; retry.
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
