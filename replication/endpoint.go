package replication

import (
	"context"
	"io"

	"github.com/zrep/zrep/pdu"
)

// Endpoint is one side of a replication. The engine never learns whether a
// side is local or remote.
//
// Errors carry a pdu.Class (pdu.ClassOf): retryable errors put the filesystem
// (or planning) into retry wait, everything else is permanent.
type Endpoint interface {
	// ListFilesystems lists the endpoint's root dataset and, when the
	// endpoint is recursive, all its descendants, each with its snapshots
	// and bookmarks, with one listing per call. Parents come before their
	// children.
	//
	// A receiver whose root does not exist yet returns an empty list if the
	// root's parent exists, and a permanent error naming the parent if not.
	// A sender whose root does not exist returns a permanent error.
	ListFilesystems(ctx context.Context) ([]*pdu.Filesystem, error)
	// ListFilesystemVersions lists the snapshots and bookmarks of one
	// filesystem. A filesystem outside the endpoint's root is refused with
	// a permanent error, as by every other request (memzfs: a
	// *FilteredError).
	ListFilesystemVersions(ctx context.Context, fs string) ([]*pdu.FilesystemVersion, error)
	// DestroySnapshots destroys the given snapshots of one filesystem and
	// reports each outcome; the error is for the request as a whole.
	DestroySnapshots(ctx context.Context, req *pdu.DestroySnapshotsReq) (*pdu.DestroySnapshotsRes, error)
}

// Sender is the source side.
type Sender interface {
	Endpoint
	// Send starts `zfs send` and returns its output. The stream's Close
	// waits for (or ends) the sending process and returns its error.
	Send(ctx context.Context, req *pdu.SendReq) (pdu.Stream, error)
	// EstimateSize estimates the stream size of req; Known is false where the
	// platform cannot estimate. An error is a real failure, not the lack
	// of an estimate.
	EstimateSize(ctx context.Context, req *pdu.SendReq) (pdu.SizeEstimate, error)
	// ResumeTarget tells which source snapshot a destination's resume token
	// continues. It returns a permanent error if the token cannot be resumed
	// from this sender (its snapshot or base is gone, or the platform has no
	// resumable send).
	ResumeTarget(ctx context.Context, fs, token string) (from, to *pdu.FilesystemVersion, err error)
	// SetCursor makes snapshot snap of fs the replication cursor of the
	// destination identified by id: it creates the bookmark
	// fs#pdu.CursorName(id, snap.Guid) unless it exists, then destroys
	// fs's other cursor bookmarks of id (pdu.IsCursor), and nothing else.
	// On a platform without bookmarks it does nothing and returns nil.
	// The engine only logs its errors: a missing cursor costs an
	// incremental base later, never a replication.
	SetCursor(ctx context.Context, fs string, snap *pdu.FilesystemVersion, id string) error
}

// Receiver is the destination side.
type Receiver interface {
	Endpoint
	// Receive runs `zfs receive -u` for req, reading the stream until EOF.
	// If the stream ends early the returned error is retryable; a refusal by
	// zfs (modified destination, no space, wrong base) is permanent.
	Receive(ctx context.Context, req *pdu.ReceiveReq, stream io.Reader) error
	// CreatePlaceholder creates fs as a placeholder: not mountable,
	// `zrep:placeholder=on` set locally. Its parent must exist.
	CreatePlaceholder(ctx context.Context, fs string) error
	// ClearPlaceholder marks a former placeholder, now holding received
	// data, as a normal filesystem again; opts are the run's receive
	// options, whose canmount, if they set one, stays.
	ClearPlaceholder(ctx context.Context, fs string, opts pdu.ReceiveOptions) error
	// Rollback rolls fs back to snapshot to, destroying later snapshots.
	Rollback(ctx context.Context, fs string, to *pdu.FilesystemVersion) error
	// AbortPartialReceive discards fs's partial receive state (`zfs receive -A`).
	AbortPartialReceive(ctx context.Context, fs string) error
}

// FilteredError says an endpoint does not give access to a filesystem.
type FilteredError struct{ FS string }

// NewFilteredError returns a FilteredError for fs.
func NewFilteredError(fs string) *FilteredError { return &FilteredError{FS: fs} }

func (f *FilteredError) Error() string {
	return "endpoint does not allow access to filesystem " + f.FS
}
