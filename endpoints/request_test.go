package endpoints

import (
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// hostileWords are words that a shell would read as something else if
// they reached it unquoted.
var hostileWords = []string{
	"tank/a b", "it's", "''", `'\''`, "$(id)", "`id`", "${HOME}", "a;b", "a|b", "a&&b",
	"line\nbreak", "-rf", "--", "-", "", " ", "\t", "\\", `"`, "*", "~", "#x", "!x", "%s", "é",
}

func TestParseRequestIsTheInverseOfString(t *testing.T) {
	for _, kind := range []RequestKind{RequestRun, RequestPipeline, RequestStartup, RequestKill} {
		for _, words := range [][]string{{"zfs"}, hostileWords, {"", ""}, {"'"}} {
			req := Request{Kind: kind, Words: words}
			got, err := ParseRequest(req.String())
			if err != nil {
				t.Fatalf("%v %q: %v", kind, words, err)
			}
			if got.Kind != kind || !slices.Equal(got.Words, words) {
				t.Fatalf("round trip of %v %q gave %v %q", kind, words, got.Kind, got.Words)
			}
		}
	}
}

// The template receives exactly the words zrep quoted: sh runs the same
// string that ParseRequest reads.
func TestTemplatesReceiveTheWords(t *testing.T) {
	req := runRequest(append([]string{"printf", `%s\0`}, hostileWords...))
	out, err := exec.Command("sh", "-c", req.String()).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00"); !slices.Equal(got, hostileWords) {
		t.Fatalf("run template got %q", got)
	}
	// A pipeline splits its groups at the counts, whatever the words hold.
	req = pipelineRequest([][]string{append([]string{"printf", `%s\0`}, hostileWords...), {"cat"}})
	out, err = exec.Command("sh", "-c", req.String()).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00"); !slices.Equal(got, hostileWords) {
		t.Fatalf("pipeline template got %q", got)
	}
}

func TestParseRequestRefuses(t *testing.T) {
	valid := runRequest([]string{"zfs", "list"}).String()
	prefix := requestPrefix(RequestRun)
	for name, line := range map[string]string{
		"plain command":          "zfs destroy -r backup",
		"empty":                  "",
		"sh -c":                  "sh -c 'zfs destroy -r backup'",
		"another template":       "exec sh -c 'env LC_ALL=C \"$@\"; zfs destroy backup' zrep 'zfs'",
		"no words":               prefix,
		"unquoted word":          prefix + " zfs",
		"two spaces":             prefix + "  'zfs'",
		"trailing space":         valid + " ",
		"trailing newline":       valid + "\n",
		"command after":          valid + "; zfs destroy backup",
		"command after a word":   valid + " 'a';id",
		"unterminated":           prefix + " 'zfs",
		"double quotes":          prefix + ` "zfs"`,
		"backslash outside":      prefix + ` 'a'\'`,
		"glued words":            prefix + " 'a''b'",
		"other $0":               strings.Replace(valid, " zrep ", " sh ", 1),
		"template of other kind": strings.Replace(valid, "env LC_ALL=C", "env LC_ALL=POSIX", 1),
		"too long":               prefix + " '" + strings.Repeat("a", MaxRequestBytes) + "'",
		"too many words":         prefix + strings.Repeat(" ''", MaxRequestWords+1),
	} {
		if req, err := ParseRequest(line); err == nil || !errors.Is(err, ErrMalformedRequest) {
			t.Errorf("%s: parsed as %v %q, %v", name, req.Kind, req.Words, err)
		}
	}
}

func TestRequestGroups(t *testing.T) {
	argvs := [][]string{{"zfs", "send", "tank/a@1"}, {"zstd", "-c"}}
	got, err := pipelineRequest(argvs).Groups()
	if err != nil || fmt.Sprint(got) != fmt.Sprint(argvs) {
		t.Fatalf("groups %q, %v", got, err)
	}
	for _, words := range [][]string{{"2", "zfs"}, {"0"}, {"x", "zfs"}, {"01", "zfs"}, {"-1", "zfs"}, {"1"}} {
		if got, err := (Request{Kind: RequestPipeline, Words: words}).Groups(); err == nil {
			t.Errorf("groups of %q: %q", words, got)
		}
	}
	// The template refuses what Groups refuses.
	for _, words := range [][]string{{"2", "true"}, {"x", "true"}, {"01", "true"}, {"1$(id)", "true"}, {"999999", "true"}} {
		req := Request{Kind: RequestPipeline, Words: words}
		out, err := exec.Command("sh", "-c", req.String()).CombinedOutput()
		if statusOf(err).code != 2 || !strings.Contains(string(out), "malformed request") {
			t.Errorf("pipeline of %q: %v: %s", words, err, out)
		}
	}
}

// Every login shell hands the templates to sh unchanged: csh takes no
// newline inside quotes and expands '!' there; fish reads a doubled
// backslash inside quotes as one.
func TestTemplatesSurviveEveryLoginShell(t *testing.T) {
	for kind, tmpl := range templates {
		if strings.ContainsAny(tmpl, "\n!") {
			t.Errorf("template %v holds a newline or '!', which csh would not take inside quotes", kind)
		}
		if strings.Contains(tmpl, `\\`) {
			t.Errorf("template %v holds a doubled backslash, which fish would halve", kind)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add(runRequest([]string{"zfs", "get", "tank/it's"}).String())
	f.Add(pipelineRequest([][]string{{"zfs", "send", "a@b"}, {"zstd", "-c"}}).String())
	f.Add("zfs destroy -r backup")
	f.Add(requestPrefix(RequestKill) + " '12'\\''")
	f.Fuzz(func(t *testing.T, line string) {
		req, err := ParseRequest(line)
		if err != nil {
			return
		}
		// Whatever parses is exactly what String writes for it.
		if back := req.String(); back != line {
			t.Fatalf("ParseRequest(%q) = %v %q, which String writes as %q", line, req.Kind, req.Words, back)
		}
	})
}

func FuzzRequestRoundTrip(f *testing.F) {
	f.Add("tank/a b", "it's", "$(id)\n")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		words := []string{a, b, c}
		req, err := ParseRequest(Request{Kind: RequestRun, Words: words}.String())
		if err != nil || !slices.Equal(req.Words, words) {
			t.Fatalf("round trip of %q: %q, %v", words, req.Words, err)
		}
	})
}
