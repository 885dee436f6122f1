//go:build lab

package endpoints_test

import (
	"testing"

	"github.com/zrep/zrep/endpoints"
	"github.com/zrep/zrep/replication/sidetest"
)

// zfsPool is a throw-away pool on this machine's zfs for the side
// contract; its sides are local, or reach the same zfs over the lab's ssh.
type zfsPool struct {
	name    string
	user    string // with host: the sides log in over ssh
	host    string
	sshOpts endpoints.SSHOptions
}

func (p *zfsPool) Root() string { return p.name }

func (p *zfsPool) Create(t *testing.T, fs string) { sh(t, "zfs create "+q(fs)) }

// Snapshot writes 1 MiB of random data first, so that a stream cut in
// half has started its data.
func (p *zfsPool) Snapshot(t *testing.T, fs, name string) {
	writeData(t, fs, name, 1024)
	sh(t, "zfs snapshot "+q(fs+"@"+name))
}

func (p *zfsPool) Modify(t *testing.T, fs string) {
	sh(t, "zfs mount "+q(fs)+" && echo changed >"+q("/"+fs+"/changed")+" && zfs umount "+q(fs))
}

func (p *zfsPool) Side(t *testing.T, root string, source, recursive bool) sidetest.Side {
	role := "destination"
	if source {
		role = "source"
	}
	e := endpoints.New(endpoints.Side{User: p.user, Host: p.host, Dataset: root},
		endpoints.Options{Role: role, Recursive: recursive, Holds: true, SSH: p.sshOpts})
	t.Cleanup(func() { e.Close() })
	return e
}

func (p *zfsPool) Capabilities(t *testing.T) sidetest.Capabilities {
	e := endpoints.New(endpoints.Side{User: p.user, Host: p.host, Dataset: p.name}, endpoints.Options{SSH: p.sshOpts})
	defer e.Close()
	caps, err := e.Capabilities(ctxT(t))
	if err != nil {
		t.Fatalf("capabilities: %v", err)
	}
	return sidetest.Capabilities{Bookmarks: caps.Bookmarks, Resumable: caps.ResumeTokens}
}

// TestZFSSideContract: the real endpoints, local and over ssh, behave as
// the side contract says (and as replication/memzfs, which runs the same
// contract in plain go test).
func TestZFSSideContract(t *testing.T) {
	t.Run("local", func(t *testing.T) {
		sidetest.Run(t, func(t *testing.T) sidetest.Pool { return &zfsPool{name: testPool(t)} })
	})
	t.Run("ssh", func(t *testing.T) {
		user, host, opts := labSSH(t)
		sidetest.Run(t, func(t *testing.T) sidetest.Pool {
			return &zfsPool{name: testPool(t), user: user, host: host, sshOpts: opts}
		})
	})
}
