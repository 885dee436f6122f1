package replication_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/zrep/zrep/pdu"
	"github.com/zrep/zrep/replication"
)

// refusingSender's streams end at once, and their Close returns err, as a
// `zfs send` does that refuses to start.
type refusingSender struct {
	replication.Sender
	err   error
	sends int
}

func (s *refusingSender) Send(ctx context.Context, req *pdu.SendReq) (pdu.Stream, error) {
	s.sends++
	return refusedStream{s.err}, nil
}

type refusedStream struct{ err error }

func (r refusedStream) Read([]byte) (int, error) { return 0, io.EOF }
func (r refusedStream) Close() error             { return r.err }

// TestDriveSendRefusedBeforeAnyByteIsPermanent: when zfs send refuses
// (here: an encrypted dataset without --raw), the receiver's complaint
// about the empty stream does not make the step retryable.
func TestDriveSendRefusedBeforeAnyByteIsPermanent(t *testing.T) {
	w := newWorld(t)
	w.src.Snapshot("tank", "s1")
	refusal := pdu.PermanentError(errors.New("zfs send tank@s1: source key must be loaded (use --raw to send it encrypted)"))
	s := &refusingSender{Sender: w.sender(), err: refusal}
	r := replication.NewReplication(w.config())
	r.Drive(t.Context(), s, w.receiver())
	f := allFilesystems(r.Report())["tank"]
	if f.Status != replication.FilesystemPermanentError.String() || !strings.Contains(f.Problem, "use --raw") {
		t.Fatalf("tank: %+v", f)
	}
	if s.sends != 1 || len(w.clock.Waits()) != 0 {
		t.Errorf("a refused send was retried: %d sends, waits %v", s.sends, w.clock.Waits())
	}
}
