package memzfs

import (
	"context"
	"fmt"
	"slices"

	"github.com/zrep/zrep/pdu"
	"github.com/zrep/zrep/replication"
)

// Operations of snapshot sets and holds.
const (
	OpTakeSnapshots Op = "TakeSnapshots"
	OpHold          Op = "Hold"
	OpRelease       Op = "Release"
)

// Hold puts a user hold tag on fs@name, as another tool would.
func (z *ZFS) Hold(fs, name, tag string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	v := z.mustDataset(fs).find(pdu.Snapshot, name)
	if v == nil {
		panic(fmt.Sprintf("memzfs: no snapshot %s@%s", fs, name))
	}
	if v.holds == nil {
		v.holds = map[string]bool{}
	}
	v.holds[tag] = true
}

// Holds are the hold tags of fs@name, sorted.
func (z *ZFS) Holds(fs, name string) []string {
	z.mu.Lock()
	defer z.mu.Unlock()
	v := z.mustDataset(fs).find(pdu.Snapshot, name)
	if v == nil {
		return nil
	}
	var tags []string
	for t := range v.holds {
		tags = append(tags, t)
	}
	slices.Sort(tags)
	return tags
}

// TakeSnapshots implements replication.SnapshotTaker: the whole set at
// once, or nothing if a name is taken.
func (e *Endpoint) TakeSnapshots(ctx context.Context, req *pdu.SnapshotReq) (*pdu.SnapshotRes, error) {
	for _, fs := range req.Filesystems {
		if !e.inside(fs) {
			return nil, pdu.PermanentError(replication.NewFilteredError(fs))
		}
	}
	if len(req.Filesystems) == 0 {
		return nil, pdu.PermanentError(fmt.Errorf("no filesystem to snapshot"))
	}
	if err := e.z.check(ctx, OpTakeSnapshots, req.Filesystems[0]); err != nil {
		return nil, err
	}
	z := e.z
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, fs := range req.Filesystems {
		d := z.datasets[fs]
		if d == nil {
			return nil, pdu.PermanentError(fmt.Errorf("dataset %s does not exist", fs))
		}
		if d.find(pdu.Snapshot, req.Name) != nil {
			return nil, pdu.PermanentError(fmt.Errorf("snapshot %s@%s already exists: %w", fs, req.Name, pdu.ErrSnapshotExists))
		}
	}
	z.txg++
	for _, fs := range req.Filesystems {
		d := z.datasets[fs]
		d.versions = append(d.versions, &version{FilesystemVersion: pdu.FilesystemVersion{
			Name: req.Name, Type: pdu.Snapshot, Guid: lastGuid.Add(1), CreateTXG: z.txg,
			Creation: int64(z.txg),
		}, written: DefaultSnapshotSize})
		d.modified = false
	}
	z.record("Snapshot %d filesystems @%s", len(req.Filesystems), req.Name)
	return &pdu.SnapshotRes{Atomic: true}, nil
}

// Hold implements replication.Holder.
func (e *Endpoint) Hold(ctx context.Context, fs string, snap *pdu.FilesystemVersion, tag string) error {
	if !e.inside(fs) {
		return pdu.PermanentError(replication.NewFilteredError(fs))
	}
	if err := e.z.check(ctx, OpHold, fs); err != nil {
		return err
	}
	z := e.z
	z.mu.Lock()
	defer z.mu.Unlock()
	d := z.datasets[fs]
	if d == nil {
		return pdu.PermanentError(fmt.Errorf("dataset %s does not exist", fs))
	}
	v := d.byGuid(snap.Guid, pdu.Snapshot)
	if snap.Guid == 0 {
		// A snapshot just taken is known by its name only, as zfs hold
		// names it.
		v = d.find(pdu.Snapshot, snap.Name)
	}
	if v == nil {
		return pdu.PermanentError(fmt.Errorf("snapshot %s@%s does not exist", fs, snap.Name))
	}
	if v.holds == nil {
		v.holds = map[string]bool{}
	}
	if !v.holds[tag] {
		v.holds[tag] = true
		z.record("Hold %s %s@%s", tag, fs, snap.Name)
	}
	return nil
}

// Release implements replication.Holder.
func (e *Endpoint) Release(ctx context.Context, fs string, snaps []*pdu.FilesystemVersion, tag string) ([]*pdu.FilesystemVersion, error) {
	if !e.inside(fs) {
		return nil, pdu.PermanentError(replication.NewFilteredError(fs))
	}
	if err := e.z.check(ctx, OpRelease, fs); err != nil {
		return nil, err
	}
	z := e.z
	z.mu.Lock()
	defer z.mu.Unlock()
	d := z.datasets[fs]
	if d == nil {
		return nil, pdu.PermanentError(fmt.Errorf("dataset %s does not exist", fs))
	}
	var released []*pdu.FilesystemVersion
	for _, s := range snaps {
		v := d.byGuid(s.Guid, pdu.Snapshot)
		if s.Guid == 0 {
			v = d.find(pdu.Snapshot, s.Name)
		}
		if v != nil && v.holds[tag] {
			delete(v.holds, tag)
			released = append(released, s)
			z.record("Release %s %s@%s", tag, fs, s.Name)
		}
	}
	return released, nil
}
