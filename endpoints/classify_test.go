package endpoints

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/zrep/zrep/pdu"
)

func TestClassifyCaptures(t *testing.T) {
	recv := []string{"zfs", "receive", "-u", "backup/a"}
	send := []string{"zfs", "send", "tank/a@s1"}
	cases := []struct {
		platform, name string
		argv           []string
		want           pdu.Class
		reason         error
		mention        string
	}{
		{openzfs, "recv-exists", recv, pdu.Permanent, nil, "must specify -F"},
		{zfsfuse, "recv-exists", recv, pdu.Permanent, nil, "must specify -F"},
		{openzfs, "recv-modified", recv, pdu.Permanent, nil, "--rollback"},
		{zfsfuse, "recv-modified", recv, pdu.Permanent, nil, "--rollback"},
		{openzfs, "recv-wrong-base", recv, pdu.Permanent, nil, "not the stream's base"},
		{zfsfuse, "recv-wrong-base", recv, pdu.Permanent, nil, "not the stream's base"},
		{openzfs, "recv-nonexistent-parent", recv, pdu.Permanent, ErrDatasetNotExist, "does not exist"},
		{zfsfuse, "recv-nonexistent-parent", recv, pdu.Permanent, ErrDatasetNotExist, "does not exist"},
		{openzfs, "recv-truncated", recv, pdu.Retryable, nil, "incomplete stream"},
		{zfsfuse, "recv-truncated", recv, pdu.Retryable, nil, "invalid backup stream"},
		{openzfs, "recv-truncated-s", recv, pdu.Retryable, nil, "checksum mismatch"},
		{zfsfuse, "recv-truncated-s", recv, pdu.Permanent, ErrUnsupported, "invalid option 's'"},
		{zfsfuse, "recv-abort", []string{"zfs", "receive", "-A", "backup/a"}, pdu.Permanent, ErrUnsupported, "invalid option 'A'"},
		{openzfs, "send-missing", send, pdu.Permanent, ErrDatasetNotExist, "tank/cap@nope"},
		{zfsfuse, "send-missing", send, pdu.Permanent, ErrDatasetNotExist, "cappool/cap@nope"},
		{openzfs, "send-key-not-loaded", send, pdu.Permanent, ErrKeyNotLoaded, "leave out --decrypt"},
		{openzfs, "recv-inherited-key", recv, pdu.Permanent, ErrKeyNotLoaded, "load it on the destination"},
		{openzfs, "create-key-not-loaded", []string{"zfs", "create", "x"}, pdu.Permanent, ErrKeyNotLoaded, "key is not loaded"},
		{openzfs, "recv-raw-onto-unencrypted", recv, pdu.Permanent, nil, "received decrypted"},
		{openzfs, "recv-raw-force", recv, pdu.Permanent, nil, "new destination"},
		{openzfs, "list-missing", []string{"zfs", "list", "tank/nope"}, pdu.Permanent, ErrDatasetNotExist, "does not exist"},
		{zfsfuse, "zrep-get-missing", []string{"zfs", "get", "cappool/nope"}, pdu.Permanent, ErrDatasetNotExist, "does not exist"},
		{openzfs, "destroy-held", []string{"zfs", "destroy", "tank/cap@s1"}, pdu.Permanent, nil, "being held"},
		{zfsfuse, "destroy-held", []string{"zfs", "destroy", "cappool/cap@s1"}, pdu.Retryable, nil, "dataset is busy"},
		{zfsfuse, "version", versionArgv(), pdu.Permanent, ErrUnsupported, "unrecognized command 'version'"},
		{zfsfuse, "send-nvP-full", send, pdu.Permanent, ErrUnsupported, "invalid option 'n'"},
		{zfsfuse, "list-p", []string{"zfs", "list"}, pdu.Permanent, ErrUnsupported, "invalid option 'p'"},
		{zfsfuse, "resume-token", []string{"zfs", "get"}, pdu.Permanent, ErrUnsupported, "bad property list"},
		{zfsfuse, "zrep-inherit-canmount", []string{"zfs", "inherit", "canmount", "x"}, pdu.Permanent, nil, "cannot be inherited"},
		{zfsfuse, "zrep-destroy-list", []string{"zfs", "destroy", "x"}, pdu.Permanent, nil, "invalid dataset name"},
		{zfsfuse, "zrep-send-t", send, pdu.Permanent, ErrUnsupported, "invalid option 't'"},
		// OpenZFS's zfs send -t exits 255 for a token it cannot resume.
		{openzfs, "zrep-send-nvP-resume-gone", []string{"zfs", "send", "-nvP", "-t", "1-x"}, pdu.Permanent, nil, "no longer exists"},
		{openzfs, "zrep-send-resume-gone", []string{"zfs", "send", "-t", "1-x"}, pdu.Permanent, nil, "no longer exists"},
		{openzfs, "zrep-send-nvP-resume-garbage", []string{"zfs", "send", "-nvP", "-t", "1-x"}, pdu.Permanent, nil, "corrupt"},
	}
	for _, c := range cases {
		t.Run(c.platform+"/"+c.name, func(t *testing.T) {
			capt := readCapture(t, c.platform, c.name)
			if capt.rc == 0 {
				t.Fatalf("capture exited 0")
			}
			err := classify(c.argv, "", exitStatus{code: capt.rc}, capt.err)
			if got := pdu.ClassOf(err); got != c.want {
				t.Errorf("class %v, want %v: %v", got, c.want, err)
			}
			if c.reason != nil && !errors.Is(err, c.reason) {
				t.Errorf("%v is not %v", err, c.reason)
			}
			if !strings.Contains(err.Error(), c.mention) {
				t.Errorf("%q does not mention %q", err, c.mention)
			}
			if strings.Contains(err.Error(), "usage:") || strings.Count(err.Error(), "\n") > 0 {
				t.Errorf("message is not one line without usage: %q", err)
			}
		})
	}
}

// TestClassifyKeyNotLoaded: a send of an encrypted dataset whose key is
// not loaded (with --decrypt) is permanent and tells the operator that
// leaving out --decrypt sends it raw.
func TestClassifyKeyNotLoaded(t *testing.T) {
	send := []string{"zfs", "send", "tank/secret@s1"}
	for name, stderr := range map[string]string{
		// Captured on OpenZFS 2.3.2 (zfs send, key unloaded).
		"openzfs 2.3":    "warning: cannot send 'tank/secret@s1': dataset key must be loaded\n",
		"source wording": "cannot send 'tank/secret@s1': source key must be loaded\n",
		"other words":    "warning: cannot send 'tank/secret@s1': encryption key not loaded\n",
	} {
		t.Run(name, func(t *testing.T) {
			err := classify(send, "", exitStatus{code: 1}, stderr)
			if pdu.ClassOf(err) != pdu.Permanent || !errors.Is(err, ErrKeyNotLoaded) {
				t.Errorf("class %v, reason %v: %v", pdu.ClassOf(err), errors.Is(err, ErrKeyNotLoaded), err)
			}
			if !strings.Contains(err.Error(), "leave out --decrypt") {
				t.Errorf("%q does not name --decrypt", err)
			}
		})
	}
}

// TestClassifyHolds: the answers of zfs hold and release that Hold and
// Release take as done are recognised here, in libzfs's words.
func TestClassifyHolds(t *testing.T) {
	for _, c := range []struct {
		argv   []string
		stderr string
		reason error
	}{
		{[]string{"zfs", "hold", "zrep_1", "tank/a@s1"}, "cannot hold snapshot 'tank/a@s1': tag already exists on this dataset\n", ErrHoldExists},
		{[]string{"zfs", "release", "zrep_1", "tank/a@s1"}, "cannot release hold from snapshot 'tank/a@s1': no such tag on this dataset\n", ErrNoSuchHold},
		{[]string{"zfs", "release", "zrep_1", "tank/a@s1"}, "cannot release hold from snapshot 'tank/a@s1': dataset does not exist\n", ErrDatasetNotExist},
	} {
		err := classify(c.argv, "", exitStatus{code: 1}, c.stderr)
		if !errors.Is(err, c.reason) || pdu.ClassOf(err) != pdu.Permanent {
			t.Errorf("%q: got %v (class %v), want %v", c.stderr, err, pdu.ClassOf(err), c.reason)
		}
		for _, other := range []error{ErrHoldExists, ErrNoSuchHold, ErrDatasetNotExist} {
			if other != c.reason && errors.Is(err, other) {
				t.Errorf("%q: %v is also %v", c.stderr, err, other)
			}
		}
	}
}

func TestClassifyExit(t *testing.T) {
	recv := []string{"zfs", "receive", "-u", "backup/a"}
	cases := []struct {
		name   string
		host   string
		st     exitStatus
		stderr string
		want   pdu.Class
		msg    string
	}{
		{"ssh 255", "h", exitStatus{code: 255}, "ssh: connect to host h port 22: Connection refused\n", pdu.Retryable,
			"zfs receive backup/a on host h: ssh: connect to host h port 22: Connection refused"},
		{"local 255 is zfs's own", "", exitStatus{code: 255}, "internal error: /usr/lib/zfs/pyzfs.py not found\n", pdu.Permanent, "internal error"},
		{"killed here", "", exitStatus{code: -1, signal: syscall.SIGKILL}, "", pdu.Retryable, "killed by signal killed"},
		{"killed there", "h", exitStatus{code: 143}, "\nzrep-exit:143\n", pdu.Retryable, "exit status 143"},
		{"remote 127", "h", exitStatus{code: 127}, "sh: 1: zfs: not found\n\nzrep-exit:127\n", pdu.Permanent, "PATH"},
		{"busy", "", exitStatus{code: 1}, "cannot receive: dataset is busy\n", pdu.Retryable, "busy"},
		{"broken pipe", "", exitStatus{code: 1}, "warning: cannot send 'tank/a@s': Broken pipe\n", pdu.Retryable, "Broken pipe"},
		{"no space", "", exitStatus{code: 1}, "cannot receive new filesystem stream: out of space\n", pdu.Permanent, "free space"},
		{"unknown", "", exitStatus{code: 1}, "cannot receive: something new\n", pdu.Permanent, "something new"},
		{"silent", "", exitStatus{code: 3}, "", pdu.Permanent, "zfs receive backup/a: exit status 3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := classify(recv, c.host, c.st, c.stderr)
			if got := pdu.ClassOf(err); got != c.want {
				t.Errorf("class %v, want %v: %v", got, c.want, err)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("%q does not contain %q", err, c.msg)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	for _, c := range []struct {
		argv []string
		host string
		want string
	}{
		{[]string{"zfs", "receive", "-u", "backup/a"}, "x", "zfs receive backup/a on host x"},
		{[]string{"zfs", "send", "-t", "1-abc"}, "", "zfs send (resume token)"},
		{[]string{"zfs", "version"}, "", "zfs version"},
	} {
		if got := describe(c.argv, c.host); got != c.want {
			t.Errorf("describe(%q) = %q, want %q", c.argv, got, c.want)
		}
	}
}
