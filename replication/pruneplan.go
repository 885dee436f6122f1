package replication

import (
	"context"
	"slices"
	"sync"

	"github.com/zrep/zrep/pdu"
)

// Pruning in a plan: what pruning would destroy once a run's steps are
// done, decided by DecidePrune (prunedecide.go) on the listings as the run
// would leave them, changing nothing.

// plannedSnapshotGuid marks the snapshots of a set that is planned, not
// taken: guids no real snapshot has in practice.
const plannedSnapshotGuid = ^uint64(0) - 1<<20

// PlanWithRetention is Plan for a run that first takes the snapshot set
// snap (nil: none) and prunes per opts afterwards: the steps include the
// new snapshot, and each filesystem says what pruning would destroy once
// its steps are done. Like Plan it changes nothing on either side, and it
// lists each side once.
func PlanWithRetention(ctx context.Context, cfg Config, sender Sender, receiver Receiver, snap *SnapshotSet, opts PruneOptions) (*PlanReport, error) {
	s := &plannedSender{Sender: sender, set: snap}
	r := &listedReceiver{Receiver: receiver}
	rep, err := Plan(ctx, cfg, s, r)
	if err != nil {
		return nil, err
	}
	if snap != nil {
		rep.Snapshot = &snap.Name
	}
	if !opts.Retention.Enabled() {
		return rep, nil
	}
	src, dst := byPath(s.last()), byPath(r.last())
	for _, fp := range rep.Filesystems {
		in := PruneInput{Source: src[fp.Filesystem], Failed: fp.Problem != "", Snapshots: cfg.Snapshots}
		in.Dest = afterSteps(in.Source, dst[fp.Destination], fp.Steps)
		d := DecidePrune(opts.Retention, in)
		fp.Pruned = PrunedSnapshots{Source: versionNames(d.Source), Destination: versionNames(d.Dest)}
		fp.Held = PrunedSnapshots{Source: versionNames(d.HeldSource), Destination: versionNames(d.HeldDest)}
	}
	return rep, nil
}

// afterSteps is the destination dst as it will be once steps, sent from
// src, have arrived.
func afterSteps(src, dst *pdu.Filesystem, steps []PlanStep) *pdu.Filesystem {
	if len(steps) == 0 || src == nil {
		return dst
	}
	out := &pdu.Filesystem{}
	if dst != nil {
		c := *dst
		out = &c
		out.Versions = slices.Clone(dst.Versions)
	}
	if steps[0].From == nil {
		out.Placeholder = false
	}
	txg := uint64(0)
	for _, v := range out.Versions {
		txg = max(txg, v.CreateTXG)
	}
	for _, st := range steps {
		for _, v := range src.Versions {
			if v.Type == pdu.Snapshot && v.Name == st.To {
				txg++
				nv := *v
				nv.CreateTXG, nv.UserRefs = txg, 0
				out.Versions = append(out.Versions, &nv)
			}
		}
	}
	return out
}

func byPath(fss []*pdu.Filesystem) map[string]*pdu.Filesystem {
	m := make(map[string]*pdu.Filesystem, len(fss))
	for _, fs := range fss {
		m[fs.Path] = fs
	}
	return m
}

// plannedSender lists its filesystems with the planned snapshot set added
// and remembers the listing.
type plannedSender struct {
	Sender
	set *SnapshotSet

	mu      sync.Mutex
	listing []*pdu.Filesystem
}

func (s *plannedSender) ListFilesystems(ctx context.Context) ([]*pdu.Filesystem, error) {
	fss, err := s.Sender.ListFilesystems(ctx)
	if err != nil {
		return nil, err
	}
	if s.set != nil {
		in := map[string]bool{}
		for _, p := range s.set.Filesystems {
			in[p] = true
		}
		for i, fs := range fss {
			if !in[fs.Path] {
				continue
			}
			txg := uint64(0)
			for _, v := range fs.Versions {
				txg = max(txg, v.CreateTXG)
			}
			fs.Versions = append(slices.Clone(fs.Versions), &pdu.FilesystemVersion{
				Name: s.set.Name, Type: pdu.Snapshot, Guid: plannedSnapshotGuid + uint64(i), CreateTXG: txg + 1,
			})
		}
	}
	s.mu.Lock()
	s.listing = fss
	s.mu.Unlock()
	return fss, nil
}

// EstimateSize cannot estimate a stream to a snapshot not taken yet.
func (s *plannedSender) EstimateSize(ctx context.Context, req *pdu.SendReq) (pdu.SizeEstimate, error) {
	if req.To != nil && req.To.Guid >= plannedSnapshotGuid {
		return pdu.SizeEstimate{}, nil
	}
	return s.Sender.EstimateSize(ctx, req)
}

func (s *plannedSender) last() []*pdu.Filesystem {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listing
}

// listedReceiver remembers its last listing.
type listedReceiver struct {
	Receiver

	mu      sync.Mutex
	listing []*pdu.Filesystem
}

func (r *listedReceiver) ListFilesystems(ctx context.Context) ([]*pdu.Filesystem, error) {
	fss, err := r.Receiver.ListFilesystems(ctx)
	if err == nil {
		r.mu.Lock()
		r.listing = fss
		r.mu.Unlock()
	}
	return fss, err
}

func (r *listedReceiver) last() []*pdu.Filesystem {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.listing
}
