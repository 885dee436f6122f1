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
// a *lockedError, naming the holder's pid, if another run holds it.
func lockDestination(dir string, dst endpoints.Side) (*destinationLock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("lock directory: %w (choose another with --lock-dir)", err)
	}
	path := filepath.Join(dir, lockName(dst))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w (choose another directory with --lock-dir)", path, err)
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
