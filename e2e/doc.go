// Package e2e holds zrep's end-to-end tests: the built zrep binary against
// real ZFS, locally and over ssh. One suite serves two tiers; the build tag
// picks where the tier's zfs runs (the target):
//
//   - without tags (make test): the zfs-fuse lab on this host (lab/lab.sh),
//     with a private sshd on 127.0.0.1; sides are local or over ssh to it.
//   - with -tags openzfs (make test-openzfs): an OpenZFS 2.3 guest under
//     qemu (openzfs/run.sh), reached over ssh as the ZREP_OPENZFS_*
//     variables say; the scenarios replicate between the guest's pools, and
//     push and pull cross between the zfs-fuse lab on this host and the
//     guest. modern_test.go adds what only a modern OpenZFS offers.
//
// sidetest_test.go is the exception to "the binary": it holds zrep's real
// sides (package endpoints), local and over ssh, to the side contract of
// replication/sidetest, the contract replication/memzfs is held to in
// plain go test.
//
// Every test makes throw-away file-backed pools on the machine it needs
// and destroys them when it ends. The harness runs each zfs and shell
// command on the machine that holds the dataset; zrep always runs here.
//
// They need root. Without it, without FUSE, or without the guest's
// variables, they skip with the reason; with CI=true they fail instead.
package e2e
