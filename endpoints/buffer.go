package endpoints

import (
	"context"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
)

// A remote side's stream may run through mbuffer, the buffer syncoid runs
// too: zfs receive takes its input in bursts (it stops while a transaction
// group is written out), and ssh's channel window is 2 MiB, so without a
// buffer the link idles while the receiver pauses. mbuffer reads the link
// into its memory meanwhile. On the sending side it keeps the link fed
// while zfs send pauses. Where mbuffer is not installed the stream runs
// without it.

// DefaultBuffer is the memory of a remote side's stream buffer (run's
// --buffer): 16 MiB, as syncoid's.
const DefaultBuffer = 16 << 20

// MinBuffer and MaxBuffer bound --buffer: at least eight of mbuffer's
// 128 KiB blocks, at most 1 GiB of the remote machine's memory.
const (
	MinBuffer = 1 << 20
	MaxBuffer = 1 << 30
)

// bufferBlock is the size of mbuffer's blocks, as syncoid runs it.
const bufferBlock = "128k"

// bufferArgv is the stream buffer's program with size bytes of memory,
// whole KiB.
func bufferArgv(size int64) []string {
	return []string{"mbuffer", "-q", "-s", bufferBlock, "-m", strconv.FormatInt(size>>10, 10) + "k"}
}

// bufferVersionArgv asks whether mbuffer is installed.
var bufferVersionArgv = []string{"mbuffer", "-V"}

// isBufferStage reports whether argv is the stream buffer as zrep runs it,
// with a size within the bounds.
func isBufferStage(argv []string) bool {
	if len(argv) != 6 || !slices.Equal(argv[:5], bufferArgv(MinBuffer)[:5]) {
		return false
	}
	_, ok := bufferSize(argv[5])
	return ok
}

// bufferSize reads mbuffer's -m value as bufferArgv writes it: decimal
// KiB in canonical form (no sign, no leading zero), then k.
func bufferSize(s string) (int64, bool) {
	digits, ok := strings.CutSuffix(s, "k")
	if !ok {
		return 0, false
	}
	k, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || strconv.FormatInt(k, 10) != digits || k > MaxBuffer>>10 || k < MinBuffer>>10 {
		return 0, false
	}
	return k << 10, true
}

// buffers reports whether this side's streams run through mbuffer: a
// remote side with a buffer configured where mbuffer is installed. The
// answer of the first `mbuffer -V` is kept; a failure that says nothing
// about the program (a lost connection) is not, and the stream then runs
// without the buffer.
func (e *Endpoint) buffers(ctx context.Context) bool {
	if e.ssh == nil || e.opts.Link.Buffer <= 0 {
		return false
	}
	e.linkCheck.mu.Lock()
	defer e.linkCheck.mu.Unlock()
	if e.linkCheck.bufferKnown {
		return e.linkCheck.buffer
	}
	err := e.run(ctx, bufferVersionArgv, nil, io.Discard)
	var ce *CommandError
	switch {
	case err == nil:
		e.linkCheck.bufferKnown, e.linkCheck.buffer = true, true
	case errors.As(err, &ce) && (ce.ExitCode == 127 || ce.ExitCode == 126):
		e.linkCheck.bufferKnown = true
		e.log.Info("mbuffer is not installed on the side: its streams run without a buffer (apt-get install mbuffer, or --buffer 0 to not look)",
			"side", e.side.String())
	default:
		e.log.Debug("mbuffer -V failed: this stream runs without a buffer", "side", e.side.String(), "err", err)
	}
	return e.linkCheck.buffer
}
