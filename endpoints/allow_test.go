package endpoints

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/zrep/zrep/pdu"
)

// TestNeeds is the table of README's "Running without root", as the
// OpenZFS 2.3.2 guest demanded it (e2e/delegation_test.go runs jobs with
// exactly these).
func TestNeeds(t *testing.T) {
	for _, tc := range []struct {
		name string
		role string
		w    Work
		want string
	}{
		{"plain source", "source", Work{}, "send,hold,bookmark,destroy"},
		{"source, --snapshot", "source", Work{Snapshot: true}, "send,hold,bookmark,snapshot,destroy"},
		{"source, --hold", "source", Work{Hold: true}, "send,hold,release,bookmark,destroy"},
		{"source, --keep-source", "source", Work{KeepSource: true}, "send,hold,bookmark,mount,destroy"},
		{"source, destination flags change nothing", "source", Work{KeepDest: true, Rollback: true, Recursive: true, RecvSet: []string{"readonly"}}, "send,hold,bookmark,destroy"},
		{"source, all", "source", Work{Snapshot: true, Hold: true, KeepSource: true, Recursive: true}, "send,hold,release,bookmark,snapshot,mount,destroy"},
		{"plain destination", "destination", Work{}, "receive,create,mount"},
		{"destination, --keep-dest", "destination", Work{KeepDest: true}, "receive,create,mount,destroy"},
		{"destination, --rollback", "destination", Work{Rollback: true}, "receive,create,mount,destroy,rollback"},
		{"destination, -r: placeholders", "destination", Work{Recursive: true}, "receive,create,mount,userprop,canmount"},
		{"destination, --recv-set", "destination", Work{RecvSet: []string{"readonly", "com.example:tag"}}, "receive,create,mount,userprop,readonly"},
		{"destination, --recv-exclude", "destination", Work{RecvExclude: []string{"compression", "mountpoint"}}, "receive,create,mount,compression,mountpoint"},
		{"destination, source flags change nothing", "destination", Work{Snapshot: true, Hold: true, KeepSource: true}, "receive,create,mount"},
		{"unknown role", "sideways", Work{KeepDest: true}, ""},
		{"prune, source", "source", Work{PruneOnly: true, Hold: true, KeepSource: true, KeepDest: true}, "hold,release,mount,destroy"},
		{"prune, source without --keep-source", "source", Work{PruneOnly: true, KeepDest: true}, ""},
		{"prune, destination", "destination", Work{PruneOnly: true, Hold: true, KeepSource: true, KeepDest: true}, "mount,destroy"},
	} {
		got := strings.Join(Permissions(Needs(tc.role, tc.w)), ",")
		if got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestNeedsSayWhy(t *testing.T) {
	for _, role := range []string{"source", "destination"} {
		for _, n := range Needs(role, Work{Snapshot: true, Hold: true, KeepSource: true, KeepDest: true, Rollback: true, Recursive: true, RecvSet: []string{"readonly"}}) {
			if n.Why == "" {
				t.Errorf("%s: %s has no reason", role, n.Permission)
			}
		}
	}
}

func TestGrantDataset(t *testing.T) {
	for _, tc := range []struct{ role, ds, want string }{
		{"source", "tank/data", "tank/data"},
		{"source", "tank", "tank"},
		{"destination", "pool/bk/web", "pool/bk"},
		{"destination", "pool", "pool"},
	} {
		if got := GrantDataset(tc.role, tc.ds); got != tc.want {
			t.Errorf("GrantDataset(%s, %s) = %s, want %s", tc.role, tc.ds, got, tc.want)
		}
	}
}

func TestAllowArgv(t *testing.T) {
	argv, err := AllowArgv("backup", []string{"receive", "create", "mount"}, "pool/b k")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"zfs", "allow", "-u", "backup", "receive,create,mount", "pool/b k"}; !slices.Equal(argv, want) {
		t.Errorf("argv %q, want %q", argv, want)
	}
	if got, want := CommandLine(argv), `zfs allow -u backup receive,create,mount 'pool/b k'`; got != want {
		t.Errorf("CommandLine = %s, want %s", got, want)
	}
	for _, tc := range []struct {
		account string
		perms   []string
		ds      string
	}{
		{"-oops", []string{"send"}, "tank"},
		{"a,b", []string{"send"}, "tank"},
		{"a b", []string{"send"}, "tank"},
		{"", []string{"send"}, "tank"},
		{"backup", nil, "tank"},
		{"backup", []string{"send;rm"}, "tank"},
		{"backup", []string{"send"}, "-tank"},
		{"backup", []string{"send"}, "tank@snap"},
	} {
		if argv, err := AllowArgv(tc.account, tc.perms, tc.ds); err == nil {
			t.Errorf("AllowArgv(%q, %q, %q) accepted: %q", tc.account, tc.perms, tc.ds, argv)
		}
	}
}

func TestCommandLineQuotesWhatTheShellWouldRead(t *testing.T) {
	for in, want := range map[string]string{
		"tank/data":  "tank/data",
		"a b":        `'a b'`,
		"it's":       `'it'\''s'`,
		"$HOME":      `'$HOME'`,
		"a;b":        `'a;b'`,
		"":           `''`,
		"user@host:": "user@host:",
	} {
		if got := CommandLine([]string{in}); got != want {
			t.Errorf("CommandLine(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestParseLoginName(t *testing.T) {
	out := "host nas\nhostname nas.example\nuser backup\nport 22\n"
	if got, err := parseLoginName(out); err != nil || got != "backup" {
		t.Errorf("parseLoginName = %q, %v", got, err)
	}
	for _, bad := range []string{"hostname x\n", "user -x\n", "user \n"} {
		if got, err := parseLoginName(bad); err == nil {
			t.Errorf("parseLoginName(%q) = %q, want an error", bad, got)
		}
	}
}

func TestLoginNameArgvAsksSSHOnly(t *testing.T) {
	argv := loginNameArgv(Side{Host: "nas", Dataset: "pool/x"}, SSHOptions{Port: 2222, Identity: "/k"})
	if argv[0] != "ssh" || !slices.Contains(argv, "-G") || argv[len(argv)-1] != "nas" || argv[len(argv)-2] != "--" {
		t.Errorf("argv %q", argv)
	}
}

func TestSudoArgv(t *testing.T) {
	if got, want := sudoArgv([]string{"zfs", "send", "tank@a"}), []string{"sudo", "-n", "zfs", "send", "tank@a"}; !slices.Equal(got, want) {
		t.Errorf("zfs: %q, want %q", got, want)
	}
	if got := sudoArgv([]string{"zstd", "-c"}); !slices.Equal(got, []string{"zstd", "-c"}) {
		t.Errorf("a codec went through sudo: %q", got)
	}
	st := startupArgv("tank/x", true, "tank")
	got := sudoArgv(st.argv)
	if len(got) != 3 || got[0] != "sh" || got[1] != "-c" || got[2] != sudoPrelude+st.argv[2] {
		t.Errorf("start-up script: %q", got)
	}
	if stageName(sudoArgv([]string{"zfs", "receive", "-u", "tank/x"})) != "zfs" {
		t.Error("a zfs under sudo is not named zfs in a remote pipeline")
	}
}

func TestSudoPasswordIsPermanentWithTheFix(t *testing.T) {
	// What sudo 1.9 prints for sudo -n when it would ask (Debian 12).
	stderr := "sudo: a password is required\n\n" + exitMarker + "1\n"
	err := classify([]string{"zfs", "receive", "-u", "pool/bk"}, "nas", exitStatus{code: 1}, stderr)
	if !strings.Contains(err.Error(), "sudoers") || !strings.Contains(err.Error(), "on host nas") {
		t.Errorf("error %q names neither the host nor the fix", err)
	}
	if pdu.IsRetryable(err) || !errors.Is(err, ErrSudo) {
		t.Errorf("%v is retryable or not ErrSudo", err)
	}
}

func TestPermissionDeniedIsPermanentWithTheWayOut(t *testing.T) {
	// What OpenZFS 2.3.2 printed for zfs receive -A without destroy.
	stderr := "cannot destroy 'pool/bk/a': permission denied\n\n" + exitMarker + "1\n"
	err := classify([]string{"zfs", "receive", "-A", "pool/bk/a"}, "nas", exitStatus{code: 1}, stderr)
	if pdu.IsRetryable(err) || !errors.Is(err, ErrPermission) || !strings.Contains(err.Error(), "zrep allow") {
		t.Errorf("%v: want a permanent ErrPermission pointing to zrep allow", err)
	}
}
