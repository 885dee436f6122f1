package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// debugSSHD starts an sshd of this test on 127.0.0.1 with the lab's keys
// and user, logging at DEBUG1 (which names the negotiated cipher), and
// the extra config lines given. It returns its port, a known_hosts file
// for it and its log file.
func debugSSHD(t *testing.T, extra ...string) (port, knownHosts, logFile string) {
	t.Helper()
	m := lab.host
	dir := filepath.Dir(m.sshKey)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port = strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	tmp := t.TempDir()
	pub, err := os.ReadFile(filepath.Join(dir, "host_key.pub"))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(pub))
	knownHosts = filepath.Join(tmp, "known_hosts")
	if err := os.WriteFile(knownHosts, []byte("[127.0.0.1]:"+port+" "+f[0]+" "+f[1]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := strings.Join(append([]string{
		"ListenAddress 127.0.0.1",
		"Port " + port,
		"HostKey " + filepath.Join(dir, "host_key"),
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"AllowUsers " + m.sshUser,
		"PermitRootLogin yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		"StrictModes no",
		"PidFile none",
		"LogLevel DEBUG1",
	}, extra...), "\n") + "\n"
	cfg := filepath.Join(tmp, "sshd_config")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	logFile = filepath.Join(tmp, "sshd.log")
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-f", cfg, "-E", logFile)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if !waitUntil(10*time.Second, func() bool {
		c, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		b, _ := os.ReadFile(logFile)
		t.Fatalf("sshd on port %s does not listen:\n%s", port, b)
	}
	return port, knownHosts, logFile
}

var kexCipher = regexp.MustCompile(`kex: client->server cipher: (\S+)`)

// negotiated is the client->server cipher of each connection in an sshd
// log.
func negotiated(t *testing.T, logFile string) []string {
	t.Helper()
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	var c []string
	for _, m := range kexCipher.FindAllStringSubmatch(string(b), -1) {
		c = append(c, m[1])
	}
	return c
}

func cpuHasAES(t *testing.T) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		if k = strings.TrimSpace(k); k == "flags" || k == "Features" {
			return strings.Contains(" "+v+" ", " aes ")
		}
	}
	return false
}

// TestSSHCipher: with no cipher chosen, a machine with AES instructions
// carries the stream on AES-GCM; a server that refuses AES-GCM still
// agrees on its usual cipher and the run succeeds; a Ciphers option of the
// user's is what ssh offers, unchanged.
func TestSSHCipher(t *testing.T) {
	requireHost(t)
	want := "chacha20-poly1305@openssh.com"
	if cpuHasAES(t) {
		want = "aes128-gcm@openssh.com"
	}
	for _, tc := range []struct {
		name   string
		sshd   []string
		option string
		want   string
	}{
		{"unconfigured", nil, "", want},
		{"server without AES-GCM", []string{"Ciphers chacha20-poly1305@openssh.com,aes128-ctr"}, "", "chacha20-poly1305@openssh.com"},
		{"user's choice", nil, "Ciphers=aes256-ctr", "aes256-ctr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, kh, logFile := debugSSHD(t, tc.sshd...)
			sp, dp := newHostPool(t), newHostPool(t)
			src, dst := sp+"/data", dp+"/data"
			createFS(t, src, "payload")
			snapshot(t, src, "s1")
			args := []string{"run", "--ssh-port", port, "-i", lab.host.sshKey,
				"--ssh-option", "UserKnownHostsFile=" + kh, "--ssh-option", "BatchMode=yes"}
			if tc.option != "" {
				args = append(args, "--ssh-option", tc.option)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			r := zrepCtx(ctx, t, nil, append(args, src, fmt.Sprintf("%s@127.0.0.1:%s", lab.host.sshUser, dst))...).mustExit(t, 0)
			mustMatch(t, dst, snapshots(t, src))
			got := negotiated(t, logFile)
			if len(got) != 1 {
				t.Fatalf("want one ssh connection, sshd saw ciphers %v\nstderr:\n%s", got, r.stderr)
			}
			if got[0] != tc.want {
				t.Fatalf("negotiated cipher %s, want %s", got[0], tc.want)
			}
		})
	}
}
