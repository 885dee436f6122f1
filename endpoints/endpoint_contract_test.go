package endpoints_test

import (
	"github.com/zrep/zrep/endpoints"
	"github.com/zrep/zrep/replication"
)

// The engine's contract, checked here as well as in main.go, so that a
// change to either side fails this package's build first.
var (
	_ replication.Sender   = (*endpoints.Endpoint)(nil)
	_ replication.Receiver = (*endpoints.Endpoint)(nil)
)

// Snapshot sets and holds, for zrep snapshot, run --snapshot and --hold.
var (
	_ replication.SnapshotTaker = (*endpoints.Endpoint)(nil)
	_ replication.Holder        = (*endpoints.Endpoint)(nil)
)
