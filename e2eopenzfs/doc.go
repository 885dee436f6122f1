// Package e2eopenzfs holds zrep's end-to-end tests against a real OpenZFS
// 2.3 kernel module: a Debian guest booted under qemu by openzfs/run.sh
// (make test-openzfs). The built zrep binary runs on the host with both
// sides on the guest over ssh, and the results are checked by running zfs on
// the guest.
//
// The tests learn how to reach the guest from the environment:
//
//	ZREP_OPENZFS_SSH_HOST  127.0.0.1
//	ZREP_OPENZFS_SSH_PORT  the port forwarded to the guest's sshd
//	ZREP_OPENZFS_SSH_USER  root
//	ZREP_OPENZFS_SSH_KEY   the private key root logs in with
//	ZREP_OPENZFS_DISKS     the guest's empty data disks (default "/dev/vdb /dev/vdc")
//
// The tests are built only with the build tag openzfs (go test -tags
// openzfs), so go test ./... on a machine without the guest leaves them out.
// Built, but without the variables, they skip, saying why; with CI=true they
// fail instead.
// Two pools with unique names are created on the data disks at the start and
// destroyed at the end; every test works in its own datasets inside them.
//
// scenarios_test.go covers what zrep does on every platform; modern_test.go
// covers what needs a modern OpenZFS: size estimates, resumable receives,
// bookmarks as a replication cursor and raw sends of encrypted datasets.
package e2eopenzfs
