package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The tests in this file need native encryption, which zfs-fuse (pool
// version 23) does not have: they run on the OpenZFS tier only.

// requireEncryption skips where the tier's zfs has no native encryption.
func requireEncryption(t *testing.T) {
	t.Helper()
	requireLab(t)
	if lab.target.platform != "openzfs" {
		t.Skip("zfs-fuse has no native encryption (ZFS pool version 23); the encryption tests run on the OpenZFS tier (make test-openzfs)")
	}
}

// newKey writes a passphrase file for pool on its machine and returns its
// keylocation (file://...); it is removed after the test.
func newKey(t *testing.T, pool string) string {
	t.Helper()
	m := machineOf(pool)
	path := "/root/" + pool + ".key"
	m.script(t, `umask 077; printf '%s\n' "$2" >"$1"`, path, "passphrase of "+pool+" "+marker(t, ""))
	t.Cleanup(func() { m.run(context.Background(), nil, "rm", "-f", path) })
	return "file://" + path
}

// encrypted are the zfs create options of an encryption root whose key is
// at keylocation; compression stays off so that a test can look for
// plaintext in the pool's image.
func encrypted(keylocation string) []string {
	return []string{"-o", "compression=off", "-o", "encryption=on", "-o", "keyformat=passphrase", "-o", "keylocation=" + keylocation}
}

// marker is a unique line of text that no pool holds by chance.
func marker(t *testing.T, what string) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return what + "-" + hex.EncodeToString(b)
}

// imageHolds reports whether the image file of pool (synced first) holds
// text as it is.
func imageHolds(t *testing.T, pool, text string) bool {
	t.Helper()
	m := machineOf(pool)
	out := m.script(t, `zpool sync "$1"; grep -c -a -F -e "$2" "$3" || true`, pool, text, m.poolDir+"/"+pool+".img")
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("grep in the image of %s: %q", pool, out)
	}
	return n > 0
}

// encryptionOf returns fs's encryption, encryptionroot and keystatus.
func encryptionOf(t *testing.T, fs string) (enc, root, key string) {
	t.Helper()
	f := strings.Split(strings.TrimSpace(zfs(t, "get", "-H", "-o", "value", "encryption,encryptionroot,keystatus", fs)), "\n")
	if len(f) != 3 {
		t.Fatalf("encryption of %s: %q", fs, f)
	}
	return f[0], f[1], f[2]
}

// TestEncryptedTreeToKeylessBackup: a mixed source tree goes to a backup
// host that has no key, below a destination parent that is itself
// encrypted with its key not loaded. Every encrypted filesystem is sent
// raw by default (an encrypted child of an unencrypted parent, and a raw
// tree below a placeholder, too), every other one as it is (an unencrypted
// child of an encrypted parent included); the placeholder holds no data;
// the backup host can read none of the encrypted data; plan and status
// show the keys; incrementals follow. Then the raw backup is restored with
// zrep run BACKUP NEWSOURCE, opened with the source's key, and the next
// backup from it goes on incrementally.
func TestEncryptedTreeToKeylessBackup(t *testing.T) {
	requireEncryption(t)
	sp, dp := newPool(t), newPool(t)
	key, hostKey := newKey(t, sp), newKey(t, dp)
	src, dst := sp+"/top", dp+"/lock/top"
	secret, plain := marker(t, "zrep-secret"), marker(t, "zrep-plain")
	sm := machineOf(sp)
	// top: not encrypted, no snapshot (a placeholder on the backup);
	// top/p: not encrypted, holding the encryption root top/p/enc;
	// top/enc: an encryption root, holding top/enc/kid (inheriting it)
	// and top/enc/plain (encryption=off).
	sm.script(t, `
enc="$2"; set -- "$1" "$3" "$4"
zfs create -o compression=off "$1/top"
zfs create "$1/top/p"
zfs create $enc "$1/top/p/enc"
zfs create $enc "$1/top/enc"
zfs create "$1/top/enc/kid"
zfs create -o encryption=off "$1/top/enc/plain"
zfs create "$1/back"
for fs in top/p/enc top/enc top/enc/kid; do echo "$2 $fs" >"/$1/$fs/f"; done
for fs in top/p top/enc/plain; do echo "$3 $fs" >"/$1/$fs/f"; done
zfs snapshot "$1/top/p@s1" "$1/top/p/enc@s1" "$1/top/enc@s1" "$1/top/enc/kid@s1" "$1/top/enc/plain@s1"`,
		sp, strings.Join(encrypted(key), " "), secret, plain)
	// The backup host's own encrypted parent, its key not loaded.
	machineOf(dp).script(t, `zfs create $2 "$1/lock"; zfs unmount "$1/lock"; zfs unload-key "$1/lock"`, dp, strings.Join(encrypted(hostKey), " "))
	if imageHolds(t, sp, secret) || !imageHolds(t, sp, plain) {
		t.Fatalf("the source pool's image should hold the plain marker and not the secret one")
	}

	// The plan says, per filesystem, raw or as it is, and why.
	r := zrep(t, "plan", "-r", "--json", side(src), side(dst)).mustExit(t, 0)
	wantSend := map[string]string{
		src: "plain", src + "/p": "plain", src + "/p/enc": "raw", src + "/enc": "raw", src + "/enc/kid": "raw", src + "/enc/plain": "plain",
	}
	for _, f := range jsonOf(t, r)["filesystems"].([]any) {
		fp := f.(map[string]any)
		fs := fp["filesystem"].(string)
		if fp["send"] != wantSend[fs] || fp["send_reason"] == "" {
			t.Errorf("plan of %s: send %v (%v), want %s", fs, fp["send"], fp["send_reason"], wantSend[fs])
		}
		if fs == src+"/enc/kid" {
			se := fp["source_encryption"].(map[string]any)
			if se["encrypted"] != true || se["encryption_root"] != src+"/enc" || se["key_status"] != "available" {
				t.Errorf("plan of %s: source_encryption %v", fs, se)
			}
		}
	}

	zrep(t, "run", "-r", "--json", side(src), side(dst)).mustExit(t, 0)
	for _, fs := range []string{"/p", "/p/enc", "/enc", "/enc/kid", "/enc/plain"} {
		mustMatch(t, dst+fs, snapshots(t, src+fs))
	}
	for fs, raw := range map[string]bool{"": false, "/p": false, "/p/enc": true, "/enc": true, "/enc/kid": true, "/enc/plain": false} {
		enc, root, key := encryptionOf(t, dst+fs)
		switch {
		case raw && (enc == "off" || root != dst+fs || key != "unavailable"):
			t.Errorf("%s: encryption %s, root %s, key %s; want a raw copy, its own encryption root, its key unavailable", dst+fs, enc, root, key)
		case !raw && enc != "off":
			t.Errorf("%s: encryption %s, want off (its source is not encrypted, or it is a placeholder)", dst+fs, enc)
		}
	}
	if v, _ := property(t, dst, "zrep:placeholder"); v != "on" {
		t.Errorf("%s is not a placeholder", dst)
	}
	// The backup host cannot read what was encrypted: not mounted, not
	// mountable without the key, and not in the pool's blocks as plaintext;
	// what was not encrypted is there as it is.
	if _, err := machineOf(dp).run(context.Background(), nil, "zfs", "mount", dst+"/enc"); err == nil {
		t.Errorf("%s could be mounted without its key", dst+"/enc")
	}
	if imageHolds(t, dp, secret) {
		t.Errorf("the backup pool holds the encrypted sources' data as plaintext")
	}
	if !imageHolds(t, dp, plain) {
		t.Errorf("the backup pool does not hold the unencrypted sources' data: the search cannot find plaintext")
	}

	st := jsonOf(t, zrep(t, "status", "-r", "--json", side(dst)).mustExit(t, 0))
	for _, f := range st["filesystems"].([]any) {
		fs := f.(map[string]any)
		name, _ := fs["filesystem"].(string)
		wantKey := map[bool]string{true: "unavailable", false: ""}[wantSend[src+strings.TrimPrefix(name, dst)] == "raw"]
		if fs["key_status"] != wantKey || fs["encrypted"] != (wantKey != "") {
			t.Errorf("status of %s: encrypted %v, key_status %v; want key %q", name, fs["encrypted"], fs["key_status"], wantKey)
		}
	}

	// Incrementals, raw where they were.
	sm.script(t, `echo "$2 2" >"/$1/top/enc/f2"
zfs snapshot "$1/top/p@s2" "$1/top/p/enc@s2" "$1/top/enc@s2" "$1/top/enc/kid@s2" "$1/top/enc/plain@s2"`, sp, secret)
	r = zrep(t, "run", "-r", "--json", side(src), side(dst)).mustExit(t, 0)
	if steps := r.report(t).filesystem(t, src+"/enc").Steps; len(steps) != 1 || steps[0].String() != "s1>s2:Completed" {
		t.Errorf("%s: steps %v, want s1>s2", src+"/enc", steps)
	}
	for _, fs := range []string{"/p", "/p/enc", "/enc", "/enc/kid", "/enc/plain"} {
		mustMatch(t, dst+fs, snapshots(t, src+fs))
	}
	if _, _, key := encryptionOf(t, dst+"/enc"); key != "unavailable" || imageHolds(t, dp, secret) {
		t.Errorf("after the incremental: key %s, or plaintext in the backup pool", key)
	}

	// Restore: the raw backup comes back raw, opens with the source's key,
	// holds the data, and the next backup from it is incremental.
	back := sp + "/back/enc"
	zrep(t, "run", "--json", side(dst+"/enc"), side(back)).mustExit(t, 0)
	mustMatch(t, back, snapshots(t, dst+"/enc")[1:]) // --initial newest: s2
	if _, root, key := encryptionOf(t, back); root != back || key != "unavailable" {
		t.Errorf("%s restored: root %s, key %s; want its own root, its key not loaded", back, root, key)
	}
	zfs(t, "load-key", "-L", key, back)
	if got, want := readFile(t, back, "f2"), secret+" 2\n"; got != want {
		t.Errorf("%s holds %q after load-key, want %q", back, got, want)
	}
	zfs(t, "mount", back)
	writeFile(t, back, "f3", secret+" 3\n")
	snapshot(t, back, "s3")
	r = zrep(t, "run", "--json", side(back), side(dst+"/enc")).mustExit(t, 0)
	if steps := r.report(t).filesystem(t, back).Steps; len(steps) != 1 || steps[0].String() != "s2>s3:Completed" {
		t.Errorf("the backup after the restore: steps %v, want s2>s3", steps)
	}
	if got, want := snapshots(t, dst+"/enc"), snapshots(t, back); len(got) != 3 || got[2] != want[1] {
		t.Errorf("%s holds %v, want s1, s2 and %s", dst+"/enc", got, want[1])
	}
	if _, _, key := encryptionOf(t, dst+"/enc"); key != "unavailable" || imageHolds(t, dp, secret) {
		t.Errorf("after the restore's backup: key %s, or plaintext in the backup pool", key)
	}
}

// TestEncryptedDecryptAndSwitching: --decrypt needs the source's key and
// says so; with it the backup is plaintext on purpose; a later run
// without --decrypt (raw, the default) names the conflict and changes
// nothing: switching needs a new destination.
func TestEncryptedDecryptAndSwitching(t *testing.T) {
	requireEncryption(t)
	sp, dp := newPool(t), newPool(t)
	key := newKey(t, sp)
	src, dst := sp+"/s", dp+"/s"
	zfs(t, append(append([]string{"create"}, encrypted(key)...), src)...)
	writeFile(t, src, "f", "decrypted on purpose\n")
	snapshot(t, src, "s1")

	machineOf(sp).script(t, `zfs unmount "$1"; zfs unload-key "$1"`, src)
	r := zrep(t, "run", "--decrypt", "--json", side(src), side(dst)).mustExit(t, 1)
	if f := r.report(t).filesystem(t, src); !strings.Contains(f.Problem, "--decrypt needs the key") {
		t.Errorf("--decrypt without the key: problem %q", f.Problem)
	}
	if exists(t, dst) {
		t.Errorf("%s was created by a send that could not start", dst)
	}
	zfs(t, "load-key", src)

	zrep(t, "run", "--decrypt", side(src), side(dst)).mustExit(t, 0)
	if enc, _, _ := encryptionOf(t, dst); enc != "off" {
		t.Errorf("%s: encryption %s after --decrypt below an unencrypted parent", dst, enc)
	}
	if got := readFile(t, dst, "f"); got != "decrypted on purpose\n" {
		t.Errorf("%s holds %q", dst, got)
	}

	snapshot(t, src, "s2")
	r = zrep(t, "run", "--json", side(src), side(dst)).mustExit(t, 1)
	if f := r.report(t).filesystem(t, src); !strings.Contains(f.Problem, "was received decrypted") || !strings.Contains(f.Problem, "new destination") {
		t.Errorf("raw onto a decrypted backup: problem %q", f.Problem)
	}
	for _, c := range r.argv {
		if c.Role == "destination" && len(c.Argv) > 1 && c.Argv[1] != "get" && c.Argv[1] != "version" && c.Argv[1] != "list" {
			t.Errorf("the conflicting run changed the destination: %s", c)
		}
	}
	mustMatch(t, dst, snapshots(t, src)[:1])
}

// TestEncryptedRawTransferCutResumes: a raw transfer cut mid-stream (its
// zfs send killed) is resumed by the retry, still raw; compressing its
// encrypted stream puts as many bytes on the wire as without. The cut is
// certain (holdFirstSend).
func TestEncryptedRawTransferCutResumes(t *testing.T) {
	requireEncryption(t)
	sp, dp := newPoolSize(t, 256<<20), newPoolSize(t, 256<<20)
	key := newKey(t, sp)
	src, dst := sp+"/r", dp+"/r"
	zfs(t, append(append([]string{"create"}, encrypted(key)...), src)...)
	// Zeros, cheap to write on the emulated guest, are random once
	// encrypted.
	writeBulk(t, src, "data", 24)
	snapshot(t, src, "s1")
	g := holdFirstSend(t, src)
	r := startZrep(t, g.env, "run", "--json", "--retries", "3", "--compress", "zstd", "--buffer", "16M", remote(src), remote(dst))
	g.cut(t)
	res := r.wait(t, 5*time.Minute).mustExit(t, 0)
	mustMatch(t, dst, snapshots(t, src))
	f := res.report(t).filesystem(t, src)
	if len(f.Steps) != 1 || !f.Steps[0].Resumed || receives(res) < 2 {
		t.Errorf("the cut transfer was not resumed: %v, %d receives", f.Steps, receives(res))
	}
	for _, c := range res.argv {
		if c.Role == "source" && len(c.Argv) > 2 && c.Argv[1] == "send" && c.Argv[2] != "-nvP" && c.Argv[2] != "-t" && c.Argv[2] != "-w" {
			t.Errorf("a send that is not raw: %s", c)
		}
	}
	if _, root, key := encryptionOf(t, dst); root != dst || key != "unavailable" {
		t.Errorf("%s: root %s, key %s; want a raw copy", dst, root, key)
	}
	if bytes, wire := wireOf(t, res); wire*100 < bytes*95 {
		t.Errorf("zstd put %d bytes on the wire for %d bytes of an encrypted stream: it should not compress", wire, bytes)
	}
}
