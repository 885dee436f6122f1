//go:build openzfs

package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDelegationResumesAfterACut: as the account that holds only what
// `zrep allow` printed, a transfer whose zfs receive is killed half-way is
// resumed by the retry (zfs receive -s, zfs send -t), and the destination
// gets the source's snapshot.
func TestDelegationResumesAfterACut(t *testing.T) {
	requireDelegation(t)
	pool := newPoolSize(t, 512<<20)
	src, dst := pool+"/big", pool+"/bk/big"
	createBulk(t, src, "start", 1)
	zfs(t, "create", pool+"/bk")
	snapshot(t, src, "s0")
	S, D := asAccount(src), asAccount(dst)
	grantPrinted(t, zrep(t, "allow", S, D).mustExit(t, 0).stdout)
	zrep(t, "run", S, D).mustExit(t, 0)

	writeBulk(t, src, "big", 96)
	snapshot(t, src, "s1")
	full, err := strconv.ParseInt(strings.TrimSpace(machineOf(src).script(t,
		`zfs send -nP -i "$1@s0" "$1@s1" | awk '$1 == "size" {print $2}'`, src)), 10, 64)
	if err != nil || full < 96<<20 {
		t.Fatalf("size of the 96 MiB incremental stream: %d, %v", full, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	type killed struct {
		out string
		err error
	}
	killer := make(chan killed, 1)
	go func() {
		out, err := machineOf(dst).run(ctx, nil, "bash", "-euo", "pipefail", "-c", killReceiveScript, "killer",
			dst, strconv.FormatInt(full/2, 10), "600")
		killer <- killed{out, err}
	}()
	time.Sleep(2 * time.Second) // let the watcher start before the receive does
	r := zrepCtx(ctx, t, nil, "run", "--json", "--retries", "3", S, D)
	k := <-killer
	t.Logf("receive killer: %s (err %v)", strings.TrimSpace(k.out), k.err)
	if k.err != nil {
		t.Fatalf("the receive was not killed half-way, so nothing was resumed: %s", k.out)
	}
	r.mustExit(t, 0)
	mustMatch(t, dst, snapshots(t, src))
	if s := r.report(t).filesystem(t, src).Steps; len(s) != 1 || !s[0].Resumed {
		t.Errorf("want one resumed step s0>s1, got %v", s)
	}
}
