package e2e

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"
)

// A sendGate makes a cut certain rather than a race with the buffers on the
// way (pipes, a compressor's jobs, ssh's window, sockets): a zfs wrapper on
// the source's machine lets the first non-dry send of src pass its first 4
// MiB and then holds the rest of the stream until the test has killed it.
// Only sends of src are held: other tests may share the machine.
type sendGate struct {
	m    *machine
	src  string
	path string
	// env is what zrep needs to run with for a local source: the wrapper
	// first in its PATH (a remote machine's ssh sessions find it anyway).
	env []string
}

func holdFirstSend(t *testing.T, src string) *sendGate {
	t.Helper()
	return gateFirstSend(t, src, ":")
}

// pauseFirstSend is holdFirstSend for a test that kills something else
// mid-stream (the receive, the ssh client): the first send of src is held
// after its first 4 MiB until release, and then passes the rest.
func pauseFirstSend(t *testing.T, src string) *sendGate {
	t.Helper()
	g := gateFirstSend(t, src, "cat")
	// A held wrapper that nobody ended goes on once the test is over.
	t.Cleanup(func() { g.m.run(context.Background(), nil, "touch", g.path+".open") })
	return g
}

// gateFirstSend installs the wrapper; rest is what it runs on the rest of
// the stream once let go (":" drops it, "cat" passes it).
func gateFirstSend(t *testing.T, src, rest string) *sendGate {
	t.Helper()
	g := &sendGate{m: machineOf(src), src: src, path: fmt.Sprintf("/tmp/zrep-e2e-%d-%d", os.Getpid(), poolSeq.Add(1))}
	t.Cleanup(func() {
		g.m.run(context.Background(), nil, "rm", "-f", g.path+".held", g.path+".passed", g.path+".open", g.path+".status")
	})
	g.env = g.m.shimZFS(t, fmt.Sprintf(`
case "$*" in *%[2]s@*) mine=yes ;; *) mine=no ;; esac
if [ "$1" = send ] && [ $mine = yes ] && [ ! -e %[1]s.held ]; then
	dry=no
	for a in "$@"; do case $a in --*) ;; -*n*) dry=yes ;; esac; done
	if [ $dry = no ]; then
		touch %[1]s.held
		{ "$REALZFS" "$@"; echo $? >%[1]s.status; } | {
			head -c 4194304
			touch %[1]s.passed
			while [ ! -e %[1]s.open ]; do sleep 0.1; done
			%[3]s
		}
		while [ ! -e %[1]s.status ]; do sleep 0.1; done
		exit "$(cat %[1]s.status)"
	fi
fi`, g.path, src, rest))
	return g
}

// waitHeld waits until the held send has passed its first 4 MiB.
func (g *sendGate) waitHeld(t *testing.T) {
	t.Helper()
	if !waitUntil(2*time.Minute, func() bool { return g.m.ok("test", "-e", g.path+".passed") }) {
		t.Fatal("the first send never passed its first 4 MiB")
	}
}

// release lets the held send go on.
func (g *sendGate) release(t *testing.T) {
	t.Helper()
	g.m.must(t, "touch", g.path+".open")
}

// cut waits until the held send has passed its first 4 MiB, kills its zfs
// send, which cannot have finished, and lets the wrapper end.
func (g *sendGate) cut(t *testing.T) {
	t.Helper()
	g.waitHeld(t)
	var senders []proc
	if !waitUntil(time.Minute, func() bool { senders = remotePipelineProcs(t, g.src, "zfs"); return len(senders) > 0 }) {
		t.Fatal("no zfs send to cut")
	}
	for _, p := range senders {
		g.m.signal(t, p.pid, syscall.SIGKILL)
	}
	g.release(t)
}
