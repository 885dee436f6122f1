package endpoints

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/zrep/zrep/pdu"
)

// Delegation: what an account that is not root needs from `zfs allow` to
// run a job, found by running each command zrep runs as such an account on
// OpenZFS 2.3 with one permission left out at a time (README, "Running
// without root"). zfs checks these in the kernel; a missing one fails the
// command with "permission denied".

// Work is what a job does on its sides, as far as permissions go: its
// options, not its data.
type Work struct {
	// Recursive: the destination may get placeholders (zfs create, a user
	// property and canmount) for source filesystems with nothing to send.
	Recursive bool
	// Snapshot: --snapshot takes snapshots on the source.
	Snapshot bool
	// Hold: --hold puts and moves user holds on the source.
	Hold bool
	// KeepSource, KeepDest: --keep-source and --keep-dest destroy
	// snapshots on that side.
	KeepSource, KeepDest bool
	// Rollback: --rollback rolls the destination back.
	Rollback bool
	// PruneOnly: the job only prunes and moves holds (zrep prune); it
	// sends and receives nothing.
	PruneOnly bool
	// RecvSet and RecvExclude are the properties that --recv-set and
	// --recv-exclude name: zfs receive -o and -x need each property's own
	// permission (userprop for a user property).
	RecvSet, RecvExclude []string
}

// Need is one permission a side needs, and why.
type Need struct {
	Permission string
	Why        string
}

// permissionOrder is the order needs are printed in: zrep's commands in
// the order a run uses them, then properties by name.
var permissionOrder = []string{
	"send", "hold", "release", "bookmark", "snapshot",
	"receive", "create", "mount", "destroy", "rollback",
	"userprop", "canmount",
}

// Needs returns the permissions the side of role ("source" or
// "destination") needs for w, each once, in a fixed order.
//
// The source always sends (send), takes zfs send -I's temporary holds
// (hold), and keeps its replication cursor, a bookmark whose predecessor
// it destroys (bookmark, destroy: destroying a bookmark needs no more).
// Destroying a snapshot needs mount as well, so only --keep-source brings
// it. The destination always receives, which zfs allows only with create
// and mount as well, even unmounted (zfs receive -u).
func Needs(role string, w Work) []Need {
	var needs []Need
	add := func(perm, why string) {
		for _, n := range needs {
			if n.Permission == perm {
				return
			}
		}
		needs = append(needs, Need{perm, why})
	}
	switch {
	case w.PruneOnly && role == "source":
		if w.Hold {
			add("hold", "--hold")
			add("release", "--hold moves its hold (zfs release)")
		}
		if w.KeepSource {
			add("destroy", "--keep-source")
			add("mount", "--keep-source: zfs destroy of a snapshot needs mount too")
		}
	case w.PruneOnly && role == "destination":
		if w.KeepDest {
			add("destroy", "--keep-dest")
			add("mount", "--keep-dest: zfs destroy of a snapshot needs mount too")
		}
	case role == "source":
		add("send", "zfs send")
		add("hold", "zfs send -I holds the snapshots it sends")
		add("bookmark", "the replication cursor (zfs bookmark)")
		add("destroy", "destroying the previous cursor bookmark")
		if w.Snapshot {
			add("snapshot", "--snapshot")
		}
		if w.Hold {
			add("release", "--hold moves its hold (zfs release)")
		}
		if w.KeepSource {
			add("mount", "--keep-source: zfs destroy of a snapshot needs mount too")
		}
	case role == "destination":
		add("receive", "zfs receive")
		add("create", "zfs receive creates filesystems")
		add("mount", "zfs receive needs it, even with -u")
		if w.KeepDest {
			add("destroy", "--keep-dest")
		}
		if w.Rollback {
			add("rollback", "--rollback (zfs rollback -r)")
			add("destroy", "--rollback: zfs rollback -r destroys the later snapshots")
		}
		if w.Recursive {
			add("userprop", "placeholders: the zrep:placeholder mark")
			add("canmount", "placeholders: canmount=off, and on again when filled")
		}
		for _, p := range w.RecvSet {
			add(propertyPermission(p), "--recv-set "+p)
		}
		for _, p := range w.RecvExclude {
			add(propertyPermission(p), "--recv-exclude "+p)
		}
	}
	slices.SortFunc(needs, func(a, b Need) int {
		if d := orderOf(a.Permission) - orderOf(b.Permission); d != 0 {
			return d
		}
		return strings.Compare(a.Permission, b.Permission)
	})
	return needs
}

func orderOf(perm string) int {
	if i := slices.Index(permissionOrder, perm); i >= 0 {
		return i
	}
	return len(permissionOrder)
}

// propertyPermission is the permission that setting property name needs:
// the property's own name, or userprop for a user property (one with a
// colon, as com.example:backup).
func propertyPermission(name string) string {
	if strings.Contains(name, ":") {
		return "userprop"
	}
	return name
}

// Permissions are the names of needs, in their order.
func Permissions(needs []Need) []string {
	perms := make([]string, len(needs))
	for i, n := range needs {
		perms[i] = n.Permission
	}
	return perms
}

// GrantDataset is where a side's permissions are granted: the source's
// dataset, and the parent of the destination's, since a destination that
// does not exist yet is created by zfs receive, which zfs checks on the
// parent; granted there, the permissions reach the destination and its
// descendants too. A destination that is a pool's root gets them itself.
func GrantDataset(role, dataset string) string {
	if role == "destination" {
		if p := pdu.Parent(dataset); p != "" {
			return p
		}
	}
	return dataset
}

// AllowArgv is `zfs allow -u ACCOUNT PERM,... DATASET`: the command that
// grants perms to account on dataset and its descendants.
func AllowArgv(account string, perms []string, dataset string) ([]string, error) {
	if err := CheckDatasetName(dataset); err != nil {
		return nil, fmt.Errorf("zfs allow: %w", err)
	}
	if err := checkAccount(account); err != nil {
		return nil, fmt.Errorf("zfs allow on %s: %w", dataset, err)
	}
	if len(perms) == 0 {
		return nil, fmt.Errorf("zfs allow on %s: no permission given", dataset)
	}
	for _, p := range perms {
		if err := CheckPropertyName(p); err != nil {
			return nil, fmt.Errorf("zfs allow on %s: permission %q: %w", dataset, p, err)
		}
	}
	return []string{"zfs", "allow", "-u", account, strings.Join(perms, ","), dataset}, nil
}

// checkAccount keeps a user name to what a login name can be, which also
// keeps it from reading as an option.
func checkAccount(name string) error {
	if name == "" || name[0] == '-' {
		return fmt.Errorf("invalid account name %q", name)
	}
	for _, r := range name {
		if r <= ' ' || r == 0x7f || strings.ContainsRune(",:/@'\"\\`$;|&<>(){}*?!#", r) {
			return fmt.Errorf("account name %q contains %q", name, r)
		}
	}
	return nil
}

// CommandLine writes argv as one shell command line for a person to run:
// words that need no quoting stay bare, the others are quoted by the one
// quoting function.
func CommandLine(argv []string) string {
	words := make([]string, len(argv))
	for i, a := range argv {
		words[i] = a
		if a == "" || strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-.,:/@=+%", r))
		}) >= 0 {
			words[i] = shellQuote(a)
		}
	}
	return strings.Join(words, " ")
}

// loginNameArgv asks ssh for its configuration for side (ssh -G), which
// holds the login name; it contacts nothing.
func loginNameArgv(side Side, o SSHOptions) []string {
	return append(sshBaseArgv(side, o, ""), "-G", "--", side.Host)
}

// LoginName is the account ssh logs in to side as: side.User, or the
// `user` of ssh's configuration for the host.
func LoginName(ctx context.Context, side Side, o SSHOptions) (string, error) {
	if side.User != "" {
		return side.User, nil
	}
	argv := loginNameArgv(side, o)
	var out bytes.Buffer
	if err := newRunner(nil, "", "").run(ctx, argv, argv, nil, &out); err != nil {
		return "", fmt.Errorf("ssh's login name for %s: %w", side.Host, err)
	}
	return parseLoginName(out.String())
}

// parseLoginName reads the `user NAME` line of ssh -G's output.
func parseLoginName(out string) (string, error) {
	for _, line := range strings.Split(out, "\n") {
		if name, ok := strings.CutPrefix(line, "user "); ok {
			if err := checkAccount(name); err != nil {
				return "", fmt.Errorf("ssh -G: %w", err)
			}
			return name, nil
		}
	}
	return "", fmt.Errorf("ssh -G printed no user line")
}
