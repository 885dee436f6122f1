// Package e2e holds zrep's end-to-end tests: the built zrep binary against
// real ZFS (the zfs-fuse lab) on both sides, locally and over ssh to a
// private sshd on 127.0.0.1. See lab/lab.sh.
//
// They need root. Without it, or without FUSE, they skip with the reason;
// with CI=true they fail instead.
package e2e
