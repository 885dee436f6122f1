// Package pdu holds the plain data types that cross the boundary between the
// replication engine and the endpoints that drive `zfs`.
//
// Nothing here runs a command or touches the network: these are values only,
// so both sides can be tested without ZFS.
package pdu

import (
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"
)

// VersionType tells a snapshot from a bookmark.
type VersionType uint8

const (
	// Snapshot is a read-only image of a filesystem: `fs@name`.
	Snapshot VersionType = iota
	// Bookmark marks a snapshot's position without its data: `fs#name`.
	// It can be the base of an incremental send, never its target.
	Bookmark
)

func (t VersionType) String() string {
	switch t {
	case Snapshot:
		return "snapshot"
	case Bookmark:
		return "bookmark"
	}
	return fmt.Sprintf("VersionType(%d)", int(t))
}

// Delimiter is the character between a dataset and a version name of this type.
func (t VersionType) Delimiter() string {
	if t == Bookmark {
		return "#"
	}
	return "@"
}

// FilesystemVersion is one snapshot or bookmark of a filesystem.
//
// A listing holds millions of these (10,000 filesystems of 100 snapshots on
// each side), so the record is kept small: 48 bytes, one pointer.
type FilesystemVersion struct {
	// Name is the part after `@` or `#`.
	Name string
	// Guid identifies the version across pools: a received snapshot keeps
	// the guid of the snapshot it was sent from.
	Guid uint64
	// CreateTXG orders the versions of one filesystem in creation order.
	CreateTXG uint64
	// Creation is when the version was made, in seconds since 1970; 0
	// where it was not listed. CreatedAt gives it as a time.
	Creation int64
	// UserRefs counts the user holds on a snapshot (`userrefs`); a held
	// snapshot cannot be destroyed. Zero for bookmarks and where unlisted.
	UserRefs uint32
	Type     VersionType
}

// CreatedAt is Creation as a time, the zero time where it is unknown.
func (v *FilesystemVersion) CreatedAt() time.Time {
	if v.Creation == 0 {
		return time.Time{}
	}
	return time.Unix(v.Creation, 0)
}

// RelName is the version's name relative to its filesystem: `@snap` or `#bookmark`.
func (v *FilesystemVersion) RelName() string {
	return v.Type.Delimiter() + v.Name
}

// FullPath is the version's full ZFS name on filesystem fs.
func (v *FilesystemVersion) FullPath(fs string) string {
	return fs + v.RelName()
}

// ReportName is how plans and reports write the version: a snapshot by its
// bare name, a bookmark as `#name`.
func (v *FilesystemVersion) ReportName() string {
	if v.Type == Bookmark {
		return "#" + v.Name
	}
	return v.Name
}

func (v *FilesystemVersion) String() string { return v.RelName() }

// Filesystem is a filesystem or volume on one side, with its versions.
type Filesystem struct {
	// Path is the full dataset name, e.g. `tank/data/home`.
	Path string
	// Volume is true for a zvol.
	Volume bool
	// Placeholder is true when zrep created the dataset only to hold
	// children (`zrep:placeholder=on` set locally).
	Placeholder bool
	// SyncOff is true when the filesystem's effective `zrep:sync` is
	// `off`: set so on the filesystem (locally or received) or inherited
	// from an ancestor, also one above the listed root, with no nearer
	// dataset setting it to anything else. Such a source filesystem is to
	// be left out of replication (SPEC 15); the value is read so that no
	// other property's value can forge it.
	SyncOff bool
	// ResumeToken is the dataset's `receive_resume_token`: partial state left
	// by an interrupted resumable receive. Empty when there is none or the
	// platform has no resumable receive.
	ResumeToken string
	// Origin is the snapshot a clone was made from, by its full name
	// (`tank/template@base`); empty when the filesystem is no clone.
	Origin string
	// Encryption is the `encryption` property: the cipher of an encrypted
	// filesystem (`aes-256-gcm`), `off` for one that is not, and "" where
	// the platform has no native encryption (zfs-fuse), which counts as
	// not encrypted.
	Encryption string
	// EncryptionRoot is the dataset whose key encrypts the filesystem
	// (`encryptionroot`); "" when it is not encrypted.
	EncryptionRoot string
	// KeyStatus is `available` or `unavailable` (`keystatus`) for an
	// encrypted filesystem, "" otherwise.
	KeyStatus string
	// Versions are the filesystem's snapshots and bookmarks, in no
	// particular order.
	Versions []*FilesystemVersion
}

// Encrypted reports whether the filesystem is natively encrypted.
func (fs *Filesystem) Encrypted() bool {
	return fs.Encryption != "" && fs.Encryption != "off"
}

// Key statuses of an encrypted filesystem (`keystatus`).
const (
	KeyAvailable   = "available"
	KeyUnavailable = "unavailable"
)

// SplitOrigin splits a clone's origin, a full snapshot name, into its
// filesystem and the snapshot's name; ok is false for anything else.
func SplitOrigin(origin string) (fs, snapshot string, ok bool) {
	fs, snapshot, ok = strings.Cut(origin, "@")
	if !ok || fs == "" || snapshot == "" || strings.Contains(snapshot, "@") {
		return "", "", false
	}
	return fs, snapshot, true
}

// Parent is the dataset name of fs's parent, or "" for a pool.
func Parent(fs string) string {
	i := strings.LastIndexByte(fs, '/')
	if i < 0 {
		return ""
	}
	return fs[:i]
}

// CompareDatasets orders dataset names component by component, so that a
// parent sorts right before its children ("a/b" < "a/b/c" < "a/b c"), never
// after a sibling that merely shares a prefix. It splits nothing: sorting n
// filesystems calls it O(n log n) times.
func CompareDatasets(a, b string) int {
	for {
		ca, ra, moreA := strings.Cut(a, "/")
		cb, rb, moreB := strings.Cut(b, "/")
		if c := strings.Compare(ca, cb); c != 0 {
			return c
		}
		switch {
		case !moreA && !moreB:
			return 0
		case !moreA:
			return -1
		case !moreB:
			return 1
		}
		a, b = ra, rb
	}
}

// DestroySnapshotsReq asks an endpoint to destroy snapshots of one filesystem.
type DestroySnapshotsReq struct {
	Filesystem string
	Snapshots  []*FilesystemVersion
}

// DestroySnapshotsRes says what happened to each snapshot of a DestroySnapshotsReq.
type DestroySnapshotsRes struct {
	Results []*DestroySnapshotRes
}

// DestroySnapshotRes is the outcome for one snapshot; Error is empty on success.
type DestroySnapshotRes struct {
	Snapshot *FilesystemVersion
	Error    string
	// Gone says the snapshot was not there any more (another run from
	// the same source pruned it first): nothing was destroyed, and that
	// is no failure.
	Gone bool
}

// SendReq describes a `zfs send`.
type SendReq struct {
	// Filesystem is the source dataset.
	Filesystem string
	// From is the incremental base (snapshot or bookmark); nil for a full send.
	From *FilesystemVersion
	// FromFilesystem is the filesystem of From when it is not Filesystem:
	// the origin snapshot of a clone, sent from with `zfs send -i ORIGIN`
	// so that the destination receives the clone as a clone of it. Empty
	// otherwise.
	FromFilesystem string
	// To is the snapshot sent.
	To *FilesystemVersion
	// Intermediates asks for every snapshot between From and To as well
	// (`zfs send -I`) instead of To alone (`-i`).
	Intermediates bool
	// ResumeToken, when set, resumes an interrupted transfer (`zfs send -t`);
	// From, To and Intermediates then only describe it, and Options are
	// not given again: the token carries the stream's flags.
	ResumeToken string
	// Options are the operator's stream flags.
	Options SendOptions
	// Wire, when set, counts the bytes the sender moves over a link
	// (compressed, if they are); see WireCount.
	Wire *WireCount
}

// SendOptions are the `zfs send` flags the operator chose; they apply to
// every send of a run.
type SendOptions struct {
	// Raw sends an encrypted dataset as it is on disk, still encrypted,
	// and needs no key (`zfs send -w`). Planning decides it per
	// filesystem (an encrypted source is sent raw unless the operator
	// asks to decrypt); its value in replication.Config.Send is ignored.
	Raw bool
	// Compressed sends compressed blocks without decompressing them (`-c`).
	Compressed bool
	// LargeBlocks keeps blocks larger than 128 KiB as they are (`-L`).
	LargeBlocks bool
	// Props includes the dataset's properties in the stream (`-p`).
	Props bool
}

// ReceiveReq describes a `zfs receive`.
type ReceiveReq struct {
	// Filesystem is the destination dataset.
	Filesystem string
	// OverwritePlaceholder allows a full stream to replace a placeholder
	// (`zfs receive -F`), the only overwrite done without Rollback.
	OverwritePlaceholder bool
	// Rollback allows the receive to roll the destination back to the
	// stream's base, discarding later changes (`zfs receive -F`).
	Rollback bool
	// Resumable keeps partial state if the stream breaks (`zfs receive -s`),
	// where the platform supports it.
	Resumable bool
	// Options are the operator's property overrides.
	Options ReceiveOptions
	// Wire, when set, counts the bytes the receiver moves over a link
	// (compressed, if they are); see WireCount.
	Wire *WireCount
}

// ReceiveOptions are the `zfs receive` property flags the operator chose;
// they apply to every receive of a run.
type ReceiveOptions struct {
	// Set sets properties on the received dataset (`-o name=value`).
	Set []Property
	// Exclude keeps the stream's value of these properties from being
	// received, as if they were not in it (`-x name`).
	Exclude []string
}

// Property is a ZFS property and its value.
type Property struct {
	Name, Value string
}

// String is the property as `zfs set` and `zfs receive -o` write it.
func (p Property) String() string { return p.Name + "=" + p.Value }

// cursorPrefix starts the name of every replication cursor bookmark.
const cursorPrefix = "zrep_"

// CursorName is the name of the bookmark that marks the snapshot with guid
// as the newest one replicated to the destination identified by id:
// `zrep_<id>_<guid in hex>`. The guid makes the name unique, so a new
// cursor can be created before the old one is destroyed.
func CursorName(id string, guid uint64) string {
	return fmt.Sprintf("%s%s_%016x", cursorPrefix, id, guid)
}

// IsCursor reports whether a bookmark name is a replication cursor of the
// destination identified by id.
func IsCursor(name, id string) bool {
	rest, ok := strings.CutPrefix(name, cursorPrefix+id+"_")
	if !ok || len(rest) != 16 {
		return false
	}
	for _, r := range rest {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// Stream is the output of a running `zfs send`. Close ends the sending
// process if it still runs and returns its error, classified like every
// other endpoint error.
type Stream interface {
	io.ReadCloser
}

// SizeEstimate is the expected size of a send. Known is false when the
// platform cannot estimate.
type SizeEstimate struct {
	Bytes int64
	Known bool
}

// WireCount counts the bytes of one transfer that crossed a link, after
// compression. An endpoint that compresses a stream for the link counts
// into it; one that moves the stream as it is need not, since then the
// wire carries exactly the stream's bytes. Safe for concurrent use; a nil
// WireCount counts nothing.
type WireCount struct {
	n       atomic.Int64
	counted atomic.Bool
}

// Add counts n bytes (0 marks the count as kept without adding).
func (w *WireCount) Add(n int64) {
	if w == nil {
		return
	}
	w.counted.Store(true)
	w.n.Add(n)
}

// Load returns the bytes counted, and whether anyone counted at all.
func (w *WireCount) Load() (n int64, counted bool) {
	if w == nil {
		return 0, false
	}
	return w.n.Load(), w.counted.Load()
}
