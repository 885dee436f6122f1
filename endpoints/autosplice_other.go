//go:build !linux

package endpoints

import (
	"context"
	"errors"
	"os"
	"time"
)

const canSpliceStored = false

// spliceRawFrame is Linux's; elsewhere the auto encoder reads what it
// stores (spliceStored is false).
func spliceRawFrame(ctx context.Context, dst, src *os.File, n int64, add func(int64)) (int64, int64, time.Duration, bool, error) {
	return 0, 0, 0, false, errors.ErrUnsupported
}
