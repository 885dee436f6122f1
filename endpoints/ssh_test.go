package endpoints

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// hostileNames are names a remote shell must receive unchanged.
var hostileNames = []string{
	"plain",
	"with space",
	"it's",
	"'",
	"''",
	`$HOME`,
	"${IFS}x",
	"a;touch /tmp/zrep-pwned",
	"line\nbreak",
	"-rf",
	"`id`",
	"$(id)",
	"*",
	`back\slash`,
	`"double"`,
	"tab\there",
	"",
}

func TestShellQuoteSurvivesRealShell(t *testing.T) {
	for _, shell := range []string{"sh", "bash", "dash"} {
		if _, err := exec.LookPath(shell); err != nil {
			continue
		}
		for _, name := range hostileNames {
			t.Run(shell+"/"+name, func(t *testing.T) {
				// The shell runs printf with the quoted word, as sshd's
				// `$SHELL -c COMMAND` would.
				out, err := exec.Command(shell, "-c", "printf '%s' "+shellQuote(name)).Output()
				if err != nil {
					t.Fatalf("%s: %v", shell, err)
				}
				if string(out) != name {
					t.Fatalf("%s turned %q into %q", shell, name, out)
				}
			})
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"tank/a":  `'tank/a'`,
		"it's":    `'it'\''s'`,
		"":        `''`,
		"-x":      `'-x'`,
		"a b$c;d": `'a b$c;d'`,
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestRemoteCommandKeepsArgv(t *testing.T) {
	argv := append([]string{"printf", "%s\\n"}, hostileNames[:len(hostileNames)-1]...)
	out, err := exec.Command("sh", "-c", remoteCommand(argv)).Output()
	if err != nil {
		t.Fatal(err)
	}
	// "line\nbreak" prints as two lines.
	want := strings.Join(hostileNames[:len(hostileNames)-1], "\n") + "\n"
	if string(out) != want {
		t.Fatalf("remote shell printed\n%q\nwant\n%q", out, want)
	}
}

func TestSSHArgv(t *testing.T) {
	zfs := []string{"zfs", "get", "-H", "type", "tank/it's"}
	cases := []struct {
		name string
		side Side
		opts SSHOptions
		got  []string
		want []string
	}{
		{
			name: "command, defaults",
			side: Side{Host: "h", Dataset: "tank"},
			got:  sshCommandArgv(Side{Host: "h"}, SSHOptions{}, "/tmp/d/cm", zfs),
			want: []string{"ssh", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4",
				"-o", "ControlPath=/tmp/d/cm", "-o", "ControlMaster=no", "--", "h", remoteCommand(zfs)},
		},
		{
			name: "command, user options first",
			got: sshCommandArgv(Side{User: "u", Host: "::1"},
				SSHOptions{Port: 2222, Identity: "/k", Options: []string{"StrictHostKeyChecking=yes", "serveraliveinterval 5"}, ConnectTimeout: 1500 * time.Millisecond},
				"/tmp/d/cm", []string{"zfs", "version"}),
			want: []string{"ssh", "-p", "2222", "-i", "/k", "-o", "StrictHostKeyChecking=yes", "-o", "serveraliveinterval 5", "-o", "ConnectTimeout=2",
				"-o", "ServerAliveCountMax=4", "-o", "ControlPath=/tmp/d/cm", "-l", "u", "-o", "ControlMaster=no", "--", "::1", remoteCommand([]string{"zfs", "version"})},
		},
		{
			name: "master",
			got:  sshMasterArgv(Side{Host: "h"}, SSHOptions{}, "/tmp/d/cm"),
			want: []string{"ssh", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4",
				"-o", "ControlPath=/tmp/d/cm", "-o", "ControlMaster=yes", "-o", "ControlPersist=60", "-f", "-N", "--", "h"},
		},
		{
			name: "exit",
			got:  sshExitArgv(Side{User: "u", Host: "h"}, SSHOptions{Port: 22}, "/tmp/d/cm"),
			want: []string{"ssh", "-p", "22", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4",
				"-o", "ControlPath=/tmp/d/cm", "-l", "u", "-O", "exit", "--", "h"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !slices.Equal(c.got, c.want) {
				t.Fatalf("argv\n got %q\nwant %q", c.got, c.want)
			}
		})
	}
}

// The control socket's directory is under $TMPDIR only where ssh can take
// the path as it is: short, no blank, no % for ssh to expand.
func TestControlBase(t *testing.T) {
	for tmpdir, want := range map[string]string{
		"/var/tmp":                        "/var/tmp",
		"/tmp/a b":                        "/tmp",
		"/tmp/%h":                         "/tmp",
		"/tmp/" + strings.Repeat("x", 60): "/tmp",
	} {
		t.Setenv("TMPDIR", tmpdir)
		if got := controlBase(); got != want {
			t.Errorf("TMPDIR=%q: control directory under %q, want %q", tmpdir, got, want)
		}
	}
}
