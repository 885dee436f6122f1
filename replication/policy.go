package replication

import (
	"errors"
	"fmt"

	"github.com/zrep/zrep/pdu"
)

// InitialPolicy says what to send when the destination has nothing in
// common with the source and may be written from scratch.
type InitialPolicy int

const (
	// InitialNewest sends only the newest selected snapshot, as a full
	// stream (the seed's policy).
	InitialNewest InitialPolicy = iota
	// InitialAll sends the oldest selected snapshot as a full stream, then
	// every later one incrementally.
	InitialAll
)

func (p InitialPolicy) String() string {
	switch p {
	case InitialNewest:
		return "newest"
	case InitialAll:
		return "all"
	}
	return fmt.Sprintf("InitialPolicy(%d)", int(p))
}

// destinationState is what the receiver's listing says about a destination.
type destinationState struct {
	exists      bool
	placeholder bool
}

// resolution is the planner's answer to a conflict.
type resolution struct {
	// path is what to send; when full is set path[0] is sent as a full
	// stream, otherwise it is the incremental base already on the receiver.
	path []*pdu.FilesystemVersion
	full bool
	// rollbackTo, when set, is rolled back to on the receiver before the
	// first step.
	rollbackTo *pdu.FilesystemVersion
	// forceReceive lets the first receive overwrite the destination
	// (ReceiveReq.Rollback); only ever set when the operator asked for it.
	forceReceive bool
	text         string
}

// resolveConflict applies the operator's policy to conflict. selected are
// the sender snapshots that may be sent, in creation order. The error says
// why the conflict stays, with what the operator can do about it.
func resolveConflict(conflict error, dst destinationState, selected []*pdu.FilesystemVersion, cfg *Config) (*resolution, error) {
	var noCommon *ConflictNoCommonAncestor
	var diverged *ConflictDiverged
	switch {
	case errors.As(conflict, &noCommon):
		receiverSnaps := 0
		for _, v := range noCommon.SortedReceiverVersions {
			if v.Type == pdu.Snapshot {
				receiverSnaps++
			}
		}
		var res *resolution
		switch {
		case receiverSnaps > 0:
			// Rollback does not reach this far: the receiver's snapshots
			// are not the sender's, so nothing says they may go. A
			// placeholder with snapshots (someone took them) is no
			// exception: overwriting it would destroy them.
			return nil, conflict
		case !dst.exists || dst.placeholder:
			res = &resolution{full: true}
		case cfg.Rollback:
			res = &resolution{full: true, forceReceive: true}
		default:
			return nil, fmt.Errorf("%s exists but has no snapshots and is not a zrep placeholder; use --rollback to overwrite it with a full receive, or destroy it", datasetOr(noCommon.Destination, "destination"))
		}
		if len(selected) == 0 {
			return nil, errors.New("sender does not have any versions")
		}
		if cfg.Initial == InitialAll {
			res.path = selected
			res.text = fmt.Sprintf("full send of the oldest snapshot %s, then every later one (--initial all)", selected[0].RelName())
		} else {
			newest := selected[len(selected)-1]
			res.path = []*pdu.FilesystemVersion{newest}
			res.text = fmt.Sprintf("full send of the newest snapshot %s (--initial newest)", newest.RelName())
		}
		switch {
		case res.forceReceive:
			res.text += ", overwriting the existing empty destination (--rollback)"
		case dst.placeholder:
			res.text += ", replacing the placeholder"
		case !dst.exists:
			res.text = "new: " + res.text
		}
		return res, nil

	case errors.As(conflict, &diverged):
		if !cfg.Rollback {
			return nil, conflict
		}
		path := []*pdu.FilesystemVersion{diverged.CommonAncestor}
		for _, v := range selected {
			if v.CreateTXG > diverged.CommonAncestor.CreateTXG && v.Guid != diverged.CommonAncestor.Guid {
				path = append(path, v)
			}
		}
		// Roll back to the receiver's own snapshot: the sender may only
		// have a bookmark of it.
		rollbackTo := diverged.CommonAncestor
		for _, v := range diverged.SortedReceiverVersions {
			if v.Type == pdu.Snapshot && v.Guid == rollbackTo.Guid {
				rollbackTo = v
			}
		}
		return &resolution{
			path:         path,
			rollbackTo:   rollbackTo,
			forceReceive: true,
			text: fmt.Sprintf("roll back to %s, destroying %s (--rollback)",
				diverged.CommonAncestor.RelName(), versionList(diverged.ReceiverOnly)),
		}, nil
	}
	return nil, conflict
}
