package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// Running without root (SPEC section 13): an account that is not root, on
// the OpenZFS guest, holding only the permissions `zrep allow` printed.

// delegationAccount is the guest account the tests log in as; each test
// grants it permissions on its own pools only, which go with them.
const delegationAccount = "zrepdeleg"

// requireDelegation skips on zfs-fuse, which cannot delegate, and makes
// sure the account exists on the guest and accepts the harness's key.
func requireDelegation(t *testing.T) {
	t.Helper()
	requireLab(t)
	if lab.target.platform != "openzfs" {
		t.Skip("zfs-fuse serves only root: an account that is not root cannot reach its daemon (connect: Permission denied), so there is nothing to delegate; runs on the OpenZFS tier")
	}
	pub, err := exec.Command("ssh-keygen", "-y", "-f", lab.target.sshKey).Output()
	if err != nil {
		t.Fatalf("public key of %s: %v", lab.target.sshKey, err)
	}
	lab.target.script(t, `
id "$1" >/dev/null 2>&1 || useradd -m -s /bin/sh "$1"
home=$(getent passwd "$1" | cut -d: -f6)
install -d -m 700 -o "$1" -g "$1" "$home/.ssh"
printf '%s\n' "$2" >"$home/.ssh/authorized_keys"
chown "$1:" "$home/.ssh/authorized_keys"; chmod 600 "$home/.ssh/authorized_keys"`,
		delegationAccount, strings.TrimSpace(string(pub)))
}

// asAccount spells ds on the guest as zrep's SRC or DST over ssh as the
// delegation account.
func asAccount(ds string) string {
	return delegationAccount + "@" + lab.target.sshHost + ":" + ds
}

// grantPrinted runs, as root on the guest, the zfs allow commands of
// `zrep allow`'s output, and returns them.
func grantPrinted(t *testing.T, out string) []string {
	t.Helper()
	var cmds []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "zfs allow ") {
			lab.target.script(t, line)
			cmds = append(cmds, line)
		} else if line != "" && !strings.HasPrefix(line, "#") {
			t.Fatalf("zrep allow printed %q, neither a comment nor a zfs allow command", line)
		}
	}
	return cmds
}

// retentionFlags is the README's crontab job.
var retentionFlags = []string{"--snapshot", "--hold", "--keep-source", "last=1", "--keep-dest", "last=2"}

func withFlags(cmd string, flags []string, args ...string) []string {
	return append(append([]string{cmd}, flags...), args...)
}

// TestDelegationRunsWithWhatAllowPrinted: the account holds only what
// `zrep allow` printed for the job; three runs with --snapshot --hold
// --keep-source last=1 --keep-dest last=2, both sides over ssh as that
// account, exit 0, and the destination holds the source's snapshots
// (guids), pruned to two; the source keeps one, held.
func TestDelegationRunsWithWhatAllowPrinted(t *testing.T) {
	requireDelegation(t)
	pool := newPool(t)
	src, dst := pool+"/src", pool+"/bk/src"
	createFS(t, src, "one")
	zfs(t, "create", pool+"/bk")
	S, D := asAccount(src), asAccount(dst)

	out := zrep(t, withFlags("allow", retentionFlags, S, D)...).mustExit(t, 0).stdout
	cmds := grantPrinted(t, out)
	want := []string{
		"zfs allow -u " + delegationAccount + " send,hold,release,bookmark,snapshot,mount,destroy " + src,
		"zfs allow -u " + delegationAccount + " receive,create,mount,destroy " + pool + "/bk",
	}
	if !equalLists(cmds, want) {
		t.Fatalf("zrep allow printed\n%s\nwant\n%s", strings.Join(cmds, "\n"), strings.Join(want, "\n"))
	}

	taken := map[string]string{} // snapshot name to guid, as on the source
	for i, data := range []string{"one", "two", "three"} {
		writeFile(t, src, "f", data)
		t.Logf("run %d as %s", i+1, delegationAccount)
		zrep(t, withFlags("run", retentionFlags, S, D)...).mustExit(t, 0)
		for _, s := range snapshots(t, src) {
			name, guid, _ := strings.Cut(s, "=")
			taken[name] = guid
		}
	}
	got := snapshots(t, dst)
	if len(got) != 2 {
		t.Fatalf("destination keeps %v, want the newest 2 (--keep-dest last=2)", got)
	}
	for _, s := range got {
		name, guid, _ := strings.Cut(s, "=")
		if taken[name] != guid {
			t.Errorf("destination snapshot %s has guid %s; the source's was %q", name, guid, taken[name])
		}
	}
	srcSnaps := snapshots(t, src)
	if len(srcSnaps) != 1 || srcSnaps[0] != got[1] {
		t.Errorf("source keeps %v, want only the newest, %s (--keep-source last=1)", srcSnaps, got[1])
	}
	newest, _, _ := strings.Cut(got[1], "=")
	if holds := zfs(t, "holds", "-H", src+"@"+newest); !strings.Contains(holds, "zrep_") {
		t.Errorf("the newest source snapshot has no zrep hold (--hold): %q", holds)
	}
	if readFile(t, dst, "f") != "three" {
		t.Errorf("destination's newest snapshot does not hold the last data")
	}
}

// TestDelegationPushAndPullInTheGuest: zrep itself runs in the guest as
// the account, which reaches the guest's own sshd with a key of its own:
// a push (local source, destination over ssh) and a pull (source over
// ssh, local destination) of the same job, each with only what `zrep
// allow` printed for it there, exit 0 twice, and each destination's newest
// snapshot is the source's.
func TestDelegationPushAndPullInTheGuest(t *testing.T) {
	requireDelegation(t)
	pool := newPool(t)
	src := pool + "/src"
	createFS(t, src, "one")
	zfs(t, "create", pool+"/push")
	zfs(t, "create", pool+"/pull")
	lab.target.script(t, `
home=$(getent passwd "$1" | cut -d: -f6)
[ -f "$home/.ssh/id_ed25519" ] || runuser -u "$1" -- ssh-keygen -q -t ed25519 -N '' -f "$home/.ssh/id_ed25519"
cat "$home/.ssh/id_ed25519.pub" >>"$home/.ssh/authorized_keys"`, delegationAccount)
	bin := "/tmp/zrep-e2e-" + filepath.Base(lab.tmp)
	copyToGuest(t, lab.zrep, bin)
	// asUser runs zrep COMMAND ARGS... in the guest as the account, with
	// the ssh options that reach the guest's own sshd.
	asUser := func(args ...string) (string, error) {
		argv := []string{"runuser", "-u", delegationAccount, "--", "env",
			"ZREP_LOCK_DIR=/tmp/zrep-e2e-locks-" + delegationAccount, bin, args[0]}
		for _, o := range []string{"StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "BatchMode=yes", "LogLevel=ERROR"} {
			argv = append(argv, "--ssh-option", o)
		}
		argv = append(argv, args[1:]...)
		return lab.target.run(context.Background(), nil, argv...)
	}
	self := delegationAccount + "@127.0.0.1:"
	for _, job := range []struct {
		name, src, dst, dstFS string
	}{
		{"push", src, self + pool + "/push/src", pool + "/push/src"},
		{"pull", self + src, pool + "/pull/src", pool + "/pull/src"},
	} {
		out, err := asUser(withFlags("allow", retentionFlags, job.src, job.dst)...)
		if err != nil {
			t.Fatalf("%s: zrep allow in the guest: %v\n%s", job.name, err, out)
		}
		if n := strings.Count(out, "\nzfs allow -u "+delegationAccount+" "); n != 2 {
			t.Fatalf("%s: zrep allow as %s printed %d grants for it, want 2:\n%s", job.name, delegationAccount, n, out)
		}
		grantPrinted(t, out)
		for i, data := range []string{"one", "two"} {
			writeFile(t, src, "f", job.name+data)
			if out, err := asUser(withFlags("run", append([]string{"-q"}, retentionFlags...), job.src, job.dst)...); err != nil {
				t.Fatalf("%s run %d in the guest as %s: %v\n%s", job.name, i+1, delegationAccount, err, out)
			}
		}
		srcSnaps, dstSnaps := snapshots(t, src), snapshots(t, job.dstFS)
		if len(dstSnaps) != 2 || !slices.Contains(srcSnaps, dstSnaps[1]) || dstSnaps[1] != srcSnaps[len(srcSnaps)-1] {
			t.Errorf("%s: source %v, destination %v: want the source's newest as the destination's newest of two", job.name, srcSnaps, dstSnaps)
		}
	}
}

// copyToGuest copies a file of this host to path on the guest.
func copyToGuest(t *testing.T, from, to string) {
	t.Helper()
	cmd := lab.target.command(context.Background(), "sh", "-c", `cat >"$1" && chmod 755 "$1"`, "copy", to)
	f, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Stdin = f
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("copying %s to the guest's %s: %v\n%s", from, to, err, out)
	}
	t.Cleanup(func() { lab.target.run(context.Background(), nil, "rm", "-f", to) })
}

// TestDelegationMissingPermissionStopsBeforeAnything: with one permission
// taken away on each side in turn, plan and run exit 1 before anything
// changes (run --snapshot takes no snapshot), naming the permission, the
// dataset, the account and the zfs allow command that grants it.
func TestDelegationMissingPermissionStopsBeforeAnything(t *testing.T) {
	requireDelegation(t)
	pool := newPool(t)
	src, dst := pool+"/src", pool+"/bk/src"
	createFS(t, src, "one")
	zfs(t, "create", pool+"/bk")
	S, D := asAccount(src), asAccount(dst)
	grantPrinted(t, zrep(t, withFlags("allow", retentionFlags, S, D)...).mustExit(t, 0).stdout)
	zrep(t, withFlags("run", retentionFlags, S, D)...).mustExit(t, 0)

	for _, tc := range []struct {
		perm, on, fix string
	}{
		{"hold", src, "zfs allow -u " + delegationAccount + " hold " + src},
		{"destroy", pool + "/bk", "zfs allow -u " + delegationAccount + " destroy " + pool + "/bk"},
	} {
		zfs(t, "unallow", "-u", delegationAccount, tc.perm, tc.on)
		before := append(snapshots(t, src), snapshots(t, dst)...)
		for _, cmd := range []string{"plan", "run"} {
			r := zrep(t, withFlags(cmd, retentionFlags, S, D)...).mustExit(t, 1)
			for _, want := range []string{tc.perm + " (", delegationAccount, tc.fix} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("%s without %s on %s: stderr lacks %q:\n%s", cmd, tc.perm, tc.on, want, r.stderr)
				}
			}
			for _, c := range r.argv {
				if sub := c.Argv[1]; sub != "allow" {
					t.Errorf("%s ran %s after finding %s missing", cmd, c, tc.perm)
				}
			}
			if after := append(snapshots(t, src), snapshots(t, dst)...); !equalLists(after, before) {
				t.Errorf("%s without %s changed the snapshots:\nbefore %v\nafter  %v", cmd, tc.perm, before, after)
			}
		}
		zfs(t, "allow", "-u", delegationAccount, tc.perm, tc.on)
	}
	zrep(t, withFlags("run", retentionFlags, S, D)...).mustExit(t, 0)
}
