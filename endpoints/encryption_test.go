package endpoints

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeLockedZFS puts a zfs first on PATH that logs each argv (words
// separated by '|') and refuses to create a dataset as OpenZFS 2.3 does
// below an encryption root whose key is not loaded, unless the dataset
// is created unencrypted; with open set it creates anything.
func fakeLockedZFS(t *testing.T, open bool) (log string) {
	t.Helper()
	dir := t.TempDir()
	log = filepath.Join(dir, "argv")
	script := `#!/bin/sh
{ for a; do printf '%s|' "$a"; done; echo; } >>"$FAKE_ZFS_LOG"
for last; do :; done
case "$1 $FAKE_ZFS_OPEN" in
"create ")
	case "$*" in *encryption=off*) exit 0 ;; esac
	echo "cannot create '$last': encryption root's key is not loaded or provided" >&2; exit 1 ;;
create*) exit 0 ;;
*) echo "fake zfs: unexpected $*" >&2; exit 1 ;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "zfs"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKE_ZFS_LOG", log)
	if open {
		t.Setenv("FAKE_ZFS_OPEN", "1")
	}
	return log
}

// TestPlaceholderBelowALockedParent: a placeholder is created as usual,
// inheriting its parent's encryption; only where zfs refuses because the
// parent's key is not loaded is it created unencrypted (it holds no data),
// so that raw receives below it work.
func TestPlaceholderBelowALockedParent(t *testing.T) {
	for _, c := range []struct {
		name string
		open bool
		want []string
	}{
		{"parent open", true, []string{"create|-o|canmount=off|-o|zrep:placeholder=on|backup/lock/p|"}},
		{"parent locked", false, []string{
			"create|-o|canmount=off|-o|zrep:placeholder=on|backup/lock/p|",
			"create|-o|canmount=off|-o|zrep:placeholder=on|-o|encryption=off|backup/lock/p|",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			log := fakeLockedZFS(t, c.open)
			e := New(Side{Dataset: "backup/lock"}, Options{Role: "destination", Recursive: true})
			if err := e.CreatePlaceholder(context.Background(), "backup/lock/p"); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(log)
			if got := strings.Fields(string(b)); strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("zfs ran\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

// TestParseGetEncryption: the listing gives each filesystem its
// encryption, encryption root and key status as OpenZFS 2.3 printed them.
func TestParseGetEncryption(t *testing.T) {
	fss, err := ParseGet(strings.NewReader(readCapture(t, openzfs, "get-encryption").out), "tank/lock")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, fs := range fss {
		got = append(got, fs.Path+" "+fs.Encryption+" "+fs.EncryptionRoot+" "+fs.KeyStatus)
	}
	want := []string{
		"tank/lock aes-256-gcm tank/lock unavailable",
		"tank/lock/p2 off  ",
		"tank/lock/ph2 off  ",
		"tank/lock/r1 aes-256-gcm tank/lock/r1 unavailable",
		"tank/lock/r1/child aes-256-gcm tank/lock/r1/child available",
		"tank/lock/r1/plain off  ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("listed\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestParseGetEncryptionStrictly: encryption values that no zfs prints
// are an error naming the filesystem, never a guess.
func TestParseGetEncryptionStrictly(t *testing.T) {
	for name, lines := range map[string][]string{
		"cipher with a space":   {"tank/a\tencryption\taes 256\t-", "tank/a\tencryptionroot\ttank/a\t-", "tank/a\tkeystatus\tavailable\t-"},
		"unknown key status":    {"tank/a\tencryption\taes-256-gcm\t-", "tank/a\tencryptionroot\ttank/a\t-", "tank/a\tkeystatus\tmaybe\t-"},
		"root not a dataset":    {"tank/a\tencryption\taes-256-gcm\t-", "tank/a\tencryptionroot\t-x\t-", "tank/a\tkeystatus\tavailable\t-"},
		"off with a root":       {"tank/a\tencryption\toff\t-", "tank/a\tencryptionroot\ttank\t-", "tank/a\tkeystatus\t-\t-"},
		"encrypted without key": {"tank/a\tencryption\taes-256-gcm\t-", "tank/a\tencryptionroot\ttank/a\t-"},
	} {
		t.Run(name, func(t *testing.T) {
			out := "tank/a\ttype\tfilesystem\t-\n" + strings.Join(lines, "\n") + "\n"
			if fss, err := ParseGet(strings.NewReader(out), "tank/a"); err == nil || !strings.Contains(err.Error(), "tank/a") {
				t.Errorf("parsed %+v, err %v; want an error naming tank/a", fss, err)
			}
		})
	}
}
