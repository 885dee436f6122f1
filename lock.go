package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/zrep/zrep/endpoints"
)

// destinationLock is a kernel file lock (flock) on one destination: a lock
// left by a killed run is released by the kernel and never blocks.
type destinationLock struct {
	f *os.File
}

// lockDestination takes the lock for dst in dir without waiting. It returns
// a *lockedError, naming the holder's pid, if another run holds it, and a
// usage error if dir is not safe to keep locks in (checkLockDir).
//
// zrep runs as root in a directory that may have been made by someone else
// (after a reboot /run/lock/zrep does not exist yet, and /run/lock is
// world-writable), so the lock file is never reached through a symbolic
// link, is created 0600, and must be a regular file of zrep's own user.
func lockDestination(dir string, dst endpoints.Side) (*destinationLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock directory: %w (choose another with --lock-dir)", err)
	}
	if err := checkLockDir(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, lockName(dst))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, usageErrorf("lock %s is a symbolic link, which zrep never follows: remove it, or choose another directory with --lock-dir", path)
		}
		return nil, fmt.Errorf("lock %s: %w (choose another directory with --lock-dir)", path, err)
	}
	if err := checkLockFile(f, path); err != nil {
		f.Close()
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			buf := make([]byte, 32)
			n, _ := f.ReadAt(buf, 0)
			return nil, &lockedError{path: path, pid: strings.TrimSpace(string(buf[:n]))}
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// The pid is for the operator and for the message of a second run; the
	// lock itself is the flock.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &destinationLock{f: f}, nil
}

// checkLockDir refuses a lock directory that someone else could plant
// files in: one that is a symbolic link, owned by another user, or
// writable by its group or by others (sticky or not). Each is a usage
// error: the operator fixes the directory or chooses another.
func checkLockDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("lock directory: %w (choose another with --lock-dir)", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case fi.Mode()&os.ModeSymlink != 0:
		return usageErrorf("lock directory %s is a symbolic link, which zrep does not follow: give the directory itself with --lock-dir", dir)
	case !fi.IsDir():
		return usageErrorf("lock directory %s is not a directory: remove it, or choose another with --lock-dir", dir)
	case !ok:
		return fmt.Errorf("lock directory %s: cannot read its owner", dir)
	case int(st.Uid) != os.Geteuid():
		return usageErrorf("lock directory %s is owned by uid %d, not by uid %d that zrep runs as: anyone who owns it can plant files there; "+
			"remove it (zrep creates it 0700), or choose another with --lock-dir", dir, st.Uid, os.Geteuid())
	case fi.Mode().Perm()&0o022 != 0:
		return usageErrorf("lock directory %s is writable by its group or by others (mode %04o): others could plant files there; "+
			"make it 0700 (chmod 700 %s), or choose another with --lock-dir", dir, fi.Mode().Perm(), dir)
	}
	return nil
}

// checkLockFile checks that the opened lock file is a regular file of
// zrep's user with no other name, and no one else may open it: a file
// left readable by an older zrep (0644) is made 0600, since a read-only
// descriptor is enough to hold a flock.
func checkLockFile(f *os.File, path string) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("lock %s: %w", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.Mode().IsRegular():
		return usageErrorf("lock %s is not a regular file: remove it, or choose another directory with --lock-dir", path)
	case !ok:
		return fmt.Errorf("lock %s: cannot read its owner", path)
	case int(st.Uid) != os.Geteuid():
		return usageErrorf("lock %s is owned by uid %d, not by uid %d that zrep runs as: remove it, or choose another directory with --lock-dir", path, st.Uid, os.Geteuid())
	case st.Nlink != 1:
		return usageErrorf("lock %s has %d names (hard links): remove it, or choose another directory with --lock-dir", path, st.Nlink)
	}
	if fi.Mode().Perm() != 0o600 {
		if err := f.Chmod(0o600); err != nil {
			return fmt.Errorf("lock %s: %w", path, err)
		}
	}
	return nil
}

// lockFailure is the error of a run that could not take its lock: the
// exit status of a lock held by another run (4), of a lock directory the
// operator must fix (2), or of a failure to use it (1).
func lockFailure(err error) error {
	var (
		le *lockedError
		ue *usageError
	)
	if errors.As(err, &le) || errors.As(err, &ue) {
		return err
	}
	return &exitError{code: exitFailed, err: err}
}

// Release gives the lock up. The file stays: removing it would let a
// waiting run and a new one lock different files.
func (l *destinationLock) Release() {
	_ = l.f.Truncate(0)
	_ = l.f.Close()
}

// lockName turns a destination into a file name: every byte outside a
// conservative set is escaped, so distinct destinations get distinct names.
func lockName(dst endpoints.Side) string {
	s := dst.Host + ":" + dst.Dataset
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '.', c == ':':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "_%02x", c)
		}
	}
	name := b.String()
	if len(name) > 200 {
		sum := sha256.Sum256([]byte(s))
		name = name[:150] + "-" + hex.EncodeToString(sum[:8])
	}
	return name + ".lock"
}
