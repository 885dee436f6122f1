//go:build openzfs

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The tests in this file need what a modern OpenZFS offers and zfs-fuse
// lacks: send size estimates, resumable receives and bookmarks as
// incremental sources (native encryption is encryption_test.go's). They
// are built only for the OpenZFS tier (build tag openzfs). Their names
// start with TestModern so they can be run, or left out, together.

// withinPercent reports whether estimate is within pct percent of actual.
func withinPercent(estimate, actual int64, pct float64) bool {
	d := float64(estimate - actual)
	if d < 0 {
		d = -d
	}
	return actual > 0 && d <= float64(actual)*pct/100
}

// TestModernSizeEstimate: for a 50 MB full step and a 50 MB incremental
// step, the Report's expected_bytes (from zfs send -nP) is within 5% of the
// bytes actually sent.
func TestModernSizeEstimate(t *testing.T) {
	sp, dp := newPoolSize(t, 512<<20), newPoolSize(t, 512<<20)
	src, dst := sp+"/est", dp+"/est"
	createBulk(t, src, "a", 50)
	snapshot(t, src, "s1")
	first := zrep(t, "run", "--json", side(src), side(dst)).mustExit(t, 0)
	writeBulk(t, src, "b", 50)
	snapshot(t, src, "s2")
	second := zrep(t, "run", "--json", side(src), side(dst)).mustExit(t, 0)
	mustMatch(t, dst, snapshots(t, src))

	for _, r := range []result{first, second} {
		fs := r.report(t).filesystem(t, src)
		if len(fs.Steps) != 1 {
			t.Fatalf("want one step, got %v", fs.Steps)
		}
		s := fs.Steps[0]
		if s.ExpectedBytes == nil {
			t.Errorf("step %s: expected_bytes is null; OpenZFS 2.3 gives an estimate (zfs send -nP)", s)
			continue
		}
		if s.Bytes < 50<<20 {
			t.Errorf("step %s: %d bytes sent, want at least 50 MiB", s, s.Bytes)
		}
		if !withinPercent(*s.ExpectedBytes, s.Bytes, 5) {
			t.Errorf("step %s: expected_bytes %d is not within 5%% of the %d bytes sent", s, *s.ExpectedBytes, s.Bytes)
		}
	}
}

// killReceiveScript runs on the guest: it says "watching" once it runs,
// waits for a `zfs receive` into $1 to have read $2 bytes of its stream,
// then kills it (SIGKILL), giving up after $3 seconds. It prints what it
// did.
const killReceiveScript = `
echo watching
end=$((SECONDS + $3)); seen=0
while [ $SECONDS -lt $end ]; do
	for p in $(pgrep -x zfs || true); do
		cmd=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) || continue
		case $cmd in *" receive "* | *" recv "*) ;; *) continue ;; esac
		case $cmd in *"$1"*) ;; *) continue ;; esac
		r=$(awk '/^rchar:/ {print $2}' "/proc/$p/io" 2>/dev/null) || continue
		seen=${r:-0}
		if [ "$seen" -ge "$2" ]; then
			kill -9 "$p"
			echo "killed zfs receive (pid $p) after $seen bytes"
			exit 0
		fi
	done
	sleep 0.2
done
echo "no zfs receive into $1 read $2 bytes within $3 s (last seen: $seen bytes)"
exit 1
`

// TestModernResumableTransfer: the receiving zfs receive is killed on the
// guest at about half of a 200 MB step; zrep's retry resumes the partial
// receive (zfs send -t) instead of starting over, so the step is reported
// resumed and sends fewer bytes than the full stream.
func TestModernResumableTransfer(t *testing.T) {
	sp, dp := newPoolSize(t, 512<<20), newPoolSize(t, 512<<20)
	src, dst := sp+"/big", dp+"/big"
	createBulk(t, src, "start", 1)
	snapshot(t, src, "s0")
	zrep(t, "run", side(src), side(dst)).mustExit(t, 0)
	writeBulk(t, src, "big", 200)
	snapshot(t, src, "s1")
	full, err := strconv.ParseInt(strings.TrimSpace(machineOf(src).script(t,
		`zfs send -nP -i "$1@s0" "$1@s1" | awk '$1 == "size" {print $2}'`, src)), 10, 64)
	if err != nil || full < 200<<20 {
		t.Fatalf("size of the 200 MiB incremental stream: %d, %v", full, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	killer := machineOf(dst).command(ctx, "bash", "-euo", "pipefail", "-c", killReceiveScript, "killer",
		dst, strconv.FormatInt(full/2, 10), "600")
	var killerErr bytes.Buffer
	killer.Stderr = &killerErr
	pipe, err := killer.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := killer.Start(); err != nil {
		t.Fatalf("receive killer: %v", err)
	}
	said := bufio.NewReader(pipe)
	// The watcher runs before the receive starts.
	if line, err := said.ReadString('\n'); line != "watching\n" {
		killer.Wait()
		t.Fatalf("the receive killer did not start: %q, %v: %s", line, err, killerErr.String())
	}
	r := zrepCtx(ctx, t, nil, "run", "--json", "--retries", "3", side(src), side(dst))
	rest, _ := io.ReadAll(said)
	err = killer.Wait()
	t.Logf("receive killer: %s (err %v)", strings.TrimSpace(string(rest)), err)
	if err != nil {
		t.Fatalf("the receive was not killed half-way, so nothing was resumed: %s%s", rest, killerErr.String())
	}
	r.mustExit(t, 0)
	mustMatch(t, dst, snapshots(t, src))

	fs := r.report(t).filesystem(t, src)
	if len(fs.Steps) != 1 {
		t.Fatalf("want one step s0>s1, got %v", fs.Steps)
	}
	s := fs.Steps[0]
	if !s.Resumed {
		t.Errorf("step %s: resumed is false; the retry should continue the partial receive (zfs send -t)", s)
	}
	if s.Bytes <= 0 || s.Bytes >= full {
		t.Errorf("step %s: %d bytes reported, want fewer than the full stream's %d", s, s.Bytes, full)
	}
	if tok, _ := property(t, dst, "receive_resume_token"); tok != "-" {
		t.Errorf("%s still holds a resume token after the run: %.40s...", dst, tok)
	}
}

// TestModernReplicationCursor: after a run, the source's newest common
// snapshot is destroyed; the next run still replicates incrementally, from
// the bookmark zrep keeps as its replication cursor (#zrep_...).
func TestModernReplicationCursor(t *testing.T) {
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/cur", dp+"/cur"
	createFS(t, src, "one")
	snapshot(t, src, "s1")
	zrep(t, "run", side(src), side(dst)).mustExit(t, 0)
	s1 := snapshots(t, src)
	mustMatch(t, dst, s1)

	zfs(t, "destroy", src+"@s1")
	writeFile(t, src, "f", "two")
	snapshot(t, src, "s2")
	r := zrep(t, "run", "--json", side(src), side(dst)).mustExit(t, 0)
	mustMatch(t, dst, append(s1, snapshots(t, src)...))
	if got := readFile(t, dst, "f"); got != "two" {
		t.Errorf("%s holds %q, want %q", dst, got, "two")
	}
	fs := r.report(t).filesystem(t, src)
	if len(fs.Steps) != 1 || fs.Steps[0].From == nil || !strings.HasPrefix(*fs.Steps[0].From, "#zrep_") {
		t.Errorf("want one step from a #zrep_ bookmark to s2, got %v", fs.Steps)
	}
	if marks := zfs(t, "list", "-H", "-o", "name", "-t", "bookmark", src); !strings.Contains(marks, src+"#zrep_") {
		t.Errorf("no #zrep_ bookmark on %s after the run: %q", src, marks)
	}
}

// TestModernPlaceholderKeepsRecvSetCanmount: a placeholder replaced by
// its source's full receive keeps the canmount the operator asked for
// with --recv-set (SPEC 12), rather than being made canmount=on.
// zfs-fuse's zfs receive has no -o.
func TestModernPlaceholderKeepsRecvSetCanmount(t *testing.T) {
	sp, dp := newPool(t), newPool(t)
	root := sp + "/root"
	createFS(t, root, "root")
	createFS(t, root+"/p", "p")
	createFS(t, root+"/p/child", "child")
	snapshot(t, root, "s1")
	snapshot(t, root+"/p/child", "s1")
	dst := dp + "/copy"
	args := []string{"run", "-r", "--recv-set", "canmount=noauto", side(root), side(dst)}
	zrep(t, args...).mustExit(t, 0)
	if v, src := property(t, dst+"/p", "zrep:placeholder"); v != "on" || src != "local" {
		t.Fatalf("%s/p: zrep:placeholder=%s (%s), want a placeholder", dst, v, src)
	}

	snapshot(t, root+"/p", "s2")
	zrep(t, args...).mustExit(t, 0)
	mustMatch(t, dst+"/p", snapshots(t, root+"/p"))
	if v, _ := property(t, dst+"/p", "zrep:placeholder"); v == "on" {
		t.Errorf("%s/p is still a placeholder", dst)
	}
	for _, fs := range []string{"", "/p", "/p/child"} {
		if v, _ := property(t, dst+fs, "canmount"); v != "noauto" {
			t.Errorf("%s: canmount=%s, want noauto as --recv-set asked", dst+fs, v)
		}
	}
}
