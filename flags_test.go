package main

import (
	"bytes"
	"context"
	"io"
	"slices"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/zrep/zrep/pdu"
)

// parsedRun parses args as zrep would for `run`, without contacting
// anything: the command's action is replaced by one that keeps what
// parseRunOptions made of the command line.
func parsedRun(t *testing.T, args ...string) (*job, *retention) {
	t.Helper()
	var stderr bytes.Buffer
	app := newApp(io.Discard, &stderr)
	var (
		j   *job
		ret *retention
	)
	for _, c := range app.Commands {
		if c.Name == "run" {
			c.Action = func(c *cli.Context) error {
				var err error
				if j, err = parseRunOptions(c); err != nil {
					return err
				}
				ret = j.ret
				return nil
			}
		}
	}
	if err := app.RunContext(context.Background(), append([]string{"zrep", "run"}, args...)); err != nil {
		t.Fatalf("zrep run %q: %v (stderr %q)", args, err, stderr.String())
	}
	return j, ret
}

// SPEC 12: a flag's value is never split at commas, neither on the
// command line nor in its ZREP_* variable.
func TestFlagValuesKeepCommas(t *testing.T) {
	j, _ := parsedRun(t,
		"--exclude", "^tank/a/x{1,2}$",
		"--ssh-option", "Ciphers=aes128-gcm@openssh.com,aes256-gcm@openssh.com",
		"--recv-set", "com.example:list=a,b",
		"--recv-exclude", "mountpoint",
		"tank/a", "host:tank/b")
	if len(j.cfg.Exclude) != 1 || j.cfg.Exclude[0].String() != "^tank/a/x{1,2}$" {
		t.Errorf("--exclude became %v, want the one expression ^tank/a/x{1,2}$", j.cfg.Exclude)
	}
	if !j.cfg.Exclude[0].MatchString("tank/a/xx") {
		t.Errorf("--exclude ^tank/a/x{1,2}$ does not match tank/a/xx")
	}
	if want := []string{"Ciphers=aes128-gcm@openssh.com,aes256-gcm@openssh.com"}; !slices.Equal(j.ssh.Options, want) {
		t.Errorf("--ssh-option became %q, want %q", j.ssh.Options, want)
	}
	if want := []pdu.Property{{Name: "com.example:list", Value: "a,b"}}; !slices.Equal(j.cfg.Receive.Set, want) {
		t.Errorf("--recv-set became %v, want %v", j.cfg.Receive.Set, want)
	}
}

func TestFlagEnvironmentKeepsCommas(t *testing.T) {
	t.Setenv("ZREP_EXCLUDE", "^tank/a/x{1,2}$")
	t.Setenv("ZREP_SSH_OPTION", "Ciphers=aes128-gcm@openssh.com,aes256-gcm@openssh.com")
	t.Setenv("ZREP_RECV_SET", "com.example:list=a,b")
	j, _ := parsedRun(t, "tank/a", "host:tank/b")
	if len(j.cfg.Exclude) != 1 || j.cfg.Exclude[0].String() != "^tank/a/x{1,2}$" {
		t.Errorf("ZREP_EXCLUDE became %v, want the one expression ^tank/a/x{1,2}$", j.cfg.Exclude)
	}
	if want := []string{"Ciphers=aes128-gcm@openssh.com,aes256-gcm@openssh.com"}; !slices.Equal(j.ssh.Options, want) {
		t.Errorf("ZREP_SSH_OPTION became %q, want %q", j.ssh.Options, want)
	}
	if want := []pdu.Property{{Name: "com.example:list", Value: "a,b"}}; !slices.Equal(j.cfg.Receive.Set, want) {
		t.Errorf("ZREP_RECV_SET became %v, want %v", j.cfg.Receive.Set, want)
	}
}

// Repeating a flag still gives several values, as do the lines of its
// variable, and a retention policy,
// one string that zrep splits itself, still has all its rules.
func TestRepeatedFlagsAndPolicies(t *testing.T) {
	j, ret := parsedRun(t, "--exclude", "a", "--exclude", "b",
		"--keep-source", "last=1,daily=2", "--keep-dest", "last=3,weekly=4", "tank/a", "tank/b")
	if len(j.cfg.Exclude) != 2 {
		t.Errorf("two --exclude gave %v", j.cfg.Exclude)
	}
	t.Setenv("ZREP_SSH_OPTION", "Ciphers=a,b\nConnectTimeout=3\n")
	if j, _ := parsedRun(t, "tank/a", "tank/b"); !slices.Equal(j.ssh.Options, []string{"Ciphers=a,b", "ConnectTimeout=3"}) {
		t.Errorf("ZREP_SSH_OPTION of two lines became %q", j.ssh.Options)
	}
	if j, _ := parsedRun(t, "--ssh-option", "BatchMode=yes", "tank/a", "tank/b"); !slices.Equal(j.ssh.Options, []string{"BatchMode=yes"}) {
		t.Errorf("--ssh-option did not win over ZREP_SSH_OPTION: %q", j.ssh.Options)
	}
	src, dst := ret.prune.Retention.Source, ret.prune.Retention.Dest
	if src == nil || dst == nil {
		t.Fatalf("--keep-source/--keep-dest not parsed: %+v", ret.prune.Retention)
	}
	if src.String() != "last=1,daily=2" || dst.String() != "last=3,weekly=4" {
		t.Errorf("policies became %q and %q", src.String(), dst.String())
	}
}
