package main

import (
	"os"
	"runtime/debug"
)

// gcPercent is the garbage collector's target that zrep runs with (Go's
// default is 100). zrep's heap is mostly the two listings, which stay live
// from planning to the end of the run and hold little garbage: at 100 the
// collector marks them again every time they double while they are read,
// about a tenth of the CPU of planning 10,000 filesystems of 100 snapshots;
// at 300 it marks them less often, and the peak stays the same because
// there is so little garbage to let pile up (docs/performance.md).
const gcPercent = 300

// tuneGC sets gcPercent, unless the GOGC environment variable chose a
// setting.
func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
}
