package e2e

import (
	"context"
	"strconv"
	"testing"

	"github.com/zrep/zrep/endpoints"
	"github.com/zrep/zrep/replication/sidetest"
)

// sidePool is a throw-away pool on the tier's zfs for the side contract
// (replication/sidetest); its sides are zrep's real endpoints, local on
// this host or over ssh to the pool's machine.
type sidePool struct {
	name string
	ssh  bool
}

func (p *sidePool) Root() string { return p.name }

// Create makes fs without compression, so that the zeros Snapshot writes
// make a stream of their size (random data is slow on the emulated guest).
func (p *sidePool) Create(t *testing.T, fs string) {
	zfs(t, "create", "-o", "compression=off", fs)
}

// Snapshot writes 1 MiB first, so that a stream cut in half has started
// its data.
func (p *sidePool) Snapshot(t *testing.T, fs, name string) {
	writeBulk(t, fs, name, 1)
	snapshot(t, fs, name)
}

func (p *sidePool) Modify(t *testing.T, fs string) {
	machineOf(fs).script(t, `zfs mount "$1"; echo changed >"$(zfs get -H -o value mountpoint "$1")/changed"; zfs umount "$1"`, fs)
}

func (p *sidePool) endpoint(root string, opts endpoints.Options) *endpoints.Endpoint {
	s := endpoints.Side{Dataset: root}
	if p.ssh {
		m := machineOf(root)
		port, _ := strconv.Atoi(m.sshPort)
		s.User, s.Host = m.sshUser, m.sshHost
		opts.SSH = endpoints.SSHOptions{Port: port, Identity: m.sshKey, Options: m.sshOptions}
	}
	return endpoints.New(s, opts)
}

func (p *sidePool) Side(t *testing.T, root string, source, recursive bool) sidetest.Side {
	role := "destination"
	if source {
		role = "source"
	}
	e := p.endpoint(root, endpoints.Options{Role: role, Recursive: recursive, Holds: true})
	t.Cleanup(func() { e.Close() })
	return e
}

func (p *sidePool) Capabilities(t *testing.T) sidetest.Capabilities {
	e := p.endpoint(p.name, endpoints.Options{})
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	caps, err := e.Capabilities(ctx)
	if err != nil {
		t.Fatalf("capabilities of %s: %v", p.name, err)
	}
	return sidetest.Capabilities{Bookmarks: caps.Bookmarks, Resumable: caps.ResumeTokens}
}

// TestSideContract: zrep's real sides, on this host and over ssh, behave
// as the side contract says, the contract replication/memzfs is held to in
// plain go test, so that the engine's tests trust a fake that behaves like
// the tier's zfs.
func TestSideContract(t *testing.T) {
	requireLab(t)
	if lab.target.isHost {
		t.Run("local", func(t *testing.T) {
			sidetest.Run(t, func(t *testing.T) sidetest.Pool { return &sidePool{name: newPool(t)} })
		})
	}
	t.Run("ssh", func(t *testing.T) {
		sidetest.Run(t, func(t *testing.T) sidetest.Pool { return &sidePool{name: newPool(t), ssh: true} })
	})
}
