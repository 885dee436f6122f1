package endpoints

import (
	"os/exec"
	"strings"
	"testing"
)

// OpenSSH 9.2's default list, as `ssh -F none -G` prints it.
const openssh92Ciphers = "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com"

func TestPreferredCiphers(t *testing.T) {
	gcmFirst := "aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr"
	for _, tc := range []struct {
		name        string
		host, deflt string
		user, aes   bool
		want        string
	}{
		{"unconfigured host, AES CPU: AES-GCM first, then the default list", openssh92Ciphers, openssh92Ciphers, false, true, gcmFirst},
		{"no AES instructions: ssh's choice", openssh92Ciphers, openssh92Ciphers, false, false, ""},
		{"--ssh-option Ciphers: the user's choice", openssh92Ciphers, openssh92Ciphers, true, true, ""},
		{"ssh_config chose for the host", "aes256-ctr", openssh92Ciphers, false, true, ""},
		{"a system policy reorders the list", gcmFirst, openssh92Ciphers, false, true, ""},
		{"host probe failed", "", openssh92Ciphers, false, true, ""},
		{"default probe failed", openssh92Ciphers, "", false, true, ""},
		{"already AES-GCM first", gcmFirst, gcmFirst, false, true, ""},
		{"a client without AES-GCM", "chacha20-poly1305@openssh.com,aes128-ctr", "chacha20-poly1305@openssh.com,aes128-ctr", false, true, ""},
		{"only aes256-gcm built in",
			"chacha20-poly1305@openssh.com,aes128-ctr,aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com,aes128-ctr,aes256-gcm@openssh.com", false, true,
			"aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := preferredCiphers(tc.host, tc.deflt, tc.user, tc.aes); got != tc.want {
				t.Fatalf("preferredCiphers = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestUserChoseCiphers(t *testing.T) {
	for _, tc := range []struct {
		opts []string
		want bool
	}{
		{nil, false},
		{[]string{"BatchMode=yes", "UserKnownHostsFile=/x"}, false},
		{[]string{"Ciphers=aes256-ctr"}, true},
		{[]string{"BatchMode=yes", "ciphers=aes256-ctr"}, true},
		{[]string{"Ciphers aes128-ctr,aes256-ctr"}, true},
		{[]string{" CIPHERS=+aes256-cbc"}, true},
		{[]string{"CiphersX=1"}, false},
		{[]string{"MACs=hmac-sha2-256"}, false},
	} {
		if got := userChoseCiphers(tc.opts); got != tc.want {
			t.Errorf("userChoseCiphers(%q) = %v, want %v", tc.opts, got, tc.want)
		}
	}
}

func TestSSHGCiphers(t *testing.T) {
	out := "user root\nhostname h\nciphers " + openssh92Ciphers + "\nmacs umac-64-etm@openssh.com\n"
	if got := sshGCiphers([]byte(out)); got != openssh92Ciphers {
		t.Fatalf("sshGCiphers = %q", got)
	}
	if got := sshGCiphers([]byte("user root\n")); got != "" {
		t.Fatalf("no ciphers line: %q", got)
	}
}

// The probe reads this machine's ssh: with no configuration its list is
// the default list, so an unconfigured host gets AES-GCM first, and a
// Ciphers option given with -o shows in `ssh -G` and is left alone.
func TestCipherProbeAgainstThisSSH(t *testing.T) {
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Skip("no ssh client")
	}
	g := func(args ...string) string {
		out, err := exec.Command("ssh", append(args, "-G", "--", "zrep-no-such-host.invalid")...).Output()
		if err != nil {
			t.Fatalf("ssh -G: %v", err)
		}
		return sshGCiphers(out)
	}
	deflt := g("-F", "none")
	if deflt == "" {
		t.Fatal("ssh -F none -G printed no ciphers line")
	}
	chosen := g("-F", "none", "-o", "Ciphers=aes256-ctr")
	if chosen != "aes256-ctr" {
		t.Fatalf("ssh -G with -o Ciphers=aes256-ctr: %q", chosen)
	}
	if got := preferredCiphers(chosen, deflt, false, true); got != "" {
		t.Fatalf("a chosen list was changed to %q", got)
	}
	got := preferredCiphers(deflt, deflt, false, true)
	if strings.Contains(deflt, "aes128-gcm@openssh.com") && !strings.HasPrefix(got, "aes128-gcm@openssh.com,") &&
		!strings.HasPrefix(deflt, "aes128-gcm@openssh.com,") {
		t.Fatalf("default list %q became %q", deflt, got)
	}
}
