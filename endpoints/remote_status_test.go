package endpoints

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/zrep/zrep/pdu"
)

func TestRemoteCommandText(t *testing.T) {
	got := remoteCommand([]string{"zfs", "get", "tank/it's"})
	want := `exec sh -c 'env LC_ALL=C "$@"; s=$?; printf '\''\nzrep-exit:%s\n'\'' "$s" >&2; exit "$s"' zrep 'zfs' 'get' 'tank/it'\''s'`
	if got != want {
		t.Fatalf("remoteCommand\n got %s\nwant %s", got, want)
	}
}

// TestRemoteCommandStatus runs the wrapper under sh, as ssh's remote side
// would, and reads back the command's own exit status, 255 included, with
// its stderr untouched.
func TestRemoteCommandStatus(t *testing.T) {
	for _, c := range []struct {
		script string
		code   int
		stderr string
	}{
		{"exit 0", 0, ""},
		{"echo 'cannot resume send: gone' >&2; exit 255", 255, "cannot resume send: gone"},
		{"printf 'no newline' >&2; exit 1", 1, "no newline"},
		{"kill -TERM $$", 143, "Terminated"},
	} {
		cmd := exec.Command("sh", "-c", remoteCommand([]string{"sh", "-c", c.script}))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		if st := statusOf(err); st.code != c.code {
			t.Errorf("%q: exit %d, want %d (%v)", c.script, st.code, c.code, err)
		}
		code, rest, ok := remoteStatus(stderr.String())
		if !ok || code != c.code || strings.TrimSpace(rest) != c.stderr {
			t.Errorf("%q: remoteStatus(%q) = %d, %q, %v; want %d, %q", c.script, stderr.String(), code, rest, ok, c.code, c.stderr)
		}
	}
}

func TestRemoteStatus(t *testing.T) {
	for _, c := range []struct {
		stderr, rest string
		code         int
		ok           bool
	}{
		{"", "", 0, false},
		{"ssh: connect to host h port 22: Connection refused\n", "ssh: connect to host h port 22: Connection refused\n", 0, false},
		{"\nzrep-exit:0\n", "\n", 0, true},
		{"zrep-exit:255\n", "\n", 255, true},
		{"cannot x\n\nzrep-exit:1\nConnection to h closed.\n", "cannot x\n\nConnection to h closed.\n", 1, true},
		// Only a line of its own counts, and the last one.
		{"a zrep-exit:1\n", "a zrep-exit:1\n", 0, false},
		{"\nzrep-exit:1\n\nzrep-exit:2\n", "\nzrep-exit:1\n\n", 2, true},
		{"\nzrep-exit:x\n", "\nzrep-exit:x\n", 0, false},
		{"\nzrep-exit:300\n", "\nzrep-exit:300\n", 0, false},
	} {
		code, rest, ok := remoteStatus(c.stderr)
		if code != c.code || rest != c.rest || ok != c.ok {
			t.Errorf("remoteStatus(%q) = %d, %q, %v; want %d, %q, %v", c.stderr, code, rest, ok, c.code, c.rest, c.ok)
		}
	}
}

// TestClassifyRemote255: ssh exits 255 for its own failures and passes on
// the remote command's status, which may be 255 too (OpenZFS's `zfs send
// -t` of a token whose snapshot is gone). Without the wrapper's status line
// the command's status never came back and the connection is to blame;
// with it, zfs's message decides as it would here.
func TestClassifyRemote255(t *testing.T) {
	send := []string{"zfs", "send", "-nvP", "-t", "1-abc"}
	marker := func(code string) string { return "\n" + exitMarker + code + "\n" }
	gone := readCapture(t, openzfs, "zrep-send-nvP-resume-gone")
	goneSend := readCapture(t, openzfs, "zrep-send-resume-gone")
	garbage := readCapture(t, openzfs, "zrep-send-nvP-resume-garbage")
	for _, c := range []struct {
		name    string
		st      exitStatus
		stderr  string
		want    pdu.Class
		reason  error
		mention string
	}{
		{"connection refused", exitStatus{code: 255}, "ssh: connect to host h port 22: Connection refused\n", pdu.Retryable, ErrConnection, "Connection refused"},
		{"timed out", exitStatus{code: 255}, "ssh: connect to host h port 22: Connection timed out\n", pdu.Retryable, ErrConnection, "timed out"},
		{"closed by remote host", exitStatus{code: 255}, "Connection to h closed by remote host.\n", pdu.Retryable, ErrConnection, "closed by remote host"},
		{"client loop", exitStatus{code: 255}, "client_loop: send disconnect: Broken pipe\n", pdu.Retryable, ErrConnection, "send disconnect"},
		{"mux read", exitStatus{code: 255}, "mux_client_read_packet: read header failed: Broken pipe\n", pdu.Retryable, ErrConnection, "mux_client"},
		{"mux master gone", exitStatus{code: 255}, "Control socket connect(/tmp/zrep-ssh-1/cm): Connection refused\nssh: connect to host h port 22: Connection refused\n", pdu.Retryable, ErrConnection, "Connection refused"},
		{"host key", exitStatus{code: 255}, "Host key verification failed.\n", pdu.Retryable, ErrConnection, "Host key"},
		{"silent 255", exitStatus{code: 255}, "", pdu.Retryable, ErrConnection, "exit status 255"},
		{"ok, then lost", exitStatus{code: 255}, marker("0") + "Connection to h closed by remote host.\n", pdu.Retryable, ErrConnection, "closed by remote host"},
		{"zfs 255 resume gone (captured)", exitStatus{code: gone.rc}, gone.err + marker("255"), pdu.Permanent, nil, "no longer exists"},
		{"zfs 255 resume gone, send (captured)", exitStatus{code: goneSend.rc}, goneSend.err + marker("255"), pdu.Permanent, nil, "no longer exists"},
		{"zfs 255 corrupt token (captured)", exitStatus{code: garbage.rc}, garbage.err + marker("255"), pdu.Permanent, nil, "resume token is corrupt"},
		{"zfs 255 does not exist", exitStatus{code: 255}, "cannot open 'tank/x@s': dataset does not exist\n" + marker("255"), pdu.Permanent, ErrDatasetNotExist, "does not exist"},
		{"zfs 255 broken stream", exitStatus{code: 255}, "warning: cannot send 'tank/a@s': Broken pipe\n" + marker("255"), pdu.Retryable, nil, "Broken pipe"},
		{"zfs 1 modified", exitStatus{code: 1}, "cannot receive incremental stream: destination backup/a has been modified\n" + marker("1"), pdu.Permanent, nil, "--rollback"},
		{"zfs killed there", exitStatus{code: 137}, marker("137"), pdu.Retryable, nil, "exit status 137"},
		{"zfs not installed", exitStatus{code: 127}, "env: 'zfs': No such file or directory\n" + marker("127"), pdu.Permanent, nil, "PATH"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := classify(send, "h", c.st, c.stderr)
			if got := pdu.ClassOf(err); got != c.want {
				t.Errorf("class %v, want %v: %v", got, c.want, err)
			}
			if c.reason != nil && !errors.Is(err, c.reason) {
				t.Errorf("%v is not %v", err, c.reason)
			}
			if c.reason == nil && errors.Is(err, ErrConnection) {
				t.Errorf("%v blames the connection", err)
			}
			if !strings.Contains(err.Error(), c.mention) {
				t.Errorf("%q does not mention %q", err, c.mention)
			}
			if strings.Contains(err.Error(), exitMarker) {
				t.Errorf("%q shows the status line", err)
			}
		})
	}
}
