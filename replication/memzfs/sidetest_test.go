package memzfs_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/zrep/zrep/replication/memzfs"
	"github.com/zrep/zrep/replication/sidetest"
)

// pool is a memzfs pool for the side contract.
type pool struct {
	z    *memzfs.ZFS
	root string
}

var pools atomic.Int64

func newPool(configure func(*memzfs.ZFS)) func(t *testing.T) sidetest.Pool {
	return func(t *testing.T) sidetest.Pool {
		z := memzfs.New()
		configure(z)
		p := &pool{z: z, root: fmt.Sprintf("mem%d", pools.Add(1))}
		z.CreateFilesystem(p.root)
		return p
	}
}

func (p *pool) Root() string                           { return p.root }
func (p *pool) Create(t *testing.T, fs string)         { p.z.CreateFilesystem(fs) }
func (p *pool) Snapshot(t *testing.T, fs, name string) { p.z.Snapshot(fs, name) }
func (p *pool) Modify(t *testing.T, fs string)         { p.z.Modify(fs) }
func (p *pool) Capabilities(t *testing.T) sidetest.Capabilities {
	return sidetest.Capabilities{Bookmarks: !p.z.NoBookmarks, Resumable: p.z.Resumable}
}

func (p *pool) Side(t *testing.T, root string, source, recursive bool) sidetest.Side {
	if source {
		return p.z.Sender(root, recursive)
	}
	return p.z.Receiver(root, recursive)
}

// TestSideContract: memzfs behaves as the side contract says, as modern
// OpenZFS does, and as zfs-fuse does (no resumable receive, no bookmarks).
func TestSideContract(t *testing.T) {
	t.Run("OpenZFS", func(t *testing.T) {
		sidetest.Run(t, newPool(func(*memzfs.ZFS) {}))
	})
	t.Run("zfs-fuse", func(t *testing.T) {
		sidetest.Run(t, newPool(func(z *memzfs.ZFS) { z.Resumable, z.NoBookmarks, z.NoEstimates = false, true, true }))
	})
}
