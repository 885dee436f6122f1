// Package memzfs is an in-memory ZFS for tests: datasets with snapshots
// and bookmarks (guids, createtxg), placeholders, rollback and resumable
// receive, behind the replication.Sender and replication.Receiver
// interfaces, with failures that tests inject.
//
// It behaves like ZFS where the engine can see it: a receive refuses a
// stream whose incremental base is not the destination's newest snapshot,
// a full stream into an existing filesystem without -F (and, even with it,
// into one with snapshots), and a modified destination; a request outside
// the side's root is refused. replication/sidetest holds it to the same
// contract as the real endpoints. Native encryption is modelled as OpenZFS
// 2.3 has it: a send that is not raw needs the key, a raw receive makes its
// filesystem an encryption root whose key is not loaded, a receive that is
// not raw needs the key of the encryption it inherits, and neither a raw
// stream nor anything encrypted is overwritten with -F. Streams are small
// byte payloads that say what they carry,
// so the receiving side checks base and target guids.
package memzfs

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/zrep/zrep/pdu"
	"github.com/zrep/zrep/replication"
)

// DefaultSnapshotSize is the payload of a snapshot made by Snapshot.
const DefaultSnapshotSize = 1000

// guids are unique across every ZFS of a test binary, like real guids.
var lastGuid atomic.Uint64

func init() { lastGuid.Store(0x5eed0000) }

// Op names an endpoint operation, for FailNext and Hook.
type Op string

// The operations that can be made to fail.
const (
	OpList                Op = "ListFilesystems"
	OpListVersions        Op = "ListFilesystemVersions"
	OpDestroy             Op = "DestroySnapshots"
	OpSend                Op = "Send"
	OpStream              Op = "Stream" // the send stream breaks half-way
	OpEstimate            Op = "EstimateSize"
	OpResumeTarget        Op = "ResumeTarget"
	OpReceive             Op = "Receive"
	OpCreatePlaceholder   Op = "CreatePlaceholder"
	OpClearPlaceholder    Op = "ClearPlaceholder"
	OpRollback            Op = "Rollback"
	OpAbortPartialReceive Op = "AbortPartialReceive"
	OpSetCursor           Op = "SetCursor"
)

type version struct {
	pdu.FilesystemVersion
	// written is the snapshot's own data, the size of an incremental
	// stream that ends at it.
	written int64
	// holds are the snapshot's user hold tags.
	holds map[string]bool
}

type dataset struct {
	placeholder bool
	// sync is the zrep:sync value set on the dataset, "" if none.
	sync     string
	modified bool
	versions []*version
	// A clone's origin: the filesystem and guid of the snapshot it was
	// made from (originFS is "" for no clone).
	originFS   string
	originGuid uint64
	// partial receive state
	resumeToken    string
	partialCreated bool
	// Encryption: encRoot makes the dataset an encryption root (its key
	// unloaded when keyUnloaded), encOff makes it unencrypted below an
	// encrypted parent; otherwise it inherits its parent's encryption.
	encRoot, encOff, keyUnloaded bool
}

type fault struct {
	n   int
	err error
}

// ZFS is one machine's pools. The zero value is not usable: use New.
type ZFS struct {
	// Resumable says the platform keeps partial receive state when a
	// resumable receive breaks (OpenZFS does, zfs-fuse does not).
	Resumable bool
	// NoEstimates makes EstimateSize answer "unknown", as on zfs-fuse.
	NoEstimates bool
	// NoBookmarks makes SetCursor do nothing, as on zfs-fuse.
	NoBookmarks bool
	// Hook, when set, runs before every operation; its error is returned
	// as the operation's.
	Hook func(op Op, fs string) error

	mu       sync.Mutex
	txg      uint64
	datasets map[string]*dataset
	faults   map[Op]*fault
	calls    []string
}

// New returns an empty ZFS with resumable receive.
func New() *ZFS {
	return &ZFS{Resumable: true, txg: 100, datasets: map[string]*dataset{}, faults: map[Op]*fault{}}
}

// FailNext makes the next n calls of op fail with err (classify it with
// pdu.RetryableError or pdu.PermanentError). For OpStream the next n send
// streams break half-way and err is what both sides see.
func (z *ZFS) FailNext(op Op, n int, err error) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.faults[op] = &fault{n: n, err: err}
}

// Calls are the operations that changed something, in order, e.g.
// "Receive backup/a full @s3" or "Rollback backup/a @s2".
func (z *ZFS) Calls() []string {
	z.mu.Lock()
	defer z.mu.Unlock()
	return slices.Clone(z.calls)
}

func (z *ZFS) record(format string, args ...any) {
	z.calls = append(z.calls, fmt.Sprintf(format, args...))
}

// check runs the hook and the injected faults for op. z.mu must not be held.
func (z *ZFS) check(ctx context.Context, op Op, fs string) error {
	if err := ctx.Err(); err != nil {
		return pdu.RetryableError(err)
	}
	z.mu.Lock()
	hook := z.Hook
	var err error
	if f := z.faults[op]; f != nil && f.n > 0 && op != OpStream {
		f.n--
		err = f.err
	}
	z.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, fs, err)
	}
	if hook != nil {
		return hook(op, fs)
	}
	return nil
}

// CreateFilesystem creates fs and its missing parents, like `zfs create -p`.
func (z *ZFS) CreateFilesystem(fs string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	for p := fs; p != ""; p = pdu.Parent(p) {
		if z.datasets[p] == nil {
			z.datasets[p] = &dataset{}
		}
	}
}

// Snapshot creates fs@name with DefaultSnapshotSize bytes of data.
func (z *ZFS) Snapshot(fs, name string) *pdu.FilesystemVersion {
	return z.SnapshotSize(fs, name, DefaultSnapshotSize)
}

// SnapshotSize creates fs@name holding size bytes written since the
// previous snapshot. It panics if fs does not exist: that is a broken test.
func (z *ZFS) SnapshotSize(fs, name string, size int64) *pdu.FilesystemVersion {
	z.mu.Lock()
	defer z.mu.Unlock()
	d := z.mustDataset(fs)
	z.txg++
	v := &version{FilesystemVersion: pdu.FilesystemVersion{
		Name: name, Type: pdu.Snapshot, Guid: lastGuid.Add(1), CreateTXG: z.txg,
		Creation: int64(z.txg),
	}, written: size}
	d.versions = append(d.versions, v)
	d.modified = false
	return copyVersion(v)
}

// Clone creates fs as a clone of origin@snap, like `zfs clone`: it holds
// the origin's data without a byte of its own. It panics if the snapshot or
// fs's parent is missing, or fs exists.
func (z *ZFS) Clone(origin, snap, fs string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	s := z.mustDataset(origin).find(pdu.Snapshot, snap)
	if s == nil {
		panic(fmt.Sprintf("memzfs: no snapshot %s@%s", origin, snap))
	}
	if z.datasets[fs] != nil || z.datasets[pdu.Parent(fs)] == nil {
		panic("memzfs: cannot create clone " + fs)
	}
	z.datasets[fs] = &dataset{originFS: origin, originGuid: s.Guid}
}

// Promote promotes the clone fs, like `zfs promote`: the origin's
// snapshots up to and including the clone's origin move to fs, and the
// former origin filesystem becomes a clone of fs's snapshot. Guids stay.
func (z *ZFS) Promote(fs string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	c := z.mustDataset(fs)
	if c.originFS == "" {
		panic("memzfs: " + fs + " is not a clone")
	}
	o := z.mustDataset(c.originFS)
	base := o.byGuid(c.originGuid, pdu.Snapshot)
	var moved, kept []*version
	for _, v := range o.versions {
		if v.Type == pdu.Snapshot && v.CreateTXG <= base.CreateTXG {
			moved = append(moved, v)
		} else {
			kept = append(kept, v)
		}
	}
	oldOrigin := c.originFS
	c.versions = append(moved, c.versions...)
	o.versions = kept
	c.originFS, c.originGuid, o.originFS, o.originGuid = o.originFS, o.originGuid, fs, base.Guid
	for _, d := range z.datasets {
		// The other clones of the moved snapshots follow them.
		if d != c && d != o && d.originFS == oldOrigin && c.byGuid(d.originGuid, pdu.Snapshot) != nil {
			d.originFS = fs
		}
	}
}

// Origin is fs's origin as `zfs get origin` shows it (`pool/fs@snap`), ""
// for no clone.
func (z *ZFS) Origin(fs string) string {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.origin(z.mustDataset(fs))
}

// origin names d's origin snapshot. z.mu must be held.
func (z *ZFS) origin(d *dataset) string {
	if d.originFS == "" {
		return ""
	}
	if o := z.datasets[d.originFS]; o != nil {
		if s := o.byGuid(d.originGuid, pdu.Snapshot); s != nil {
			return s.FullPath(d.originFS)
		}
	}
	return ""
}

// Used is the data fs holds itself: what its snapshots wrote, without
// what a clone shares with its origin.
func (z *ZFS) Used(fs string) int64 {
	z.mu.Lock()
	defer z.mu.Unlock()
	var n int64
	for _, v := range z.mustDataset(fs).versions {
		if v.Type == pdu.Snapshot {
			n += v.written
		}
	}
	return n
}

// CreateEncrypted creates fs and its missing parents, fs as an encryption
// root with its key loaded, like `zfs create -o encryption=on`.
func (z *ZFS) CreateEncrypted(fs string) {
	z.CreateFilesystem(fs)
	z.mu.Lock()
	defer z.mu.Unlock()
	d := z.datasets[fs]
	d.encRoot, d.encOff, d.keyUnloaded = true, false, false
}

// CreateUnencrypted creates fs and its missing parents, fs not encrypted
// even below an encrypted parent, like `zfs create -o encryption=off`.
func (z *ZFS) CreateUnencrypted(fs string) {
	z.CreateFilesystem(fs)
	z.mu.Lock()
	defer z.mu.Unlock()
	d := z.datasets[fs]
	d.encRoot, d.encOff = false, true
}

// UnloadKey unloads the key of the encryption root fs (`zfs unload-key`).
func (z *ZFS) UnloadKey(fs string) { z.setKey(fs, false) }

// LoadKey loads the key of the encryption root fs (`zfs load-key`).
func (z *ZFS) LoadKey(fs string) { z.setKey(fs, true) }

func (z *ZFS) setKey(fs string, loaded bool) {
	z.mu.Lock()
	defer z.mu.Unlock()
	d := z.mustDataset(fs)
	if !d.encRoot {
		panic("memzfs: " + fs + " is not an encryption root")
	}
	d.keyUnloaded = !loaded
}

// Encryption is fs's encryption as `zfs get encryption,encryptionroot,
// keystatus` lists it: "off", "", "" for a filesystem that is not
// encrypted.
func (z *ZFS) Encryption(fs string) (encryption, root, keyStatus string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.mustDataset(fs)
	return z.encryption(fs)
}

// encryption is Encryption with z.mu held; fs need not exist (a dataset
// about to be created inherits from its parent).
func (z *ZFS) encryption(fs string) (encryption, root, keyStatus string) {
	for p := fs; p != ""; p = pdu.Parent(p) {
		d := z.datasets[p]
		switch {
		case d == nil:
		case d.encRoot && d.keyUnloaded:
			return "aes-256-gcm", p, pdu.KeyUnavailable
		case d.encRoot:
			return "aes-256-gcm", p, pdu.KeyAvailable
		case d.encOff:
			return "off", "", ""
		}
	}
	return "off", "", ""
}

// Bookmark creates fs#bookmark from fs@snap.
func (z *ZFS) Bookmark(fs, snap, bookmark string) *pdu.FilesystemVersion {
	z.mu.Lock()
	defer z.mu.Unlock()
	d := z.mustDataset(fs)
	s := d.find(pdu.Snapshot, snap)
	if s == nil {
		panic(fmt.Sprintf("memzfs: no snapshot %s@%s", fs, snap))
	}
	b := &version{FilesystemVersion: s.FilesystemVersion}
	b.Type, b.Name = pdu.Bookmark, bookmark
	d.versions = append(d.versions, b)
	return copyVersion(b)
}

// DestroySnapshot destroys fs@name.
func (z *ZFS) DestroySnapshot(fs, name string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	d := z.mustDataset(fs)
	d.versions = slices.DeleteFunc(d.versions, func(v *version) bool { return v.Type == pdu.Snapshot && v.Name == name })
}

// Modify writes to fs after its newest snapshot, so that an incremental
// receive without -F refuses it.
func (z *ZFS) Modify(fs string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.mustDataset(fs).modified = true
}

// SetSync sets the user property zrep:sync on fs ("" clears it): its
// descendants inherit it unless they set their own.
func (z *ZFS) SetSync(fs, value string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.mustDataset(fs).sync = value
}

// syncValue is fs's effective zrep:sync: its own, else its nearest
// ancestor's.
func (z *ZFS) syncValue(fs string) string {
	for p := fs; p != ""; p = pdu.Parent(p) {
		if d := z.datasets[p]; d != nil && d.sync != "" {
			return d.sync
		}
	}
	return ""
}

// Exists reports whether fs exists.
func (z *ZFS) Exists(fs string) bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.datasets[fs] != nil
}

// IsPlaceholder reports whether fs exists and is a placeholder.
func (z *ZFS) IsPlaceholder(fs string) bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	d := z.datasets[fs]
	return d != nil && d.placeholder
}

// ResumeToken is fs's partial receive state, "" if none.
func (z *ZFS) ResumeToken(fs string) string {
	z.mu.Lock()
	defer z.mu.Unlock()
	if d := z.datasets[fs]; d != nil {
		return d.resumeToken
	}
	return ""
}

// Versions are fs's snapshots and bookmarks in creation order; nil if fs
// does not exist.
func (z *ZFS) Versions(fs string) []*pdu.FilesystemVersion {
	z.mu.Lock()
	defer z.mu.Unlock()
	if d := z.datasets[fs]; d != nil {
		return d.copyVersions()
	}
	return nil
}

// SnapshotNames are the names of fs's snapshots in creation order.
func (z *ZFS) SnapshotNames(fs string) []string {
	var names []string
	for _, v := range z.Versions(fs) {
		if v.Type == pdu.Snapshot {
			names = append(names, v.Name)
		}
	}
	return names
}

func (z *ZFS) mustDataset(fs string) *dataset {
	d := z.datasets[fs]
	if d == nil {
		panic("memzfs: no dataset " + fs)
	}
	return d
}

func (d *dataset) find(t pdu.VersionType, name string) *version {
	for _, v := range d.versions {
		if v.Type == t && v.Name == name {
			return v
		}
	}
	return nil
}

func (d *dataset) byGuid(guid uint64, t pdu.VersionType) *version {
	for _, v := range d.versions {
		if v.Guid == guid && v.Type == t {
			return v
		}
	}
	return nil
}

// snapshotIn is fs's snapshot with guid, nil if there is none. z.mu must
// be held.
func (z *ZFS) snapshotIn(fs string, guid uint64) *version {
	if d := z.datasets[fs]; d != nil {
		return d.byGuid(guid, pdu.Snapshot)
	}
	return nil
}

func (d *dataset) snapshots() []*version {
	var s []*version
	for _, v := range d.versions {
		if v.Type == pdu.Snapshot {
			s = append(s, v)
		}
	}
	slices.SortFunc(s, func(a, b *version) int { return cmp.Compare(a.CreateTXG, b.CreateTXG) })
	return s
}

func (d *dataset) copyVersions() []*pdu.FilesystemVersion {
	vs := make([]*pdu.FilesystemVersion, 0, len(d.versions))
	for _, v := range d.versions {
		vs = append(vs, copyVersion(v))
	}
	return replication.SortVersions(vs)
}

func copyVersion(v *version) *pdu.FilesystemVersion {
	c := v.FilesystemVersion
	c.UserRefs = uint32(len(v.holds))
	return &c
}

// Endpoint is a view of a ZFS rooted at one dataset, the way zrep sees
// one side. It implements replication.Sender and replication.Receiver.
type Endpoint struct {
	z         *ZFS
	root      string
	recursive bool
	sender    bool
}

// Sender returns the source side rooted at root; a missing root is a
// permanent listing error.
func (z *ZFS) Sender(root string, recursive bool) *Endpoint {
	return &Endpoint{z: z, root: root, recursive: recursive, sender: true}
}

// Receiver returns the destination side rooted at root; a missing root
// lists as empty if its parent exists.
func (z *ZFS) Receiver(root string, recursive bool) *Endpoint {
	return &Endpoint{z: z, root: root, recursive: recursive}
}

func (e *Endpoint) inside(fs string) bool {
	return fs == e.root || e.recursive && strings.HasPrefix(fs, e.root+"/")
}

// ListFilesystems implements replication.Endpoint.
func (e *Endpoint) ListFilesystems(ctx context.Context) ([]*pdu.Filesystem, error) {
	if err := e.z.check(ctx, OpList, e.root); err != nil {
		return nil, err
	}
	z := e.z
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.datasets[e.root] == nil {
		if e.sender {
			return nil, pdu.PermanentError(fmt.Errorf("dataset %s does not exist", e.root))
		}
		if p := pdu.Parent(e.root); p == "" || z.datasets[p] == nil {
			return nil, pdu.PermanentError(fmt.Errorf("parent of destination does not exist: %s", p))
		}
		return []*pdu.Filesystem{}, nil
	}
	var fss []*pdu.Filesystem
	for name, d := range z.datasets {
		if e.inside(name) {
			enc, root, key := z.encryption(name)
			fss = append(fss, &pdu.Filesystem{Path: name, Placeholder: d.placeholder, ResumeToken: d.resumeToken, Origin: z.origin(d), Versions: d.copyVersions(),
				SyncOff: z.syncValue(name) == "off", Encryption: enc, EncryptionRoot: root, KeyStatus: key})
		}
	}
	slices.SortFunc(fss, func(a, b *pdu.Filesystem) int {
		return slices.Compare(strings.Split(a.Path, "/"), strings.Split(b.Path, "/"))
	})
	return fss, nil
}

// ListFilesystemVersions implements replication.Endpoint.
func (e *Endpoint) ListFilesystemVersions(ctx context.Context, fs string) ([]*pdu.FilesystemVersion, error) {
	if !e.inside(fs) {
		return nil, pdu.PermanentError(replication.NewFilteredError(fs))
	}
	if err := e.z.check(ctx, OpListVersions, fs); err != nil {
		return nil, err
	}
	e.z.mu.Lock()
	defer e.z.mu.Unlock()
	d := e.z.datasets[fs]
	if d == nil {
		return nil, pdu.PermanentError(fmt.Errorf("dataset %s does not exist", fs))
	}
	return d.copyVersions(), nil
}

// DestroySnapshots implements replication.Endpoint.
func (e *Endpoint) DestroySnapshots(ctx context.Context, req *pdu.DestroySnapshotsReq) (*pdu.DestroySnapshotsRes, error) {
	if !e.inside(req.Filesystem) {
		return nil, pdu.PermanentError(replication.NewFilteredError(req.Filesystem))
	}
	if err := e.z.check(ctx, OpDestroy, req.Filesystem); err != nil {
		return nil, err
	}
	z := e.z
	z.mu.Lock()
	defer z.mu.Unlock()
	d := z.datasets[req.Filesystem]
	if d == nil {
		return nil, pdu.PermanentError(fmt.Errorf("dataset %s does not exist", req.Filesystem))
	}
	res := &pdu.DestroySnapshotsRes{}
	for _, s := range req.Snapshots {
		r := &pdu.DestroySnapshotRes{Snapshot: s}
		if v := d.byGuid(s.Guid, pdu.Snapshot); v == nil {
			r.Gone = true
		} else if len(v.holds) > 0 {
			r.Error = "snapshot is held"
		} else {
			d.versions = slices.DeleteFunc(d.versions, func(v *version) bool { return v.Type == pdu.Snapshot && v.Guid == s.Guid })
			z.record("Destroy %s@%s", req.Filesystem, s.Name)
		}
		res.Results = append(res.Results, r)
	}
	return res, nil
}

// The stream format: a header line, then for each snapshot a line
// describing it followed by its payload.
//
//	memzfs-stream from=<guid> clone=<0|1> raw=<0|1> token=<token|->
//	snap <name> <guid> <createtxg> <size> <skip>
//	<size-skip bytes>
const streamMagic = "memzfs-stream"

type streamSnap struct {
	name       string
	guid, txg  uint64
	size, skip int64
}

// streamFor builds the stream for req from fs's versions. z.mu must be held.
func (e *Endpoint) streamFor(req *pdu.SendReq) ([]byte, error) {
	d := e.z.datasets[req.Filesystem]
	if d == nil {
		return nil, pdu.PermanentError(fmt.Errorf("dataset %s does not exist", req.Filesystem))
	}
	from, to, raw := req.From, req.To, req.Options.Raw
	var skip int64
	token := "-"
	if req.ResumeToken != "" {
		t, err := parseToken(req.ResumeToken)
		if err != nil {
			return nil, err
		}
		from, to, raw = nil, &pdu.FilesystemVersion{Guid: t.to, Type: pdu.Snapshot}, t.raw
		if t.from != 0 {
			from = &pdu.FilesystemVersion{Guid: t.from}
		}
		skip, token = t.offset, req.ResumeToken
	}
	if _, _, key := e.z.encryption(req.Filesystem); key == pdu.KeyUnavailable && !raw {
		return nil, pdu.PermanentError(fmt.Errorf("cannot send '%s': dataset key must be loaded", req.Filesystem))
	}
	if to == nil {
		return nil, pdu.PermanentError(errors.New("send without a target snapshot"))
	}
	target := d.byGuid(to.Guid, pdu.Snapshot)
	if target == nil || (req.ResumeToken == "" && target.Name != to.Name) {
		return nil, pdu.PermanentError(fmt.Errorf("snapshot %s@%s does not exist", req.Filesystem, to.Name))
	}
	var base *version
	clone := 0
	switch {
	case from != nil && req.FromFilesystem != "" && req.ResumeToken == "":
		// zfs send -i ORIGIN: only a clone's own origin will do.
		if d.originFS != req.FromFilesystem || d.originGuid != from.Guid {
			return nil, pdu.PermanentError(fmt.Errorf("incremental source %s is not the origin of %s", from.FullPath(req.FromFilesystem), req.Filesystem))
		}
		base = e.z.snapshotIn(req.FromFilesystem, from.Guid)
		clone = 1
	case from != nil && from.Guid == d.originGuid && d.originFS != "":
		// A resumed clone stream.
		base = e.z.snapshotIn(d.originFS, from.Guid)
		clone = 1
	case from != nil:
		if base = d.byGuid(from.Guid, pdu.Snapshot); base == nil {
			base = d.byGuid(from.Guid, pdu.Bookmark)
		}
	}
	if from != nil {
		if base == nil {
			return nil, pdu.PermanentError(fmt.Errorf("incremental source %s of %s does not exist", from.RelName(), req.Filesystem))
		}
		if base.CreateTXG >= target.CreateTXG {
			return nil, pdu.PermanentError(fmt.Errorf("incremental source %s is not earlier than %s", from.RelName(), to.RelName()))
		}
	}

	var snaps []streamSnap
	var pending int64 // data of snapshots skipped by -i
	for _, v := range d.snapshots() {
		if base != nil && v.CreateTXG <= base.CreateTXG {
			continue
		}
		if v.CreateTXG > target.CreateTXG {
			break
		}
		pending += v.written
		if v == target || (req.Intermediates && base != nil) {
			snaps = append(snaps, streamSnap{name: v.Name, guid: v.Guid, txg: v.CreateTXG, size: pending})
			pending = 0
		}
	}
	if skip > 0 {
		snaps = snaps[len(snaps)-1:]
		snaps[0].skip = skip
	}
	var b bytes.Buffer
	fromGuid := uint64(0)
	if base != nil {
		fromGuid = base.Guid
	}
	fmt.Fprintf(&b, "%s from=%d clone=%d raw=%d token=%s\n", streamMagic, fromGuid, clone, boolInt(raw), token)
	for _, s := range snaps {
		fmt.Fprintf(&b, "snap %s %d %d %d %d\n", s.name, s.guid, s.txg, s.size, s.skip)
		b.Write(bytes.Repeat([]byte{'z'}, int(s.size-s.skip)))
	}
	return b.Bytes(), nil
}

// Send implements replication.Sender.
func (e *Endpoint) Send(ctx context.Context, req *pdu.SendReq) (pdu.Stream, error) {
	if err := e.z.check(ctx, OpSend, req.Filesystem); err != nil {
		return nil, err
	}
	if !e.inside(req.Filesystem) {
		return nil, pdu.PermanentError(replication.NewFilteredError(req.Filesystem))
	}
	z := e.z
	z.mu.Lock()
	data, err := e.streamFor(req)
	var breakErr error
	if f := z.faults[OpStream]; err == nil && f != nil && f.n > 0 {
		f.n--
		breakErr = f.err
	}
	if err == nil {
		z.record("Send %s", describeSend(req))
	}
	z.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("send %s: %w", req.Filesystem, err)
	}
	s := &stream{ctx: ctx, data: data}
	if breakErr != nil {
		s.data, s.err = data[:len(data)/2], breakErr
	}
	return s, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func describeSend(req *pdu.SendReq) string {
	var b strings.Builder
	b.WriteString(req.Filesystem)
	if req.ResumeToken != "" {
		b.WriteString(" resume")
	} else if req.Options.Raw {
		b.WriteString(" raw")
	}
	if req.From != nil {
		flag := " -i "
		if req.Intermediates {
			flag = " -I "
		}
		if req.FromFilesystem != "" {
			b.WriteString(flag + req.From.FullPath(req.FromFilesystem))
		} else {
			b.WriteString(flag + req.From.RelName())
		}
	} else {
		b.WriteString(" full")
	}
	if req.To != nil {
		b.WriteString(" " + req.To.RelName())
	}
	return b.String()
}

// stream is a send stream: data, then err (nil for a complete stream).
type stream struct {
	ctx  context.Context
	data []byte
	off  int
	err  error
}

func (s *stream) Read(p []byte) (int, error) {
	if err := s.ctx.Err(); err != nil {
		return 0, pdu.RetryableError(err)
	}
	if s.off == len(s.data) {
		if s.err != nil {
			return 0, s.err
		}
		return 0, io.EOF
	}
	n := copy(p, s.data[s.off:])
	s.off += n
	return n, nil
}

// Close returns the sending side's error: the injected break, or nil.
func (s *stream) Close() error { return s.err }

// EstimateSize implements replication.Sender: the exact stream size.
func (e *Endpoint) EstimateSize(ctx context.Context, req *pdu.SendReq) (pdu.SizeEstimate, error) {
	if err := e.z.check(ctx, OpEstimate, req.Filesystem); err != nil {
		return pdu.SizeEstimate{}, err
	}
	e.z.mu.Lock()
	defer e.z.mu.Unlock()
	if e.z.NoEstimates {
		return pdu.SizeEstimate{}, nil
	}
	data, err := e.streamFor(req)
	if err != nil {
		return pdu.SizeEstimate{}, err
	}
	return pdu.SizeEstimate{Bytes: int64(len(data)), Known: true}, nil
}

type token struct {
	from, to uint64
	offset   int64
	raw      bool
}

func (t token) String() string {
	return fmt.Sprintf("memzfs-token-%d-%d-%d-%d", t.from, t.to, t.offset, boolInt(t.raw))
}

func parseToken(s string) (token, error) {
	var t token
	var raw int
	if _, err := fmt.Sscanf(s, "memzfs-token-%d-%d-%d-%d", &t.from, &t.to, &t.offset, &raw); err != nil {
		return t, pdu.PermanentError(fmt.Errorf("invalid resume token %q", s))
	}
	t.raw = raw == 1
	return t, nil
}

// ResumeTarget implements replication.Sender.
func (e *Endpoint) ResumeTarget(ctx context.Context, fs, tok string) (from, to *pdu.FilesystemVersion, err error) {
	if err := e.z.check(ctx, OpResumeTarget, fs); err != nil {
		return nil, nil, err
	}
	t, err := parseToken(tok)
	if err != nil {
		return nil, nil, err
	}
	e.z.mu.Lock()
	defer e.z.mu.Unlock()
	d := e.z.datasets[fs]
	if d == nil {
		return nil, nil, pdu.PermanentError(fmt.Errorf("dataset %s does not exist", fs))
	}
	tv := d.byGuid(t.to, pdu.Snapshot)
	if tv == nil {
		return nil, nil, pdu.PermanentError(fmt.Errorf("resume token of %s: its snapshot no longer exists on %s", fs, fs))
	}
	if t.from != 0 {
		fv := d.byGuid(t.from, pdu.Snapshot)
		if fv == nil {
			fv = d.byGuid(t.from, pdu.Bookmark)
		}
		if fv == nil {
			return nil, nil, pdu.PermanentError(fmt.Errorf("resume token of %s: its incremental source no longer exists", fs))
		}
		from = copyVersion(fv)
	}
	return from, copyVersion(tv), nil
}

// Receive implements replication.Receiver.
func (e *Endpoint) Receive(ctx context.Context, req *pdu.ReceiveReq, r io.Reader) error {
	fs := req.Filesystem
	if !e.inside(fs) {
		return pdu.PermanentError(replication.NewFilteredError(fs))
	}
	if err := e.z.check(ctx, OpReceive, fs); err != nil {
		// Like a zfs receive that died: the sender sees a broken pipe.
		_, _ = io.Copy(io.Discard, r)
		return err
	}
	br := bufio.NewReader(r)
	header, err := br.ReadString('\n')
	if err != nil {
		return pdu.RetryableError(fmt.Errorf("receive %s: stream ended before its header: %w", fs, err))
	}
	var fromGuid uint64
	var clone, raw int
	var tok string
	if _, err := fmt.Sscanf(header, streamMagic+" from=%d clone=%d raw=%d token=%s\n", &fromGuid, &clone, &raw, &tok); err != nil {
		return pdu.PermanentError(fmt.Errorf("receive %s: invalid stream header %q", fs, header))
	}
	origin, err := e.startReceive(fs, req, fromGuid, clone == 1, raw == 1, tok)
	if err != nil {
		return err
	}
	// The first snapshot of a stream that startReceive let through may
	// replace (full) or roll back (incremental) what the destination has.
	first := tok == "-"
	for {
		line, err := br.ReadString('\n')
		if err == io.EOF && line == "" {
			return nil
		}
		if err != nil {
			return e.broken(fs, req, fromGuid, origin, raw == 1, nil, 0, err)
		}
		f := strings.Fields(line)
		if len(f) != 6 || f[0] != "snap" {
			return pdu.PermanentError(fmt.Errorf("receive %s: invalid stream record %q", fs, line))
		}
		s := streamSnap{name: f[1]}
		s.guid, _ = strconv.ParseUint(f[2], 10, 64)
		s.txg, _ = strconv.ParseUint(f[3], 10, 64)
		s.size, _ = strconv.ParseInt(f[4], 10, 64)
		s.skip, _ = strconv.ParseInt(f[5], 10, 64)
		n, err := io.CopyN(io.Discard, br, s.size-s.skip)
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return e.broken(fs, req, fromGuid, origin, raw == 1, &s, s.skip+n, err)
		}
		off := slices.Contains(req.Options.Set, pdu.Property{Name: "encryption", Value: "off"})
		if err := e.commit(fs, fromGuid, origin, first, raw == 1, off, &s); err != nil {
			return err
		}
		fromGuid, first, origin = s.guid, false, ""
	}
}

// startReceive checks that the stream fits the destination, as zfs
// receive does before it reads the data.
//
// A clone stream (zfs send -i ORIGIN) into a destination that does not
// exist creates it as a clone of the snapshot with the stream's base guid,
// wherever it is on this ZFS; origin names that snapshot's filesystem.
func (e *Endpoint) startReceive(fs string, req *pdu.ReceiveReq, fromGuid uint64, clone, raw bool, tok string) (origin string, err error) {
	z := e.z
	z.mu.Lock()
	defer z.mu.Unlock()
	d := z.datasets[fs]
	enc, _, key := z.encryption(fs)
	off := slices.Contains(req.Options.Set, pdu.Property{Name: "encryption", Value: "off"})
	switch {
	case off && raw:
		return "", pdu.PermanentError(fmt.Errorf("receive %s: cannot receive new filesystem stream: encryption property 'encryption' cannot be set or excluded for raw streams", fs))
	case off && fromGuid != 0:
		return "", pdu.PermanentError(fmt.Errorf("receive %s: cannot receive incremental stream: encryption property 'encryption' cannot be set for incremental streams", fs))
	case off:
		// A full stream kept unencrypted: allowed below any parent.
	case raw && fromGuid == 0 && d != nil && tok == "-" && !d.partialCreated:
		return "", pdu.PermanentError(fmt.Errorf("receive %s: cannot receive new filesystem stream: zfs receive -F cannot be used to destroy an encrypted filesystem or overwrite an unencrypted one with an encrypted one", fs))
	case raw && fromGuid != 0 && d != nil && enc == "off":
		return "", pdu.PermanentError(fmt.Errorf("receive %s: cannot receive incremental stream: cannot perform raw receive on top of existing unencrypted dataset", fs))
	case !raw && key == pdu.KeyUnavailable:
		return "", pdu.PermanentError(fmt.Errorf("receive %s: cannot receive stream: inherited key must be loaded", fs))
	case !raw && fromGuid == 0 && d != nil && enc != "off":
		return "", pdu.PermanentError(fmt.Errorf("receive %s: cannot receive new filesystem stream: zfs receive -F cannot be used to destroy an encrypted filesystem", fs))
	}
	if tok != "-" {
		if d == nil || d.resumeToken == "" {
			return "", pdu.PermanentError(fmt.Errorf("receive %s: resumed stream but no partial receive state", fs))
		}
		t, _ := parseToken(tok)
		p, _ := parseToken(d.resumeToken)
		if t.to != p.to || t.from != p.from || t.offset != p.offset {
			return "", pdu.PermanentError(fmt.Errorf("receive %s: resume token does not match the partial receive state", fs))
		}
		return "", nil
	}
	if d != nil && d.resumeToken != "" {
		return "", pdu.RetryableError(fmt.Errorf("receive %s: destination contains partially-complete state from zfs receive -s", fs))
	}
	if fromGuid == 0 {
		switch {
		case d == nil:
			if p := pdu.Parent(fs); p == "" || z.datasets[p] == nil {
				return "", pdu.PermanentError(fmt.Errorf("receive %s: parent %s does not exist", fs, p))
			}
		case (d.placeholder && req.OverwritePlaceholder || req.Rollback) && len(d.snapshots()) > 0:
			// Not even -F overwrites a filesystem with snapshots.
			return "", pdu.PermanentError(fmt.Errorf("receive %s: destination has snapshots; must destroy them to overwrite it", fs))
		case d.placeholder && req.OverwritePlaceholder, req.Rollback:
		default:
			return "", pdu.PermanentError(fmt.Errorf("receive %s: destination exists; must specify -F to overwrite it", fs))
		}
		return "", nil
	}
	if d == nil && clone {
		if p := pdu.Parent(fs); p == "" || z.datasets[p] == nil {
			return "", pdu.PermanentError(fmt.Errorf("receive %s: parent %s does not exist", fs, p))
		}
		for name, o := range z.datasets {
			if o.byGuid(fromGuid, pdu.Snapshot) != nil {
				return name, nil
			}
		}
		return "", pdu.PermanentError(fmt.Errorf("receive %s: local origin for clone %s does not exist", fs, fs))
	}
	if d == nil {
		return "", pdu.PermanentError(fmt.Errorf("receive %s: destination does not exist for an incremental stream", fs))
	}
	snaps := d.snapshots()
	if len(snaps) == 0 || snaps[len(snaps)-1].Guid != fromGuid {
		if !req.Rollback || d.byGuid(fromGuid, pdu.Snapshot) == nil {
			return "", pdu.PermanentError(fmt.Errorf("receive %s: most recent snapshot does not match incremental source", fs))
		}
	}
	if d.modified && !req.Rollback {
		return "", pdu.PermanentError(fmt.Errorf("receive %s: destination has been modified since most recent snapshot", fs))
	}
	return "", nil
}

// commit adds a fully received snapshot. For the first snapshot of a
// stream startReceive has accepted, a full stream replaces the
// destination's versions and an incremental one drops those after its
// base (what -F allows).
func (e *Endpoint) commit(fs string, fromGuid uint64, origin string, first, raw, encOff bool, s *streamSnap) error {
	z := e.z
	z.mu.Lock()
	defer z.mu.Unlock()
	d := z.datasets[fs]
	switch {
	case d == nil && origin != "":
		d = &dataset{originFS: origin, originGuid: fromGuid}
		z.datasets[fs] = d
	case d == nil:
		// A raw receive makes the new filesystem an encryption root
		// whose key is not loaded.
		d = &dataset{encRoot: raw, keyUnloaded: raw, encOff: encOff}
		z.datasets[fs] = d
	case d.resumeToken != "":
		d.resumeToken, d.partialCreated = "", false
	case first && fromGuid == 0:
		d.versions = nil
		d.encOff = d.encOff || encOff
	case first:
		base := d.byGuid(fromGuid, pdu.Snapshot)
		d.versions = slices.DeleteFunc(d.versions, func(v *version) bool {
			return v.Type == pdu.Snapshot && v.CreateTXG > base.CreateTXG
		})
	}
	d.modified = false
	if d.byGuid(s.guid, pdu.Snapshot) != nil {
		return pdu.PermanentError(fmt.Errorf("receive %s: snapshot @%s already exists", fs, s.name))
	}
	z.txg++
	d.versions = append(d.versions, &version{FilesystemVersion: pdu.FilesystemVersion{
		Name: s.name, Type: pdu.Snapshot, Guid: s.guid, CreateTXG: z.txg, Creation: int64(z.txg),
	}, written: s.size})
	z.record("Receive %s@%s", fs, s.name)
	return nil
}

// broken handles a stream that ended early: with resumable receive the
// partial state stays on the destination, and the error is retryable.
func (e *Endpoint) broken(fs string, req *pdu.ReceiveReq, fromGuid uint64, origin string, raw bool, s *streamSnap, got int64, cause error) error {
	z := e.z
	z.mu.Lock()
	defer z.mu.Unlock()
	if s != nil && req.Resumable && z.Resumable {
		d := z.datasets[fs]
		if d == nil {
			d = &dataset{partialCreated: true, encRoot: raw, keyUnloaded: raw}
			if origin != "" {
				d.originFS, d.originGuid = origin, fromGuid
			}
			z.datasets[fs] = d
		}
		d.resumeToken = token{from: fromGuid, to: s.guid, offset: got, raw: raw}.String()
	}
	return pdu.RetryableError(fmt.Errorf("receive %s: stream ended early: %w", fs, cause))
}

// CreatePlaceholder implements replication.Receiver.
func (e *Endpoint) CreatePlaceholder(ctx context.Context, fs string) error {
	if !e.inside(fs) {
		return pdu.PermanentError(replication.NewFilteredError(fs))
	}
	if err := e.z.check(ctx, OpCreatePlaceholder, fs); err != nil {
		return err
	}
	z := e.z
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.datasets[fs] != nil {
		return pdu.PermanentError(fmt.Errorf("create placeholder %s: dataset already exists", fs))
	}
	if p := pdu.Parent(fs); p == "" || z.datasets[p] == nil {
		return pdu.PermanentError(fmt.Errorf("create placeholder %s: parent does not exist", fs))
	}
	// Below an encryption root whose key is not loaded, zfs creates only
	// an unencrypted dataset; the endpoints do so there.
	_, _, key := z.encryption(fs)
	z.datasets[fs] = &dataset{placeholder: true, encOff: key == pdu.KeyUnavailable}
	z.record("CreatePlaceholder %s", fs)
	return nil
}

// ClearPlaceholder implements replication.Receiver.
func (e *Endpoint) ClearPlaceholder(ctx context.Context, fs string, opts pdu.ReceiveOptions) error {
	if !e.inside(fs) {
		return pdu.PermanentError(replication.NewFilteredError(fs))
	}
	if err := e.z.check(ctx, OpClearPlaceholder, fs); err != nil {
		return err
	}
	z := e.z
	z.mu.Lock()
	defer z.mu.Unlock()
	d := z.datasets[fs]
	if d == nil {
		return pdu.PermanentError(fmt.Errorf("clear placeholder %s: dataset does not exist", fs))
	}
	d.placeholder = false
	for _, p := range opts.Set {
		if p.Name == "canmount" {
			z.record("ClearPlaceholder %s keeping canmount=%s", fs, p.Value)
			return nil
		}
	}
	z.record("ClearPlaceholder %s", fs)
	return nil
}

// Rollback implements replication.Receiver.
func (e *Endpoint) Rollback(ctx context.Context, fs string, to *pdu.FilesystemVersion) error {
	if !e.inside(fs) {
		return pdu.PermanentError(replication.NewFilteredError(fs))
	}
	if err := e.z.check(ctx, OpRollback, fs); err != nil {
		return err
	}
	z := e.z
	z.mu.Lock()
	defer z.mu.Unlock()
	d := z.datasets[fs]
	if d == nil {
		return pdu.PermanentError(fmt.Errorf("roll back %s: dataset does not exist", fs))
	}
	target := d.byGuid(to.Guid, pdu.Snapshot)
	if target == nil {
		return pdu.PermanentError(fmt.Errorf("roll back %s: no snapshot %s", fs, to.RelName()))
	}
	d.versions = slices.DeleteFunc(d.versions, func(v *version) bool {
		return v.Type == pdu.Snapshot && v.CreateTXG > target.CreateTXG
	})
	d.modified = false
	z.record("Rollback %s@%s", fs, target.Name)
	return nil
}

// AbortPartialReceive implements replication.Receiver.
func (e *Endpoint) AbortPartialReceive(ctx context.Context, fs string) error {
	if !e.inside(fs) {
		return pdu.PermanentError(replication.NewFilteredError(fs))
	}
	if err := e.z.check(ctx, OpAbortPartialReceive, fs); err != nil {
		return err
	}
	z := e.z
	z.mu.Lock()
	defer z.mu.Unlock()
	d := z.datasets[fs]
	if d == nil || d.resumeToken == "" {
		return pdu.PermanentError(fmt.Errorf("abort partial receive %s: no partial receive state", fs))
	}
	if d.partialCreated {
		delete(z.datasets, fs)
	} else {
		d.resumeToken = ""
	}
	z.record("AbortPartialReceive %s", fs)
	return nil
}

var (
	_ replication.Sender   = (*Endpoint)(nil)
	_ replication.Receiver = (*Endpoint)(nil)
)

// SetCursor implements replication.Sender: it bookmarks snap as
// fs#pdu.CursorName(id, snap.Guid) and destroys fs's other cursors of id,
// recording "Bookmark fs@snap fs#name" and "Destroy fs#name".
func (e *Endpoint) SetCursor(ctx context.Context, fs string, snap *pdu.FilesystemVersion, id string) error {
	if !e.inside(fs) {
		return pdu.PermanentError(replication.NewFilteredError(fs))
	}
	if err := e.z.check(ctx, OpSetCursor, fs); err != nil {
		return err
	}
	z := e.z
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.NoBookmarks {
		return nil
	}
	d := z.datasets[fs]
	if d == nil {
		return pdu.PermanentError(fmt.Errorf("dataset %s does not exist", fs))
	}
	name := pdu.CursorName(id, snap.Guid)
	if d.find(pdu.Bookmark, name) == nil {
		s := d.byGuid(snap.Guid, pdu.Snapshot)
		if s == nil {
			return pdu.PermanentError(fmt.Errorf("bookmark %s#%s: snapshot %s@%s does not exist", fs, name, fs, snap.Name))
		}
		b := &version{FilesystemVersion: s.FilesystemVersion}
		b.Type, b.Name = pdu.Bookmark, name
		d.versions = append(d.versions, b)
		z.record("Bookmark %s@%s %s#%s", fs, s.Name, fs, name)
	}
	d.versions = slices.DeleteFunc(d.versions, func(v *version) bool {
		stale := v.Type == pdu.Bookmark && v.Name != name && pdu.IsCursor(v.Name, id)
		if stale {
			z.record("Destroy %s#%s", fs, v.Name)
		}
		return stale
	})
	return nil
}
