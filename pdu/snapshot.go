package pdu

import "errors"

// SnapshotReq asks a side to take one snapshot set: Name on every
// filesystem of Filesystems, at once where the platform allows.
type SnapshotReq struct {
	// Filesystems are the filesystems and volumes to snapshot, parents
	// before children.
	Filesystems []string
	// Recursive says Filesystems are the first one and all its
	// descendants, so that `zfs snapshot -r` takes exactly them.
	Recursive bool
	// Name is the snapshot name, the part after '@'.
	Name string
}

// SnapshotRes says how a snapshot set was taken.
type SnapshotRes struct {
	// Atomic is true when one command took the whole set, so that every
	// snapshot of it shows the same instant.
	Atomic bool
}

// ErrSnapshotExists is in the chain of a TakeSnapshots error when the
// set's name is taken already on a filesystem of the set and the side took
// nothing of the set.
var ErrSnapshotExists = errors.New("snapshot name already taken")
