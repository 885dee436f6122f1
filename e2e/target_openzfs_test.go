//go:build openzfs

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// setUpTarget makes the OpenZFS guest the tier's target, as the
// ZREP_OPENZFS_* variables describe it (openzfs/run.sh sets them):
//
//	ZREP_OPENZFS_SSH_HOST  127.0.0.1
//	ZREP_OPENZFS_SSH_PORT  the port forwarded to the guest's sshd
//	ZREP_OPENZFS_SSH_USER  root
//	ZREP_OPENZFS_SSH_KEY   the private key root logs in with
//	ZREP_OPENZFS_DISKS     the guest's empty data disks; the first holds
//	                       the pool image files
func setUpTarget(dir string) (target *machine, cleanup func(), reason string) {
	// The guest has mbuffer, and under emulation each `mbuffer -V` and
	// each buffered stream costs it time. What the buffer does to a stream
	// that is cut, killed or stalled depends on the platform, and those
	// tests ask for it (--buffer 16M); the rest run without it here, as
	// every test runs with it on the zfs-fuse tier.
	os.Setenv("ZREP_BUFFER", "0")
	g := &machine{
		name:     "OpenZFS guest",
		platform: "openzfs",
		poolDir:  "/zrep-pools",
		sshHost:  os.Getenv("ZREP_OPENZFS_SSH_HOST"),
		sshPort:  os.Getenv("ZREP_OPENZFS_SSH_PORT"),
		sshUser:  os.Getenv("ZREP_OPENZFS_SSH_USER"),
		sshKey:   os.Getenv("ZREP_OPENZFS_SSH_KEY"),
		sshOptions: []string{"StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null",
			"LogLevel=ERROR"},
	}
	disks := strings.Fields(os.Getenv("ZREP_OPENZFS_DISKS"))
	if g.sshHost == "" || g.sshPort == "" || g.sshKey == "" {
		return nil, nil, "no OpenZFS guest: ZREP_OPENZFS_SSH_HOST, ZREP_OPENZFS_SSH_PORT and " +
			"ZREP_OPENZFS_SSH_KEY are not set (run make test-openzfs)"
	}
	if g.sshUser == "" {
		g.sshUser = "root"
	}
	if len(disks) == 0 {
		disks = []string{"/dev/vdb"}
	}
	// One shared connection keeps each harness command to a fraction of a
	// second; it outlives idle spells so that counting the guest's logins
	// does not log in.
	g.harnessSSH = []string{
		"-p", g.sshPort, "-i", g.sshKey,
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "ConnectTimeout=10",
		"-o", "ControlMaster=auto", "-o", "ControlPersist=yes",
		"-o", "ControlPath=" + filepath.Join(dir, "cm-%C"),
		g.sshUser + "@" + g.sshHost,
	}
	cleanup = func() {
		exec.Command("ssh", append([]string{"-O", "exit"}, g.harnessSSH...)...).Run()
	}
	g.sshLogins = func(t *testing.T) int {
		t.Helper()
		out := g.script(t, `journalctl -u ssh -o cat --no-pager | grep -c 'Accepted publickey' || true`)
		n, err := strconv.Atoi(strings.TrimSpace(out))
		if err != nil {
			t.Fatalf("counting the guest's ssh logins: %q", out)
		}
		return n
	}
	if out, err := g.run(context.Background(), nil, "zfs", "version"); err != nil {
		cleanup()
		return nil, nil, fmt.Sprintf("the guest does not answer over ssh on %s:%s: %v\n%s",
			g.sshHost, g.sshPort, err, out)
	}
	// Pool images live on an ext4 file system on the first data disk.
	out, err := g.run(context.Background(), nil, "sh", "-c", `
mountpoint -q "$1" && exit
mkfs.ext4 -q -F "$2" && mkdir -p "$1" && mount "$2" "$1"`, "pools", g.poolDir, disks[0])
	if err != nil {
		cleanup()
		return nil, nil, fmt.Sprintf("preparing %s on the guest's %s: %v\n%s", g.poolDir, disks[0], err, out)
	}
	return g, cleanup, ""
}
