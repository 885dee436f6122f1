package replication_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/zrep/zrep/pdu"
	"github.com/zrep/zrep/replication"
	"github.com/zrep/zrep/replication/memzfs"
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

// lateFailingReceiver receives every stream and then reports err, as zfs-fuse's
// `zfs receive -F` of a full stream into an existing filesystem does ("I/O
// error" after the snapshot was written).
type lateFailingReceiver struct {
	replication.Receiver
	err      error
	receives int
}

func (r *lateFailingReceiver) Receive(ctx context.Context, req *pdu.ReceiveReq, stream io.Reader) error {
	r.receives++
	if err := r.Receiver.Receive(ctx, req, stream); err != nil {
		return err
	}
	return r.err
}

// TestDriveReceiveFailedAfterItsSnapshotArrived: a receive that reports a
// failure although its snapshot is on the destination with the source's
// guid completes the step, once, with the complaint kept as a warning.
func TestDriveReceiveFailedAfterItsSnapshotArrived(t *testing.T) {
	for _, class := range []pdu.Class{pdu.Permanent, pdu.Retryable} {
		t.Run(class.String(), func(t *testing.T) {
			w := newWorld(t)
			w.src.Snapshot("tank", "s1")
			w.src.Snapshot("tank", "s2")
			late := pdu.WithClass(errors.New("cannot receive new filesystem stream: I/O error"), class)
			recv := &lateFailingReceiver{Receiver: w.receiver(), err: late}
			r := replication.NewReplication(w.config())
			r.Drive(t.Context(), w.sender(), recv)
			rep := r.Report()
			f := allFilesystems(rep)["tank"]
			if rep.Status != replication.Completed.String() || f.Status != replication.FilesystemCompleted.String() {
				t.Fatalf("run %s, tank %+v", rep.Status, f)
			}
			if !strings.Contains(f.Problem, "warning") || !strings.Contains(f.Problem, "I/O error") || !strings.Contains(f.Problem, "s2") {
				t.Errorf("problem %q does not carry the warning", f.Problem)
			}
			if recv.receives != 1 || len(w.clock.Waits()) != 0 {
				t.Errorf("%d receives, waits %v: the arrived step was redone", recv.receives, w.clock.Waits())
			}
			if got := w.dst.Versions("backup/tank"); len(got) != 1 || got[0].Guid != w.src.Versions("tank")[1].Guid {
				t.Errorf("destination holds %v", got)
			}
		})
	}
}

// TestDriveReceiveFailedAndNothingArrived: the check does not turn a real
// failure into success.
func TestDriveReceiveFailedAndNothingArrived(t *testing.T) {
	w := newWorld(t)
	w.src.Snapshot("tank", "s1")
	w.dst.FailNext(memzfs.OpReceive, 1, pdu.PermanentError(errors.New("cannot receive: out of space")))
	rep := w.drive(t, w.config())
	if f := allFilesystems(rep)["tank"]; f.Status != replication.FilesystemPermanentError.String() || strings.Contains(f.Problem, "warning") {
		t.Fatalf("%+v", f)
	}
}

// TestDriveDiscardsPartialFullReceiveThatCannotBeResumed: an interrupted
// full receive into a new filesystem leaves that filesystem as partial
// state only; once its snapshot is gone from the source, the next run
// discards it and sends the newest snapshot in full, without --rollback.
func TestDriveDiscardsPartialFullReceiveThatCannotBeResumed(t *testing.T) {
	w := newWorld(t)
	w.src.Snapshot("tank", "s1")
	w.src.FailNext(memzfs.OpStream, 1, pdu.RetryableError(errors.New("killed")))
	cfg := w.config()
	cfg.Retries = 0
	if rep := w.drive(t, cfg); !rep.Failed() || w.dst.ResumeToken("backup/tank") == "" {
		t.Fatalf("setup: want a failed run leaving partial state: %+v", rep)
	}
	w.src.DestroySnapshot("tank", "s1")
	w.src.Snapshot("tank", "s2")

	p, err := replication.Plan(t.Context(), w.config(), w.sender(), w.receiver())
	if err != nil {
		t.Fatal(err)
	}
	if f := p.Filesystems[0]; f.Problem != "" || !strings.Contains(f.Resolution, "discarded") || len(f.Steps) != 1 || f.Steps[0].From != nil {
		t.Errorf("plan %+v", f)
	}
	rep := w.drive(t, w.config())
	if rep.Failed() {
		t.Fatalf("%+v", allFilesystems(rep)["tank"])
	}
	if w.dst.ResumeToken("backup/tank") != "" {
		t.Errorf("partial state left")
	}
	if got := w.dst.Versions("backup/tank"); len(got) != 1 || got[0].Guid != w.src.Versions("tank")[0].Guid {
		t.Errorf("destination holds %v", got)
	}
}
