//go:build linux

package endpoints

import (
	"context"
	"os"
	"syscall"
	"time"
)

// canSpliceStored: the auto encoder may splice what it stores.
const canSpliceStored = true

// rawFrameHeader starts a zstd frame without a content size: the magic
// number, a frame header descriptor with no flags, and a window descriptor
// of 128 KiB (exponent 7), the most a raw block holds (RFC 8878, 3.1.1).
var rawFrameHeader = []byte{0x28, 0xB5, 0x2F, 0xFD, 0x00, 7 << 3}

// rawLastBlock ends such a frame: an empty raw block, marked last.
var rawLastBlock = []byte{0x01, 0x00, 0x00}

// spliceRawFrame moves up to n bytes from src into dst, both pipes, as one
// zstd frame of raw blocks, without the data entering zrep: zrep writes
// the frame's header and each block's 3-byte header, and splices each
// block's content, sized by what src holds at the moment (at most 128
// KiB), from pipe to pipe. add is told of each block's content. It returns
// the stream bytes moved, the frame's bytes, the time spent waiting for
// room in dst, and whether src ended.
func spliceRawFrame(ctx context.Context, dst, src *os.File, n int64, add func(int64)) (moved, frame int64, blocked time.Duration, eof bool, err error) {
	rc, err := src.SyscallConn()
	if err != nil {
		return 0, 0, 0, false, err
	}
	wc, err := dst.SyscallConn()
	if err != nil {
		return 0, 0, 0, false, err
	}
	write := func(b []byte) error {
		t0 := time.Now()
		k, err := dst.Write(b)
		blocked += time.Since(t0)
		frame += int64(k)
		return err
	}
	if err := write(rawFrameHeader); err != nil {
		return 0, frame, blocked, false, err
	}
	for moved < n {
		if err := ctx.Err(); err != nil {
			return moved, frame, blocked, false, err
		}
		// How much src holds, once it holds anything; 0 at its end.
		var avail int64
		var ended bool
		var perr error
		rerr := rc.Read(func(rfd uintptr) bool {
			if avail = int64(queued(rfd)); avail > 0 {
				return true
			}
			var in bool
			if in, _, perr = pollPair(rfd, ^uintptr(0)); perr != nil {
				return true
			}
			if in {
				// Readable yet empty: its writer closed it, unless data
				// came meanwhile.
				avail = int64(queued(rfd))
				ended = avail == 0
				return true
			}
			return false
		})
		if rerr == nil {
			rerr = perr
		}
		if rerr != nil {
			return moved, frame, blocked, false, rerr
		}
		if ended {
			eof = true
			break
		}
		k := min(avail, 128<<10, n-moved)
		if err := write([]byte{byte(k << 3), byte(k >> 5), byte(k >> 13)}); err != nil {
			return moved, frame, blocked, false, err
		}
		// Exactly k: the header says so, and src holds at least that
		// much, which only zrep reads.
		var serr error
		left := k
		cerr := rc.Control(func(rfd uintptr) {
			t0 := time.Now()
			werr := wc.Write(func(wfd uintptr) bool {
				for left > 0 {
					m, err := syscall.Splice(int(rfd), nil, int(wfd), nil, int(left), spliceFMove|spliceFNonblock)
					switch {
					case err == syscall.EINTR:
						continue
					case err == syscall.EAGAIN:
						return false // dst is full: wait for room
					case err != nil:
						serr = os.NewSyscallError("splice", err)
						return true
					case m == 0:
						serr = syscall.EPIPE
						return true
					}
					left -= m
					add(m)
				}
				return true
			})
			blocked += time.Since(t0)
			if serr == nil {
				serr = werr
			}
		})
		moved += k - left
		frame += k - left
		if cerr != nil {
			return moved, frame, blocked, false, cerr
		}
		if serr != nil {
			return moved, frame, blocked, false, serr
		}
	}
	if err := write(rawLastBlock); err != nil {
		return moved, frame, blocked, eof, err
	}
	return moved, frame, blocked, eof, nil
}
