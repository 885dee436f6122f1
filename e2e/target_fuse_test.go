//go:build !openzfs

package e2e

// setUpTarget makes the zfs-fuse lab on this host the tier's target.
func setUpTarget(dir string) (target *machine, cleanup func(), reason string) {
	if lab.host == nil {
		return nil, nil, lab.hostReason
	}
	return lab.host, func() {}, ""
}
