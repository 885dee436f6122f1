package replication_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/zrep/zrep/pdu"
	"github.com/zrep/zrep/replication"
)

// v describes a version for the tables: "@name" or "#name", guid, createtxg.
func v(rel string, guid, txg uint64) *pdu.FilesystemVersion {
	t := pdu.Snapshot
	if rel[0] == '#' {
		t = pdu.Bookmark
	}
	return &pdu.FilesystemVersion{Name: rel[1:], Type: t, Guid: guid, CreateTXG: txg}
}

func names(vs []*pdu.FilesystemVersion) []string {
	out := make([]string, 0, len(vs))
	for _, v := range vs {
		out = append(out, v.RelName())
	}
	return out
}

func TestIncrementalPath(t *testing.T) {
	type vs = []*pdu.FilesystemVersion
	tests := []struct {
		name             string
		receiver, sender vs
		path             []string // nil with conflict set
		conflict         string   // "noCommon" or "diverged"
		common           string   // diverged: the common ancestor
	}{
		{
			name:     "equal sides",
			receiver: vs{v("@a", 1, 10), v("@b", 2, 20)},
			sender:   vs{v("@a", 1, 10), v("@b", 2, 20)},
			path:     []string{},
		},
		{
			name:     "receiver empty",
			receiver: vs{},
			sender:   vs{v("@a", 1, 10), v("@b", 2, 20)},
			conflict: "noCommon",
		},
		{
			name:     "receiver behind by one",
			receiver: vs{v("@a", 1, 10)},
			sender:   vs{v("@a", 1, 10), v("@b", 2, 20)},
			path:     []string{"@a", "@b"},
		},
		{
			name:     "receiver behind by many",
			receiver: vs{v("@a", 1, 10)},
			sender:   vs{v("@a", 1, 10), v("@b", 2, 20), v("@c", 3, 30), v("@d", 4, 40)},
			path:     []string{"@a", "@b", "@c", "@d"},
		},
		{
			name:     "receiver diverged",
			receiver: vs{v("@a", 1, 5), v("@b", 2, 6), v("@x", 9, 7)},
			sender:   vs{v("@a", 1, 10), v("@b", 2, 20), v("@c", 3, 30)},
			conflict: "diverged",
			common:   "@b",
		},
		{
			name:     "no common version",
			receiver: vs{v("@x", 8, 5), v("@y", 9, 6)},
			sender:   vs{v("@a", 1, 10), v("@b", 2, 20)},
			conflict: "noCommon",
		},
		{
			name:     "sender bookmark as the common base",
			receiver: vs{v("@a", 1, 5)},
			sender:   vs{v("#a", 1, 10), v("@b", 2, 20), v("@c", 3, 30)},
			path:     []string{"#a", "@b", "@c"},
		},
		{
			name:     "bookmarks after the base are never targets",
			receiver: vs{v("@a", 1, 5)},
			sender:   vs{v("@a", 1, 10), v("#a", 1, 10), v("#b", 2, 20), v("@b", 2, 20), v("#c", 3, 30)},
			path:     []string{"@a", "@b"},
		},
		{
			name:     "receiver has only snapshots the sender lacks",
			receiver: vs{v("@old", 77, 5)},
			sender:   vs{v("@a", 1, 10)},
			conflict: "noCommon",
		},
		{
			name:     "equal names with different guids",
			receiver: vs{v("@a", 100, 5), v("@b", 200, 6)},
			sender:   vs{v("@a", 1, 10), v("@b", 2, 20)},
			conflict: "noCommon",
		},
		{
			name:     "createtxg order differs from name order",
			receiver: vs{v("@zzz", 1, 5)},
			sender:   vs{v("@b", 3, 30), v("@zzz", 1, 10), v("@a", 2, 20)},
			path:     []string{"@zzz", "@a", "@b"},
		},
		{
			name:     "single sender snapshot, receiver has it",
			receiver: vs{v("@a", 1, 5)},
			sender:   vs{v("@a", 1, 10)},
			path:     []string{},
		},
		{
			name:     "single sender snapshot, receiver empty",
			receiver: vs{},
			sender:   vs{v("@a", 1, 10)},
			conflict: "noCommon",
		},
		{
			name:     "sender with no snapshots",
			receiver: vs{v("@a", 1, 5)},
			sender:   vs{},
			conflict: "noCommon",
		},
		{
			name:     "receiver bookmark is not a base",
			receiver: vs{v("@a", 1, 5), v("#b", 2, 6)},
			sender:   vs{v("@a", 1, 10), v("@b", 2, 20)},
			path:     []string{"@a", "@b"},
		},
		{
			name:     "diverged at the very start",
			receiver: vs{v("@a", 1, 5), v("@x", 9, 6), v("@y", 10, 7)},
			sender:   vs{v("@a", 1, 10)},
			conflict: "diverged",
			common:   "@a",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path, err := replication.IncrementalPath(tt.receiver, tt.sender)
			switch tt.conflict {
			case "":
				if err != nil {
					t.Fatalf("unexpected conflict: %v", err)
				}
				if got := strings.Join(names(path), " "); got != strings.Join(tt.path, " ") {
					t.Errorf("path = %q, want %q", got, strings.Join(tt.path, " "))
				}
			case "noCommon":
				var c *replication.ConflictNoCommonAncestor
				if !errors.As(err, &c) {
					t.Fatalf("err = %v, want ConflictNoCommonAncestor", err)
				}
				if len(c.SortedSenderVersions) != len(tt.sender) || len(c.SortedReceiverVersions) != len(tt.receiver) {
					t.Errorf("conflict does not carry both sides' versions: %+v", c)
				}
				if path != nil {
					t.Errorf("path = %v with a conflict", names(path))
				}
			case "diverged":
				var c *replication.ConflictDiverged
				if !errors.As(err, &c) {
					t.Fatalf("err = %v, want ConflictDiverged", err)
				}
				if c.CommonAncestor.RelName() != tt.common {
					t.Errorf("common ancestor = %s, want %s", c.CommonAncestor.RelName(), tt.common)
				}
				if !strings.Contains(err.Error(), "--rollback") {
					t.Errorf("message does not say what to do: %s", err)
				}
			}
		})
	}
}

func TestConflictMessages(t *testing.T) {
	_, err := replication.IncrementalPath(
		[]*pdu.FilesystemVersion{v("@a", 100, 5)},
		[]*pdu.FilesystemVersion{v("@a", 1, 10)})
	c := err.(*replication.ConflictNoCommonAncestor)
	c.Filesystem, c.Destination = "tank/a", "backup/a"
	msg := err.Error()
	for _, want := range []string{"tank/a", "backup/a", "@a", "guids differ", "will not destroy"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
}

func TestSortVersionsOrdersByCreateTXG(t *testing.T) {
	got := names(replication.SortVersions([]*pdu.FilesystemVersion{v("@b", 2, 20), v("@a", 1, 30), v("#b", 2, 20)}))
	if strings.Join(got, " ") != "#b @b @a" {
		t.Errorf("got %v", got)
	}
}
