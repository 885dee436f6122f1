package endpoints

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/cpu"
)

// aesGCM are the ciphers zrep asks for first on a machine with AES
// instructions. On such a machine OpenSSH's default first choice,
// chacha20-poly1305, carries about half of what AES-GCM does through one
// connection (docs/performance.md, "The ssh cipher"), and on a LAN that
// connection is the bottleneck of a send.
var aesGCM = []string{"aes128-gcm@openssh.com", "aes256-gcm@openssh.com"}

// cipherProbeTimeout bounds each `ssh -G`: it connects nowhere, but a
// `Match exec` in the configuration runs a command.
const cipherProbeTimeout = 5 * time.Second

// cpuHasAES reports whether this machine's CPU has AES instructions (the
// `aes` flag of /proc/cpuinfo on amd64, `aes` in its Features on arm64).
func cpuHasAES() bool {
	return cpu.X86.HasAES || cpu.ARM64.HasAES
}

// userChoseCiphers reports whether one of the --ssh-option values sets
// Ciphers (ssh takes `Ciphers=LIST` and `Ciphers LIST`, in any case).
func userChoseCiphers(options []string) bool {
	for _, o := range options {
		key, _, _ := strings.Cut(strings.TrimSpace(o), "=")
		if f := strings.Fields(key); len(f) > 0 && strings.EqualFold(f[0], "Ciphers") {
			return true
		}
	}
	return false
}

// sshGCiphers is the `ciphers` line of `ssh -G` output: the list ssh
// would offer, "" when there is none.
func sshGCiphers(out []byte) string {
	for line := range bytes.Lines(out) {
		if v, ok := bytes.CutPrefix(line, []byte("ciphers ")); ok {
			return string(bytes.TrimSpace(v))
		}
	}
	return ""
}

// preferredCiphers is the Ciphers option zrep gives the master
// connection, or "" to leave ssh's choice alone. hostList is what `ssh -G`
// reports for the host with the user's options, defaultList what it
// reports with no configuration at all. zrep changes nothing when the
// operator chose (a Ciphers option, or a configured list that differs from
// the default, a system-wide crypto policy included), when the CPU has no
// AES instructions, when a probe failed, or when AES-GCM already comes
// first. Otherwise AES-GCM goes first and the whole default list follows,
// so that a server that refuses AES-GCM still agrees on its usual cipher.
func preferredCiphers(hostList, defaultList string, userOption, aes bool) string {
	if userOption || !aes || hostList == "" || hostList != defaultList {
		return ""
	}
	def := strings.Split(defaultList, ",")
	var first []string
	for _, c := range aesGCM {
		if slices.Contains(def, c) {
			first = append(first, c)
		}
	}
	if len(first) == 0 || slices.Equal(def[:min(len(first), len(def))], first) {
		return ""
	}
	rest := slices.DeleteFunc(def, func(c string) bool { return slices.Contains(first, c) })
	return strings.Join(append(first, rest...), ",")
}

// defaultCiphers is ssh's list with no configuration (`ssh -F none -G`),
// the same for every host: probed once per process.
var defaultCiphers struct {
	once sync.Once
	list string
}

// cipherOptions is c.opts with AES-GCM asked for first where
// preferredCiphers says so; the two `ssh -G` probes run locally, once per
// connection, before its login.
func (c *sshConn) cipherOptions(ctx context.Context) SSHOptions {
	o := c.opts
	if userChoseCiphers(o.Options) || !cpuHasAES() {
		return o
	}
	probe := func(argv []string) string {
		pctx, cancel := context.WithTimeout(ctx, cipherProbeTimeout)
		defer cancel()
		var out bytes.Buffer
		if err := c.run.run(pctx, argv, argv, nil, &out); err != nil {
			c.run.log.Debug("ssh cipher probe failed; ssh's own choice stays", "host", c.side.Host, "err", err)
			return ""
		}
		return sshGCiphers(out.Bytes())
	}
	// The two probes at once: each is a process start, tens of
	// milliseconds on a busy machine, before the login.
	done := make(chan struct{})
	go func() {
		defer close(done)
		defaultCiphers.once.Do(func() {
			defaultCiphers.list = probe([]string{"ssh", "-F", "none", "-G", "--", c.side.Host})
		})
	}()
	base := sshBaseArgv(c.side, o, "")
	host := probe(append(base, "-G", "--", c.side.Host))
	<-done
	list := preferredCiphers(host, defaultCiphers.list, false, true)
	if list == "" {
		c.run.log.Debug("ssh cipher: the configured list stays", "host", c.side.Host, "ciphers", host)
		return o
	}
	c.run.log.Debug("ssh cipher: AES-GCM first", "host", c.side.Host, "ciphers", list)
	o.Options = append(slices.Clip(o.Options), "Ciphers="+list)
	return o
}
