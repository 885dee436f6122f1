package main

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	version, commit = "1.2.3", "0123456789abcdef0123456789abcdef01234567"
	defer func() { version, commit = "", "" }()
	var out bytes.Buffer
	if code := runApp(context.Background(), []string{"zrep", "version"}, &out, &out); code != 0 {
		t.Fatalf("exit %d", code)
	}
	want := "zrep 1.2.3\ncommit 0123456789abcdef0123456789abcdef01234567\n" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	if out.String() != want {
		t.Errorf("zrep version printed\n%s\nwant\n%s", out.String(), want)
	}
}

// The generated man page and completions know every visible command.
func TestGenerate(t *testing.T) {
	for _, what := range []string{"man", "bash", "zsh", "fish"} {
		var out, errOut bytes.Buffer
		if code := runApp(context.Background(), []string{"zrep", "generate", what}, &out, &errOut); code != 0 {
			t.Fatalf("generate %s: exit %d: %s", what, code, errOut.String())
		}
		for _, c := range newApp(nil, nil).VisibleCommands() {
			if c.Name != "help" && !strings.Contains(out.String(), c.Name) {
				t.Errorf("generate %s lacks the command %s", what, c.Name)
			}
		}
		if strings.Contains(out.String(), "generate") && what != "bash" && what != "zsh" {
			t.Errorf("generate %s shows the hidden generate command", what)
		}
	}
}
