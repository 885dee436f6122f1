package endpoints

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zrep/zrep/pdu"
)

// The zrep-hostile-* captures (zfs-fuse) are of a tree whose
// zrep:placeholder and zrep:sync values forge lines: on t/a the value of
// issue 19 ("off\tlocal\n\nzrep:end 0\njunk"), on t/a/c a zrep:sync
// value "on\nPOOL/t/b\tzrep:sync\toff"; t/b is a placeholder with
// zrep:sync on, and the pool above t sets zrep:sync off.
const hostileRoot = "zrepparse1/t"

func hostileCapture(t testing.TB, name string) string {
	t.Helper()
	c := readCapture(t, zfsfuse, "zrep-hostile-"+name)
	if c.rc != 0 {
		t.Fatalf("%s: exit %d", name, c.rc)
	}
	return c.out
}

// flags writes each filesystem's zrep properties.
func flags(fss []*pdu.Filesystem) string {
	var b strings.Builder
	for _, fs := range fss {
		fmt.Fprintf(&b, "%s placeholder=%v syncoff=%v\n", fs.Path, fs.Placeholder, fs.SyncOff)
	}
	return b.String()
}

func TestUserPropsHostileCaptures(t *testing.T) {
	fss, err := ParseGet(strings.NewReader(hostileCapture(t, "list")), hostileRoot)
	if err != nil {
		t.Fatal(err)
	}
	srcs, _, err := parseSources(bufio.NewReader(strings.NewReader(hostileCapture(t, "sources"))), hostileRoot, "")
	if err != nil {
		t.Fatal(err)
	}
	want := wantedValues(srcs, hostileRoot)
	var pairs []string
	for _, w := range want {
		pairs = append(pairs, w.name+" "+w.prop)
	}
	if got := strings.Join(pairs, ", "); got != "zrepparse1/t/a zrep:placeholder, zrepparse1/t/a/c zrep:sync, zrepparse1/t/b zrep:placeholder, zrepparse1/t/b zrep:sync, zrepparse1/t zrep:sync" {
		t.Fatalf("wanted values %s", got)
	}
	// The values listing holds lines that the values forged: not believed.
	listed := hostileCapture(t, "values") + hostileCapture(t, "root-values")
	if vals, ok := parseValues([]byte(listed), want); ok {
		t.Fatalf("believed the values listing: %q", vals)
	}
	// Each alone, as zfs printed it.
	one := map[string]string{
		"zrepparse1/t/a zrep:placeholder": "value-one",
		"zrepparse1/t/a/c zrep:sync":      "value-sync",
		"zrepparse1/t/b zrep:placeholder": "value-b-placeholder",
		"zrepparse1/t/b zrep:sync":        "value-b-sync",
		"zrepparse1/t zrep:sync":          "value-root-sync",
	}
	vals, err := readEach(want, func(ds, prop string) (string, error) {
		return hostileCapture(t, one[ds+" "+prop]), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if vals[0] != "off\tlocal\n\nzrep:end 0\njunk" || vals[1] != "on\nzrepparse1/t/b\tzrep:sync\toff" {
		t.Fatalf("values %q", vals)
	}
	if err := setUserProps(fss, hostileRoot, srcs, want, vals); err != nil {
		t.Fatal(err)
	}
	wantFlags := `zrepparse1/t placeholder=false syncoff=true
zrepparse1/t/a placeholder=false syncoff=true
zrepparse1/t/a/c placeholder=false syncoff=false
zrepparse1/t/b placeholder=true syncoff=false
`
	if got := flags(fss); got != wantFlags {
		t.Fatalf("got\n%s\nwant\n%s", got, wantFlags)
	}
}

func TestParseValues(t *testing.T) {
	want := []propSource{{"p/a", propPlaceholder, "local"}, {"p/b", propSync, "received"}, {"p", propSync, "inherited from q"}}
	for _, c := range []struct {
		out string
		ok  bool
	}{
		{"p/a\tzrep:placeholder\ton\np/b\tzrep:sync\toff\np\tzrep:sync\t\n", true},
		{"p/a\tzrep:placeholder\ton\tlocal\np/b\tzrep:sync\toff\np\tzrep:sync\tx\n", true}, // a tab in a value is its own
		{"p/a\tzrep:placeholder\ton\np/b\tzrep:sync\toff\n", false},
		{"p/a\tzrep:placeholder\ton\np/b\tzrep:sync\toff\np\tzrep:sync\toff", false},
		{"p/a\tzrep:placeholder\ton\np\tzrep:sync\toff\np/b\tzrep:sync\toff\n", false},
		{"p/a\tzrep:placeholder\ton\np/b\tzrep:sync\toff\np\tzrep:sync\toff\np\tzrep:sync\toff\n", false},
		{"p/a\tzrep:placeholder\ton\np/b\tzrep:sync\toff\np/b\tzrep:sync\toff\n", false},
	} {
		vals, ok := parseValues([]byte(c.out), want)
		if ok != c.ok {
			t.Errorf("parseValues(%q) = %q, %v; want ok %v", c.out, vals, ok, c.ok)
		}
	}
	if vals, ok := parseValues([]byte("p/a\tzrep:placeholder\ton\tlocal\np/b\tzrep:sync\toff\np\tzrep:sync\tx\n"), want); !ok || vals[0] != "on\tlocal" {
		t.Errorf("values %q", vals)
	}
	if _, ok := parseValues(nil, nil); !ok {
		t.Error("no values wanted, none listed: refused")
	}
	if _, ok := parseValues([]byte("\n"), nil); ok {
		t.Error("no values wanted, a line listed: believed")
	}
}

func TestParseSourcesRejects(t *testing.T) {
	for name, out := range map[string]string{
		"two fields":        "p\tzrep:sync\n",
		"four fields":       "p\tzrep:sync\tlocal\tx\n",
		"other property":    "p\tcom.x:y\tlocal\n",
		"outside the root":  "q\tzrep:sync\tlocal\n",
		"default source":    "p\tzrep:sync\tdefault\n",
		"bad inherited":     "p\tzrep:sync\tinherited from p@s\n",
		"empty line":        "p\tzrep:sync\tlocal\n\np/a\tzrep:sync\tlocal\n",
		"cut short":         "p\tzrep:sync\tlocal",
		"inherited nothing": "p\tzrep:sync\tinherited from \n",
		"twice":             "p\tzrep:sync\tlocal\np\tzrep:sync\tlocal\n",
	} {
		if srcs, _, err := parseSources(bufio.NewReader(strings.NewReader(out)), "p", ""); err == nil {
			t.Errorf("%s: parsed %q into %v", name, out, srcs)
		}
	}
}

// TestSetUserPropsSync: zrep:sync off leaves out a filesystem and its
// descendants, from wherever it is set, above the root too, unless a
// nearer dataset sets it to anything else.
func TestSetUserPropsSync(t *testing.T) {
	fss := []*pdu.Filesystem{{Path: "p/r"}, {Path: "p/r/a"}, {Path: "p/r/a/x"}, {Path: "p/r/b"}, {Path: "p/r/c"}}
	srcs := []propSource{
		{"p/r", propSync, "inherited from p"},
		{"p/r/a", propSync, "local"},
		{"p/r/a/x", propSync, "inherited from p/r/a"},
		{"p/r/b", propSync, "received"},
		{"p/r/c", propSync, "inherited from p"},
		{"p/r/c", propPlaceholder, "received"},
	}
	want := wantedValues(srcs, "p/r")
	vals := map[string]string{"p/r/a": "on", "p/r/b": "off", "p/r": "off", "p/r/c": "on"}
	var vs []string
	for _, w := range want {
		vs = append(vs, vals[w.name])
	}
	if err := setUserProps(fss, "p/r", srcs, want, vs); err != nil {
		t.Fatal(err)
	}
	wantFlags := `p/r placeholder=false syncoff=true
p/r/a placeholder=false syncoff=false
p/r/a/x placeholder=false syncoff=false
p/r/b placeholder=false syncoff=true
p/r/c placeholder=false syncoff=true
`
	if got := flags(fss); got != wantFlags {
		t.Fatalf("got\n%s\nwant\n%s", got, wantFlags)
	}
}

// hostileListing is what the listing command prints for a tree p (a, b,
// each with a snapshot) whose p/a has zrep:placeholder=value, set locally,
// and whose parent q sets zrep:sync=value, as zfs prints it raw: the form
// of OpenZFS with -t filesystem,volume (no snapshot in the sources).
func hostileListing(value string) (out string, fss string) {
	native := ""
	for i, fs := range []string{"q/p", "q/p/a", "q/p/b"} {
		native += fmt.Sprintf("%[1]s\ttype\tfilesystem\t-\n%[1]s\torigin\t-\t-\n%[1]s\treceive_resume_token\t-\t-\n", fs)
		native += fmt.Sprintf("%[1]s@s\ttype\tsnapshot\t-\n%[1]s@s\tguid\t%[2]d\t-\n%[1]s@s\tcreatetxg\t%[2]d\t-\n", fs, i+1)
	}
	sources := "q/p\tzrep:sync\tinherited from q\nq/p/a\tzrep:placeholder\tlocal\nq/p/a\tzrep:sync\tinherited from q\nq/p/b\tzrep:sync\tinherited from q\n"
	values := "q/p/a\tzrep:placeholder\t" + value + "\n" + "q/p\tzrep:sync\t" + value + "\n" + "x"
	out = "zrep:list\n" + native + "\n" + markEnd + "0\n" + sources + "\n" + markSources + "0\n" +
		fmt.Sprintf("%s0 %d\n", markValues, len(values)) + values
	return out, "q/p @s:1:1\nq/p/a @s:2:2\nq/p/b @s:3:3\n"
}

// FuzzHostileValue: whatever a user property value holds, the listing
// shows exactly the filesystems and snapshots that are there, the value
// is read exactly, and only "on" marks a placeholder, only "off" leaves
// out.
func FuzzHostileValue(f *testing.F) {
	for _, v := range []string{"on", "off", "", "off\tlocal\n\nzrep:end 0\njunk", "x\nq/p/b@f\ttype\tsnapshot\t-\nq/p/b@f\tguid\t9\t-\nq/p/b@f\tcreatetxg\t9\t-",
		"on\nzrep:values 0 3\non\nzrep:end 0\n", "on\n", "\non", "q/p/b\tzrep:placeholder\ton", "\n\nzrep:sources 0\n"} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, value string) {
		if strings.IndexByte(value, 0) >= 0 {
			return // zfs values are C strings
		}
		out, wantSummary := hostileListing(value)
		br := bufio.NewReader(strings.NewReader(out))
		if head, _ := br.ReadString('\n'); head != markList+"\n" {
			t.Fatal(head)
		}
		fss, up, _, err := parseListing(br, "q/p")
		if err != nil {
			t.Fatalf("listing: %v", err)
		}
		if got := summary(fss); got != wantSummary {
			t.Fatalf("value %q: listed\n%s\nwant\n%s", value, got, wantSummary)
		}
		if rest, _ := br.ReadString(0); rest != "" {
			t.Fatalf("value %q: %q left after the listing", value, rest)
		}
		want := wantedValues(up.sources, "q/p")
		vals, ok := parseValues(up.values, want)
		if !ok {
			vals, err = readEach(want, func(ds, prop string) (string, error) { return value + "\n", nil })
			if err != nil {
				t.Fatal(err)
			}
		}
		for i, v := range vals {
			if v != value {
				t.Fatalf("value %q read as %q for %s", value, v, want[i].name)
			}
		}
		if err := setUserProps(fss, "q/p", up.sources, want, vals); err != nil {
			t.Fatal(err)
		}
		for _, fs := range fss {
			if fs.Placeholder != (fs.Path == "q/p/a" && value == "on") || fs.SyncOff != (value == "off") {
				t.Fatalf("value %q: %s", value, flags(fss))
			}
		}
	})
}

// FuzzParseListing: no output, however forged, makes the listing name a
// dataset outside the root or a version without its guid.
func FuzzParseListing(f *testing.F) {
	out, _ := hostileListing("off\tlocal\n\nzrep:end 0\njunk")
	f.Add(strings.TrimPrefix(out, "zrep:list\n"))
	seedFromCaptures(f)
	f.Fuzz(func(t *testing.T, out string) {
		fss, up, _, err := parseListing(bufio.NewReader(strings.NewReader(out)), "q/p")
		if err != nil {
			return
		}
		for _, fs := range fss {
			if fs.Path != "q/p" && !strings.HasPrefix(fs.Path, "q/p/") {
				t.Fatalf("listed %q outside q/p", fs.Path)
			}
			if _, err := checkZFSName([]byte(fs.Path)); err != nil {
				t.Fatalf("listed %q: %v", fs.Path, err)
			}
		}
		for _, s := range up.sources {
			if s.name != "q/p" && !strings.HasPrefix(s.name, "q/p/") && !strings.HasPrefix(s.name, "q/p@") && !strings.HasPrefix(s.name, "q/p#") {
				t.Fatalf("sources of %q outside q/p", s.name)
			}
		}
	})
}

// TestListingHostileCaptures runs the listing command itself (the sh
// script, its length-prefixed values) with a zfs that prints the captured
// hostile output: the tree is whole, the values are read one by one, and
// only the placeholder is one.
func TestListingHostileCaptures(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "argv")
	capDir, _ := filepath.Abs(filepath.Join("..", "testdata", "zfs", zfsfuse))
	script := `#!/bin/sh
{ for a; do printf '%s|' "$a"; done; echo; } >>"$FAKE_ZFS_LOG"
c=` + capDir + `/zrep-hostile-
case "$*" in
version) echo "unrecognized command 'version'" >&2; exit 2 ;;
*name,property,value,source*) cat "${c}list.out" ;;
*name,property,source*) cat "${c}sources.out" ;;
*"name,property,value -s local"*) cat "${c}values.out" ;;
*"name,property,value -s inherited"*) cat "${c}root-values.out" ;;
"get -H -o value zrep:placeholder zrepparse1/t/a") cat "${c}value-one.out" ;;
"get -H -o value zrep:sync zrepparse1/t/a/c") cat "${c}value-sync.out" ;;
"get -H -o value zrep:placeholder zrepparse1/t/b") cat "${c}value-b-placeholder.out" ;;
"get -H -o value zrep:sync zrepparse1/t/b") cat "${c}value-b-sync.out" ;;
"get -H -o value zrep:sync zrepparse1/t") cat "${c}value-root-sync.out" ;;
*) echo "fake zfs: unexpected $*" >&2; exit 1 ;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "zfs"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKE_ZFS_LOG", log)
	e := New(Side{Dataset: hostileRoot}, Options{Role: "source", Recursive: true})
	for round := 0; round < 2; round++ { // the start-up command, then the listing alone
		fss, err := e.ListFilesystems(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := `zrepparse1/t placeholder=false syncoff=true
zrepparse1/t/a placeholder=false syncoff=true
zrepparse1/t/a/c placeholder=false syncoff=false
zrepparse1/t/b placeholder=true syncoff=false
`
		if got := flags(fss); got != want {
			t.Fatalf("round %d: got\n%s\nwant\n%s", round, got, want)
		}
		if n := len(fss[1].Versions); n != 2 {
			t.Fatalf("round %d: %s has %d snapshots, want 2", round, fss[1].Path, n)
		}
	}
	b, _ := os.ReadFile(log)
	if n := bytes.Count(b, []byte("|value|")); n != 10 {
		t.Fatalf("%d values read one by one, want 5 per listing:\n%s", n, b)
	}
}

// TestListingValuesCountedInBytes runs the listing command's script under
// each POSIX shell at hand, in a UTF-8 locale, with values that hold
// multi-byte characters, tabs and newlines: the values section's length
// is in bytes, so what follows it is read where it is.
func TestListingValuesCountedInBytes(t *testing.T) {
	dir := t.TempDir()
	value := "é\tß\n€"
	script := `#!/bin/sh
case "$*" in
*name,property,value,source*) printf 'p\ttype\tfilesystem\t-\np/a\ttype\tfilesystem\t-\n' ;;
*name,property,source*) printf 'p/a\tzrep:placeholder\tlocal\np/a\tzrep:sync\tlocal\n' ;;
*"name,property,value -s local"*) printf 'p/a\tzrep:placeholder\t%s\np/a\tzrep:sync\toff\n' "$FAKE_VALUE" ;;
*"name,property,value -s inherited"*) ;;
*) exit 1 ;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "zfs"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	l := newListing("p", true, Capabilities{})
	argv := l.request().Argv()
	ran := 0
	for _, shell := range []string{"dash", "bash", "sh"} {
		path, err := osexec.LookPath(shell)
		if err != nil {
			continue
		}
		ran++
		cmd := osexec.Command(path, argv[1:]...)
		cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"), "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "FAKE_VALUE="+value)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", shell, err)
		}
		br := bufio.NewReader(bytes.NewReader(out))
		br.ReadString('\n')
		fss, up, _, err := parseListing(br, "p")
		if err != nil {
			t.Fatalf("%s: %v\n%q", shell, err, out)
		}
		if rest, _ := br.ReadString(0); rest != "" {
			t.Fatalf("%s: %q after the values", shell, rest)
		}
		want := wantedValues(up.sources, "p")
		vals, ok := parseValues(up.values, want)
		if ok || !up.valuesOK {
			t.Fatalf("%s: values %q believed %v (listed ok %v)", shell, vals, ok, up.valuesOK)
		}
		if got := string(up.values); got != "p/a\tzrep:placeholder\t"+value+"\np/a\tzrep:sync\toff\n" {
			t.Fatalf("%s: values section %q", shell, got)
		}
		if len(fss) != 2 {
			t.Fatalf("%s: %d filesystems", shell, len(fss))
		}
	}
	if ran == 0 {
		t.Skip("no POSIX shell found")
	}
}
