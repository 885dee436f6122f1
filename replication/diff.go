package replication

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/zrep/zrep/pdu"
)

// SortVersions returns versions in creation order (createtxg). A bookmark
// sorts before the snapshot it was made from, so that the snapshot, which
// can also be a step's target, is the one found when searching from the
// newest end.
//
// versions is never modified: when it is in order already (as listings
// come) it is returned itself, its capacity clipped so that an append
// copies; otherwise a sorted copy. Callers must not write its elements.
func SortVersions(versions []*pdu.FilesystemVersion) []*pdu.FilesystemVersion {
	if slices.IsSortedFunc(versions, compareCreation) {
		return versions[:len(versions):len(versions)]
	}
	sorted := slices.Clone(versions)
	slices.SortStableFunc(sorted, compareCreation)
	return sorted
}

func compareCreation(a, b *pdu.FilesystemVersion) int {
	if c := cmp.Compare(a.CreateTXG, b.CreateTXG); c != 0 {
		return c
	}
	// Bookmark (1) before Snapshot (0).
	return cmp.Compare(b.Type, a.Type)
}

// ConflictNoCommonAncestor says sender and receiver share no version, so no
// incremental send can bring the receiver up to date.
type ConflictNoCommonAncestor struct {
	SortedSenderVersions   []*pdu.FilesystemVersion
	SortedReceiverVersions []*pdu.FilesystemVersion
	// Filesystem and Destination name the datasets in Error; the planner
	// fills them in, IncrementalPath leaves them empty.
	Filesystem, Destination string
}

func (c *ConflictNoCommonAncestor) Error() string {
	src, dst := datasetOr(c.Filesystem, "sender"), datasetOr(c.Destination, "receiver")
	if len(c.SortedReceiverVersions) == 0 {
		return fmt.Sprintf("no common snapshot: %s has no snapshots", dst)
	}
	if len(c.SortedSenderVersions) == 0 {
		return fmt.Sprintf("no common snapshot: %s has no snapshots or bookmarks, %s has %s",
			src, dst, versionList(c.SortedReceiverVersions))
	}
	msg := fmt.Sprintf("no common snapshot between %s (%s) and %s (%s)",
		src, versionList(c.SortedSenderVersions), dst, versionList(c.SortedReceiverVersions))
	if same := sameNameOtherGuid(c.SortedSenderVersions, c.SortedReceiverVersions); len(same) > 0 {
		msg += fmt.Sprintf("; %s exist on both sides but are different snapshots (guids differ)", strings.Join(same, ", "))
	}
	return msg + fmt.Sprintf("; zrep will not destroy them: destroy or rename %s to replicate from scratch", dst)
}

// ConflictDiverged says the receiver has versions created after the newest
// version it shares with the sender: an incremental receive would have to
// destroy them.
type ConflictDiverged struct {
	SortedSenderVersions   []*pdu.FilesystemVersion
	SortedReceiverVersions []*pdu.FilesystemVersion
	// CommonAncestor is the sender's newest version also on the receiver.
	CommonAncestor *pdu.FilesystemVersion
	SenderOnly     []*pdu.FilesystemVersion
	ReceiverOnly   []*pdu.FilesystemVersion
	// Filesystem and Destination name the datasets in Error; the planner
	// fills them in, IncrementalPath leaves them empty.
	Filesystem, Destination string
}

func (c *ConflictDiverged) Error() string {
	dst := datasetOr(c.Destination, "receiver")
	return fmt.Sprintf("%s has diverged: it has %s after the newest common snapshot %s; use --rollback to roll %s back to %s, destroying them",
		dst, versionList(c.ReceiverOnly), c.CommonAncestor.RelName(), dst, c.CommonAncestor.RelName())
}

// IncrementalPath computes the versions to send to bring receiver up to date
// with sender: the newest common version (matched by guid, ordered by
// createtxg) followed by every later sender snapshot. Consecutive entries are
// the steps; an empty path means the receiver is up to date.
//
// Only the path's first entry may be a bookmark: a bookmark can be the base
// of an incremental send, never its target. Receiver bookmarks are ignored,
// since zfs receive needs the base as a snapshot on the receiving side.
//
// The error is a *ConflictNoCommonAncestor or a *ConflictDiverged.
func IncrementalPath(receiver, sender []*pdu.FilesystemVersion) ([]*pdu.FilesystemVersion, error) {
	return incrementalPath(SortVersions(receiver), SortVersions(sender))
}

// incrementalPath is IncrementalPath of lists sorted with SortVersions.
func incrementalPath(receiver, sender []*pdu.FilesystemVersion) ([]*pdu.FilesystemVersion, error) {
	// The newest receiver snapshot the sender has too (by guid); newer
	// receiver snapshots mean divergence. Planning runs this for every
	// filesystem, so it allocates only for what it returns.
	r, s, newer := -1, -1, 0
search:
	for i := len(receiver) - 1; i >= 0; i-- {
		if receiver[i].Type != pdu.Snapshot {
			continue
		}
		for j := len(sender) - 1; j >= 0; j-- {
			if sender[j].Guid == receiver[i].Guid {
				r, s = i, j
				break search
			}
		}
		newer++
	}
	if r < 0 {
		return nil, &ConflictNoCommonAncestor{SortedSenderVersions: sender, SortedReceiverVersions: receiver}
	}
	if newer > 0 {
		var receiverOnly []*pdu.FilesystemVersion
		for _, v := range receiver[r+1:] {
			if v.Type == pdu.Snapshot {
				receiverOnly = append(receiverOnly, v)
			}
		}
		return nil, &ConflictDiverged{
			SortedSenderVersions:   sender,
			SortedReceiverVersions: receiver,
			CommonAncestor:         sender[s],
			SenderOnly:             sender[s+1:],
			ReceiverOnly:           receiverOnly,
		}
	}

	// A bookmark of the common snapshot sorts before it, so the guid
	// check only skips duplicates of the path's last entry.
	n, last := 0, sender[s].Guid
	for _, v := range sender[s+1:] {
		if v.Type == pdu.Snapshot && v.Guid != last {
			n++
			last = v.Guid
		}
	}
	if n == 0 {
		return []*pdu.FilesystemVersion{}, nil
	}
	path := make([]*pdu.FilesystemVersion, 1, n+1)
	path[0] = sender[s]
	for _, v := range sender[s+1:] {
		if v.Type == pdu.Snapshot && v.Guid != path[len(path)-1].Guid {
			path = append(path, v)
		}
	}
	return path, nil
}

func datasetOr(name, fallback string) string {
	if name == "" {
		return fallback
	}
	return name
}

// versionList writes versions the way an operator would type them after the
// dataset name, shortening long lists.
func versionList(vs []*pdu.FilesystemVersion) string {
	if len(vs) == 0 {
		return "nothing"
	}
	const max = 5
	names := make([]string, 0, max+1)
	for i, v := range vs {
		if i == max {
			names = append(names, fmt.Sprintf("and %d more", len(vs)-max))
			break
		}
		names = append(names, v.RelName())
	}
	return strings.Join(names, ", ")
}

func sameNameOtherGuid(sender, receiver []*pdu.FilesystemVersion) []string {
	byName := make(map[string]uint64, len(sender))
	for _, v := range sender {
		if v.Type == pdu.Snapshot {
			byName[v.Name] = v.Guid
		}
	}
	var names []string
	for _, v := range receiver {
		if g, ok := byName[v.Name]; ok && v.Type == pdu.Snapshot && g != v.Guid {
			names = append(names, v.RelName())
		}
	}
	return names
}
