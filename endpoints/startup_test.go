package endpoints

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zrep/zrep/pdu"
)

// fakeZFS puts a zfs first on PATH that logs each argv (one line, words
// separated by '|') to the returned file and answers like OpenZFS, or like
// zfs-fuse with legacy set: `version` unknown, no -t. Datasets named
// */missing* do not exist; a parent named */gone does not either.
func fakeZFS(t *testing.T, legacy bool) (log string) {
	t.Helper()
	dir := t.TempDir()
	log = filepath.Join(dir, "argv")
	script := `#!/bin/sh
{ for a; do printf '%s|' "$a"; done; echo; } >>"$FAKE_ZFS_LOG"
for last; do :; done
case "$1" in
version)
	if [ -n "$FAKE_ZFS_LEGACY" ]; then echo "unrecognized command 'version'" >&2; echo "usage: zfs command args ..." >&2; exit 2; fi
	echo zfs-2.3.2-1; echo zfs-kmod-2.3.2-1 ;;
get)
	case "$last" in
	*/missing*|*/gone) echo "cannot open '$last': dataset does not exist" >&2; exit 1 ;;
	esac
	if [ "$2" = -H ] && [ "$3" = -o ] && [ "$4" = value ]; then echo filesystem; exit 0; fi
	case "$*" in
	*name,property,source*|*name,property,value\ *) exit 0 ;;
	esac
	printf '%s\ttype\tfilesystem\t-\n' "$last"
	printf '%s@s 1\ttype\tsnapshot\t-\n%s@s 1\tguid\t42\t-\n%s@s 1\tcreatetxg\t7\t-\n' "$last" "$last" "$last" ;;
*) echo "fake zfs: unexpected $*" >&2; exit 1 ;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "zfs"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKE_ZFS_LOG", log)
	if legacy {
		t.Setenv("FAKE_ZFS_LEGACY", "1")
	}
	return log
}

func fakeCalls(t *testing.T, log string) []string {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(b)), " ", "_"))
}

func TestStartupIsOneLineOfQuotedArgvs(t *testing.T) {
	st := startupArgv("tank/a b", true, "tank")
	if len(st.argv) != 3 || st.argv[0] != "sh" || st.argv[1] != "-c" {
		t.Fatalf("argv %q", st.argv)
	}
	script := st.argv[2]
	if strings.ContainsAny(script, "\n!") {
		t.Fatalf("the script holds a newline or '!', which csh would not take inside quotes: %q", script)
	}
	for _, argv := range [][]string{st.version, st.openZFS, st.legacy, st.parent} {
		if !strings.Contains(script, quotedLine(argv)) {
			t.Errorf("script lacks %q", quotedLine(argv))
		}
	}
	if strings.Contains(script, " tank/a b") {
		t.Errorf("a name reaches the shell unquoted: %q", script)
	}
	if st := startupArgv("tank/a", false, ""); st.parent != nil || strings.Contains(st.argv[2], markParent) {
		t.Errorf("a source's start-up checks a parent: %q", st.argv[2])
	}
}

func TestStartupProbesAndListsInOneCommand(t *testing.T) {
	for _, c := range []struct {
		name    string
		legacy  bool
		version string
		list    string
	}{
		{"OpenZFS", false, "zfs-2.3.2-1", "get|-H|-p|-r|-t|filesystem,volume,snapshot,bookmark|-o|name,property,value,source|type,guid,createtxg,creation,origin,receive_resume_token,encryption,encryptionroot,keystatus|tank/a_b|"},
		{"zfs-fuse", true, "", "get|-H|-p|-r|-o|name,property,value,source|type,guid,createtxg,creation,origin|tank/a_b|"},
	} {
		t.Run(c.name, func(t *testing.T) {
			log := fakeZFS(t, c.legacy)
			argvLog := filepath.Join(t.TempDir(), "argv.jsonl")
			t.Setenv(ArgvLogEnv, argvLog)
			e := New(Side{Dataset: "tank/a b"}, Options{Role: "destination", Recursive: true})
			fss, err := e.ListFilesystems(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(fss) != 1 || fss[0].Path != "tank/a b" || len(fss[0].Versions) != 1 || fss[0].Versions[0].Name != "s 1" {
				t.Fatalf("listed %+v", fss)
			}
			// The probe, the native listing, and zrep's own properties:
			// where they are set, and their values.
			if got := fakeCalls(t, log); len(got) != 5 || got[0] != "version|" || got[1] != c.list ||
				!strings.Contains(got[2], "name,property,source") || !strings.Contains(got[3], "name,property,value|-s|local,received") ||
				!strings.Contains(got[4], "name,property,value|-s|inherited") {
				t.Fatalf("zfs ran %q", got)
			}
			caps, err := e.Capabilities(context.Background())
			if err != nil || caps.Version != c.version || caps.ResumeTokens == c.legacy {
				t.Fatalf("capabilities %+v, %v", caps, err)
			}
			if n := len(fakeCalls(t, log)); n != 5 {
				t.Fatalf("Capabilities probed again: %d zfs commands", n)
			}
			b, _ := os.ReadFile(argvLog)
			if got := strings.Count(string(b), "\n"); got != 5 || !strings.Contains(string(b), `"argv":["zfs","version"]`) {
				t.Fatalf("argv log:\n%s", b)
			}
			// The next listing is the listing alone.
			if _, err := e.ListFilesystems(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := fakeCalls(t, log); len(got) != 9 || got[5] != c.list {
				t.Fatalf("second listing ran %q", got)
			}
		})
	}
}

func TestStartupChecksTheParentInTheSameCommand(t *testing.T) {
	log := fakeZFS(t, false)
	ctx := context.Background()

	e := New(Side{Dataset: "tank/missing"}, Options{Role: "destination", Recursive: true})
	fss, err := e.ListFilesystems(ctx)
	if err != nil || len(fss) != 0 {
		t.Fatalf("missing destination under an existing parent: %v, %v", fss, err)
	}
	if got := fakeCalls(t, log); len(got) != 3 || got[2] != "get|-H|-o|value|type|tank|" {
		t.Fatalf("zfs ran %q", got)
	}

	e = New(Side{Dataset: "tank/gone/missing"}, Options{Role: "destination"})
	_, err = e.ListFilesystems(ctx)
	if pdu.ClassOf(err) != pdu.Permanent || !errors.Is(err, ErrDatasetNotExist) || !strings.Contains(err.Error(), "destination parent tank/gone does not exist") {
		t.Fatalf("missing parent: %v", err)
	}

	e = New(Side{Dataset: "tank/missing"}, Options{Role: "source"})
	before := len(fakeCalls(t, log))
	_, err = e.ListFilesystems(ctx)
	if pdu.ClassOf(err) != pdu.Permanent || !strings.Contains(err.Error(), "source tank/missing does not exist") {
		t.Fatalf("missing source: %v", err)
	}
	if got := fakeCalls(t, log)[before:]; len(got) != 2 {
		t.Fatalf("a source's start-up ran %q", got)
	}
}

func TestStartupWithoutZFS(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink("/bin/sh", filepath.Join(dir, "sh")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	e := New(Side{Dataset: "tank/a"}, Options{Role: "source"})
	_, err := e.ListFilesystems(context.Background())
	t.Logf("no zfs: %v", err)
	if err == nil || pdu.ClassOf(err) != pdu.Permanent || !strings.Contains(err.Error(), "probe zfs features") {
		t.Fatalf("no zfs: %v", err)
	}
}

func TestParseStartup(t *testing.T) {
	for _, c := range []struct {
		name, out string
		ok        bool
		parent    string
	}{
		{"complete", "zrep:probe 0\nzfs-2.3\nzrep:list\np\ttype\tfilesystem\t-\n\nzrep:end 0\n\nzrep:sources 0\nzrep:values 0 1\nx", true, ""},
		{"no sources", "zrep:probe 0\nzfs-2.3\nzrep:list\np\ttype\tfilesystem\t-\n\nzrep:end 0\n", false, ""},
		{"values cut short", "zrep:probe 0\nzfs-2.3\nzrep:list\np\ttype\tfilesystem\t-\n\nzrep:end 0\np\tzrep:sync\tlocal\n\nzrep:sources 0\nzrep:values 0 22\np\tzrep:sync\toff\nx", false, ""},
		{"with parent", "zrep:probe 0\nzfs-2.3\nzrep:list\n\nzrep:end 1\nfilesystem\n\nzrep:parent 0\n", true, "filesystem"},
		{"no probe", "ssh: connect refused\n", false, ""},
		{"cut in the version", "zrep:probe 0\nzfs-2", false, ""},
		{"cut in the listing", "zrep:probe 0\nzrep:list\np\ttype\tfilesystem\t-\n", false, ""},
		{"a stray line", "zrep:probe 0\nzrep:list\nzrep:ended\n", false, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := parseStartup(bufio.NewReader(strings.NewReader(c.out)), "p")
			if (out.err == nil) != c.ok || out.parent != c.parent {
				t.Fatalf("%+v", out)
			}
		})
	}
}

func FuzzParseStartup(f *testing.F) {
	f.Add("zrep:probe 0\nzfs-2.3\nzrep:list\np\ttype\tfilesystem\t-\n\nzrep:end 0\nfilesystem\n\nzrep:parent 0\n")
	seedFromCaptures(f)
	f.Fuzz(func(t *testing.T, s string) {
		out := parseStartup(bufio.NewReader(strings.NewReader(s)), "p")
		if out.err == nil && !out.probed {
			t.Fatalf("no error, no probe: %+v", out)
		}
	})
}
