package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// Every command's help shows at most one default per flag, in words: no
// "(default: false)" on switches, no bare zero values, no quotes.
func TestHelpDefaults(t *testing.T) {
	for _, cmd := range newApp(nil, nil).Commands {
		t.Run(cmd.Name, func(t *testing.T) {
			var out bytes.Buffer
			if code := runApp(context.Background(), []string{"zrep", cmd.Name, "--help"}, &out, &out); code != 0 {
				t.Fatalf("zrep %s --help exited %d", cmd.Name, code)
			}
			for _, line := range strings.Split(out.String(), "\n") {
				if n := strings.Count(line, "(default:"); n > 1 {
					t.Errorf("%d defaults in %q", n, line)
				}
				for _, bad := range []string{"(default: false)", "(default: 0)", "(default: 0s)", `(default: "`} {
					if strings.Contains(line, bad) {
						t.Errorf("%s in %q: say what the default means (DefaultText)", bad, line)
					}
				}
			}
		})
	}
	var out bytes.Buffer
	runApp(context.Background(), []string{"zrep", "run", "--help"}, &out, &out)
	for _, want := range []string{"(default: none)", "(default: ssh's own, usually 22)", "(default: 10s)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("run --help lacks %q:\n%s", want, out.String())
		}
	}
}
