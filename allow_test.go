package main

import (
	"bytes"
	"context"
	"os/user"
	"strings"
	"testing"
)

func TestAllowPrintsOnlyWhatTheJobNeeds(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"plain job: no destroy on the destination", []string{"tank/data", "backup@nas:pool/bk/data"},
			[]string{"zfs allow -u backup receive,create,mount pool/bk"}},
		{"the crontab job", []string{"-r", "--snapshot", "--hold", "--keep-source", "last=1", "--keep-dest", "last=2", "alice@web:tank/data", "backup@nas:pool/bk/data"},
			[]string{"zfs allow -u alice send,hold,release,bookmark,snapshot,mount,destroy tank/data",
				"zfs allow -u backup receive,create,mount,destroy,userprop,canmount pool/bk"}},
		{"rollback and received properties", []string{"--rollback", "--recv-set", "readonly=on", "--recv-exclude", "mountpoint", "a@web:tank/data", "b@nas:pool"},
			[]string{"zfs allow -u a send,hold,bookmark,destroy tank/data",
				"zfs allow -u b receive,create,mount,destroy,rollback,mountpoint,readonly pool"}},
		{"a name to quote", []string{"a@web:tank/my data", "b@nas:pool/b k/x"},
			[]string{"zfs allow -u a send,hold,bookmark,destroy 'tank/my data'",
				"zfs allow -u b receive,create,mount 'pool/b k'"}},
	} {
		var stdout, stderr bytes.Buffer
		code := runApp(context.Background(), append([]string{"zrep", "allow"}, tc.args...), &stdout, &stderr)
		if code != 0 {
			t.Errorf("%s: exit %d: %s", tc.name, code, stderr.String())
			continue
		}
		var cmds []string
		for _, line := range strings.Split(stdout.String(), "\n") {
			if strings.HasPrefix(line, "zfs ") {
				cmds = append(cmds, line)
			} else if line != "" && !strings.HasPrefix(line, "#") {
				t.Errorf("%s: %q is neither a comment nor a command", tc.name, line)
			}
		}
		if strings.Join(cmds, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s: printed\n%s\nwant\n%s", tc.name, stdout.String(), strings.Join(tc.want, "\n"))
		}
		if !strings.Contains(stdout.String(), "as root on nas") {
			t.Errorf("%s: does not say where to run the destination's command:\n%s", tc.name, stdout.String())
		}
	}
}

func TestAllowLocalSideIsThisProcessesUser(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Skip(err)
	}
	var stdout, stderr bytes.Buffer
	if code := runApp(context.Background(), []string{"zrep", "allow", "tank/data", "b@nas:pool/x"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	want := "zfs allow -u " + me.Username + " send,hold,bookmark,destroy tank/data\n"
	if me.Username == "root" {
		want = "# source tank/data: the account root needs no delegation\n"
	}
	if !strings.Contains(stdout.String(), want) {
		t.Errorf("printed\n%s\nwant a line %q", stdout.String(), want)
	}
}

func TestAllowWithSudoPrintsTheSudoersLine(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := runApp(context.Background(), []string{"zrep", "allow", "--sudo", "a@web:tank/data", "b@nas:pool/x"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, want := range []string{"#   a ALL=(root) NOPASSWD: /usr/sbin/zfs", "#   b ALL=(root) NOPASSWD: /usr/sbin/zfs"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("printed\n%s\nwant %q", stdout.String(), want)
		}
	}
	if strings.Contains(stdout.String(), "\nzfs allow") {
		t.Errorf("--sudo still printed zfs allow:\n%s", stdout.String())
	}
}

func TestAllowUsageErrors(t *testing.T) {
	assertUsageErrors(t, [][]string{
		{"allow", "tank/data"},
		{"allow", "--keep-dest", "bogus=1", "tank/a", "tank/b"},
		{"allow", "--recv-set", "noequals", "tank/a", "tank/b"},
	})
}
