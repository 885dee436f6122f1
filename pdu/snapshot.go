package pdu

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
