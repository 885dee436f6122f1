package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// zrep serve's command line is checked before any request is read; a
// refused request exits 126 and is logged to --log-file.
func TestServeCommandLine(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no role", nil, "needs --receive-only DATASET or --send-only DATASET"},
		{"two roles", []string{"--receive-only", "b/w", "--send-only", "t/d"}, "exclude each other"},
		{"bad dataset", []string{"--receive-only", "/backup"}, "starts with '/'"},
		{"arguments", []string{"--receive-only", "b/w", "zfs"}, "takes no arguments"},
		{"snapshot on receive-only", []string{"--receive-only", "b/w", "--allow-snapshot"}, "goes with --send-only"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			code := runApp(context.Background(), append([]string{"zrep", "serve"}, c.args...), &out, &out)
			if code != exitUsage || !strings.Contains(out.String(), c.want) {
				t.Errorf("exit %d, want %d saying %q:\n%s", code, exitUsage, c.want, out.String())
			}
		})
	}
	log := filepath.Join(t.TempDir(), "serve.log")
	t.Setenv("SSH_ORIGINAL_COMMAND", "zfs destroy -r backup")
	t.Setenv("SSH_CONNECTION", "192.0.2.7 50022 192.0.2.1 22")
	var out bytes.Buffer
	code := runApp(context.Background(), []string{"zrep", "serve", "--receive-only", "backup/web1", "--log-file", log}, &out, &out)
	if code != 126 || !strings.Contains(out.String(), "zrep serve: refused: ") {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(b); !strings.Contains(got, "zrep serve --receive-only backup/web1: refused: ") || !strings.Contains(got, "from 192.0.2.7 port 50022") || !strings.Contains(got, `"zfs destroy -r backup"`) {
		t.Errorf("log:\n%s", got)
	}
}

// No flag of zrep serve can be set from the environment, which an ssh
// client may be allowed to set.
func TestServeFlagsHaveNoEnvironment(t *testing.T) {
	var serve *cli.Command
	for _, c := range newApp(io.Discard, io.Discard).Commands {
		if c.Name == "serve" {
			serve = c
		}
	}
	if serve == nil {
		t.Fatal("no serve command")
	}
	for _, f := range serve.Flags {
		if ev, ok := f.(interface{ GetEnvVars() []string }); !ok || len(ev.GetEnvVars()) != 0 {
			t.Errorf("--%s may read the environment", f.Names()[0])
		}
	}
}
