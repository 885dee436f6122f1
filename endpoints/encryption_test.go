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
