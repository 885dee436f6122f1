package endpoints

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/zrep/zrep/pdu"
)

// Scope is where a delegated permission applies: on the dataset it is
// granted on, on its descendants, or both (zfs allow -l, -d, neither).
type Scope int

const (
	Local Scope = 1 << iota
	Descendent
	LocalDescendent = Local | Descendent
)

// Delegation is one line of `zfs allow` output: permissions granted to a
// user, a group or everyone.
type Delegation struct {
	Scope Scope
	// Kind is "user", "group" or "everyone".
	Kind string
	// Name is the user or group name, or `(unknown: ID)` for an id
	// without one; empty for everyone.
	Name string
	// Perms are permission names and @set names.
	Perms []string
}

// DatasetDelegations are the permissions delegated on one dataset.
type DatasetDelegations struct {
	Dataset string
	// Sets are the permission sets defined here: @name to permissions.
	Sets map[string][]string
	// Create are the create-time permissions (zfs allow -c).
	Create  []string
	Entries []Delegation
}

// Delegations is what `zfs allow DATASET` prints: the delegations on the
// dataset and on each of its ancestors that has any, the dataset first.
type Delegations []DatasetDelegations

// allowHeader starts each dataset's section: `---- Permissions on NAME `
// and dashes up to 70 columns (none after a long name).
const allowHeader = "---- Permissions on "

// ParseAllow reads the output of `zfs allow dataset` strictly: every line
// must be what OpenZFS prints, and the sections must be dataset's own and
// its ancestors', nearest first. Empty output is no delegation at all.
func ParseAllow(out, dataset string) (Delegations, error) {
	var ds Delegations
	var cur *DatasetDelegations
	section := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		bad := func(why string) error {
			return fmt.Errorf("zfs allow %s: line %d %q: %s", dataset, n, line, why)
		}
		if name, ok := strings.CutPrefix(line, allowHeader); ok {
			name = strings.TrimRight(name, "-")
			name, ok = strings.CutSuffix(name, " ")
			if !ok || CheckDatasetName(name) != nil {
				return nil, bad("not a dataset's section header")
			}
			if name != dataset && !strings.HasPrefix(dataset, name+"/") {
				return nil, bad("a section for a dataset that is neither " + dataset + " nor one of its ancestors")
			}
			if cur != nil && !strings.HasPrefix(cur.Dataset, name+"/") {
				return nil, bad("sections out of order: " + name + " after " + cur.Dataset)
			}
			ds = append(ds, DatasetDelegations{Dataset: name, Sets: map[string][]string{}})
			cur, section = &ds[len(ds)-1], ""
			continue
		}
		if cur == nil {
			if line == "" {
				continue
			}
			return nil, bad("output before the first section header")
		}
		switch line {
		case "Permission sets:", "Create time permissions:", "Local permissions:",
			"Descendent permissions:", "Local+Descendent permissions:":
			section = line
			continue
		}
		body, ok := strings.CutPrefix(line, "\t")
		if !ok || section == "" {
			return nil, bad("not a permission line")
		}
		switch section {
		case "Permission sets:":
			name, list, ok := strings.Cut(body, " ")
			if !ok || !strings.HasPrefix(name, "@") || checkPermName(name) != nil {
				return nil, bad("not a permission set")
			}
			perms, err := parsePermList(list)
			if err != nil {
				return nil, bad(err.Error())
			}
			cur.Sets[name] = perms
		case "Create time permissions:":
			perms, err := parsePermList(body)
			if err != nil {
				return nil, bad(err.Error())
			}
			cur.Create = perms
		default:
			d, err := parseDelegation(body)
			if err != nil {
				return nil, bad(err.Error())
			}
			d.Scope = map[string]Scope{
				"Local permissions:":            Local,
				"Descendent permissions:":       Descendent,
				"Local+Descendent permissions:": LocalDescendent,
			}[section]
			cur.Entries = append(cur.Entries, d)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("zfs allow %s: %w", dataset, err)
	}
	return ds, nil
}

// parseDelegation reads `user NAME PERMS`, `group NAME PERMS` or
// `everyone PERMS`. A name holds no space, but for an unknown id zfs
// prints `(unknown: 4242)`; the permissions are the last word.
func parseDelegation(body string) (Delegation, error) {
	kind, rest, ok := strings.Cut(body, " ")
	if !ok {
		return Delegation{}, errors.New("no permissions")
	}
	d := Delegation{Kind: kind}
	list := rest
	switch kind {
	case "everyone":
	case "user", "group":
		i := strings.LastIndexByte(rest, ' ')
		if i <= 0 {
			return Delegation{}, errors.New("no " + kind + " name or no permissions")
		}
		d.Name, list = rest[:i], rest[i+1:]
		if strings.ContainsAny(d.Name, " \t") && !unknownID(d.Name) {
			return Delegation{}, fmt.Errorf("%s name %q", kind, d.Name)
		}
	default:
		return Delegation{}, fmt.Errorf("%q is neither user, group nor everyone", kind)
	}
	perms, err := parsePermList(list)
	if err != nil {
		return Delegation{}, err
	}
	d.Perms = perms
	return d, nil
}

// unknownID tells whether name is how zfs names an id with no name:
// `(unknown: 4242)`.
func unknownID(name string) bool {
	id, ok := strings.CutPrefix(name, "(unknown: ")
	if !ok {
		return false
	}
	id, ok = strings.CutSuffix(id, ")")
	_, err := strconv.ParseUint(id, 10, 32)
	return ok && err == nil
}

func parsePermList(list string) ([]string, error) {
	if list == "" {
		return nil, errors.New("empty permission list")
	}
	perms := strings.Split(list, ",")
	for _, p := range perms {
		if err := checkPermName(p); err != nil {
			return nil, err
		}
	}
	return perms, nil
}

// checkPermName accepts a permission (a subcommand or a property, which
// may be a user property) or a @set name.
func checkPermName(p string) error {
	name := strings.TrimPrefix(p, "@")
	if name == "" {
		return fmt.Errorf("empty permission in list")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-.:", r)) {
			return fmt.Errorf("permission %q contains %q", p, r)
		}
	}
	return nil
}

// Account is who runs zfs on a side.
type Account struct {
	UID    int
	Name   string
	Groups []string
}

func (a Account) matches(d Delegation) bool {
	switch d.Kind {
	case "everyone":
		return true
	case "user":
		return d.Name == a.Name || d.Name == "(unknown: "+strconv.Itoa(a.UID)+")"
	case "group":
		return slices.Contains(a.Groups, d.Name)
	}
	return false
}

// Effective are the permissions account holds on dataset, as zfs decides:
// those granted on the dataset itself for it (local), and those granted
// on its ancestors for their descendants, sets expanded. With child, on a
// child of dataset that does not exist yet: only what dataset and its
// ancestors grant to descendants.
func (ds Delegations) Effective(account Account, dataset string, child bool) map[string]bool {
	perms := map[string]bool{}
	for i, dd := range ds {
		want := Descendent
		if dd.Dataset == dataset && !child {
			want = Local
		} else if dd.Dataset != dataset && !strings.HasPrefix(dataset, dd.Dataset+"/") {
			continue
		}
		for _, e := range dd.Entries {
			if e.Scope&want == 0 || !account.matches(e) {
				continue
			}
			for _, p := range e.Perms {
				ds[i:].expand(p, perms, 0)
			}
		}
	}
	return perms
}

// expand adds p to perms, or the permissions of set p as defined on the
// first of ds that defines it.
func (ds Delegations) expand(p string, perms map[string]bool, depth int) {
	if !strings.HasPrefix(p, "@") {
		perms[p] = true
		return
	}
	if depth > 8 {
		return
	}
	for _, dd := range ds {
		if set, ok := dd.Sets[p]; ok {
			for _, q := range set {
				ds.expand(q, perms, depth+1)
			}
			return
		}
	}
}

// Missing are the needs that account lacks for work on dataset: on the
// dataset itself if exists, else on a child of dataset (a destination not
// created yet, dataset being its parent), which zfs receive creates with
// create, mount and receive checked on the parent itself too.
func (ds Delegations) Missing(account Account, dataset string, exists bool, needs []Need) []Need {
	var eff, onParent map[string]bool
	if exists {
		eff = ds.Effective(account, dataset, false)
	} else {
		eff = ds.Effective(account, dataset, true)
		onParent = ds.Effective(account, dataset, false)
	}
	var missing []Need
	for _, n := range needs {
		ok := eff[n.Permission]
		if onParent != nil && slices.Contains([]string{"create", "mount", "receive"}, n.Permission) {
			ok = ok && onParent[n.Permission]
		}
		if !ok {
			missing = append(missing, n)
		}
	}
	return missing
}

// MissingPermissionError is an account that lacks delegated permissions
// a job needs on a side. It is permanent: nothing was sent.
type MissingPermissionError struct {
	Role    string
	Side    Side // Dataset: where the permissions were checked
	Account string
	Missing []Need
	// Grant is where the fix grants them.
	Grant string
}

func (e *MissingPermissionError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: account %s lacks the zfs permission", e.Role, e.Side, e.Account)
	if len(e.Missing) > 1 {
		b.WriteString("s")
	}
	for i, n := range e.Missing {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, " %s (%s)", n.Permission, n.Why)
	}
	fmt.Fprintf(&b, " on %s", e.Grant)
	where := "on this host"
	if !e.Side.Local() {
		where = "on " + e.Side.Host
	}
	if argv, err := AllowArgv(e.Account, Permissions(e.Missing), e.Grant); err == nil {
		them := "them"
		if len(e.Missing) == 1 {
			them = "it"
		}
		fmt.Fprintf(&b, "; grant %s as root %s: %s", them, where, CommandLine(argv))
	}
	b.WriteString(" (zrep allow prints all a job needs)")
	return b.String()
}

// errMissing wraps a MissingPermissionError as permanent.
func errMissing(e *MissingPermissionError) error { return pdu.PermanentError(e) }

// Markers of the delegation command's output; none can start a line of
// `zfs allow` output.
const (
	markUID    = "zrep:uid "
	markUser   = "zrep:user "
	markGroups = "zrep:groups "
	markAllow  = "zrep:allow "
	markUpper  = "zrep:parent "
)

// delegationArgv is the one command that reads what a side's account may
// do: its uid and, unless it is root, its name, its groups, and `zfs
// allow` of dataset, or where that fails (a destination not created yet)
// of parent, when parent is set. Its output:
//
//	zrep:uid UID
//	zrep:user NAME
//	zrep:groups GROUP...
//	zrep:allow STATUS
//	ZFS ALLOW'S OUTPUT (stdout and stderr)
//	[zrep:parent STATUS
//	ZFS ALLOW'S OUTPUT]
//
// It is a request of its own kind (RequestDelegation), so that a served
// side (zrep serve) can check it as data like every other request: its
// words are the zfs allow argvs, the rest is delegationTemplate.
func delegationArgv(dataset, parent string) (req Request, allow, allowParent []string) {
	allow = []string{"zfs", "allow", dataset}
	groups := [][]string{allow}
	if parent != "" {
		allowParent = []string{"zfs", "allow", parent}
		groups = append(groups, allowParent)
	}
	return Request{Kind: RequestDelegation, Words: groupWords(groups)}, allow, allowParent
}

// delegationTemplate is the delegation request's program (see
// delegationArgv): its groups are zfs allow of the dataset and,
// optionally, of its parent, run when the first fails.
var delegationTemplate = groupsPrelude + reportPid +
	`LC_ALL=C; export LC_ALL; s=0; u=$(id -u) || s=1; ` +
	`if [ "$s" -eq 0 ]; then printf '` + markUID + `%s\n' "$u"; fi; ` +
	`if [ "$s" -eq 0 ] && [ "$u" -ne 0 ]; then ` +
	`printf '` + markUser + `%s\n` + markGroups + `%s\n' "$(id -un)" "$(id -Gn)"; ` +
	`o=$(eval "$a1" 2>&1); a=$?; printf '` + markAllow + `%d\n%s\n' "$a" "$o"; ` +
	`if [ "$k" -ge 2 ] && [ "$a" -ne 0 ]; then o=$(eval "$a2" 2>&1); printf '` + markUpper + `%d\n%s\n' "$?" "$o"; fi; ` +
	`fi; ` + exitEpilogue

// delegationOutput is the delegation command's output, read.
type delegationOutput struct {
	account Account
	// allow and parent are zfs allow's status and output for the dataset
	// and its parent; parentRan says whether the latter ran.
	allowStatus, parentStatus int
	allow, parent             string
	parentRan                 bool
}

// parseDelegationOutput reads delegationArgv's output.
func parseDelegationOutput(out string) (delegationOutput, error) {
	var d delegationOutput
	lines := strings.Split(out, "\n")
	uid, ok := strings.CutPrefix(lines[0], markUID)
	var err error
	if d.account.UID, err = strconv.Atoi(uid); !ok || err != nil {
		return d, fmt.Errorf("delegation check printed %q, want %q first", lines[0], markUID+"UID")
	}
	if d.account.UID == 0 {
		return d, nil
	}
	if len(lines) < 4 {
		return d, errors.New("delegation check ended early")
	}
	name, ok1 := strings.CutPrefix(lines[1], markUser)
	groups, ok2 := strings.CutPrefix(lines[2], markGroups)
	if !ok1 || !ok2 || checkAccount(name) != nil {
		return d, fmt.Errorf("delegation check printed %q, %q, want the account's name and groups", lines[1], lines[2])
	}
	d.account.Name, d.account.Groups = name, strings.Fields(groups)
	var cur *string
	for _, line := range lines[3:] {
		mark, st, out := "", (*int)(nil), (*string)(nil)
		switch {
		case strings.HasPrefix(line, markAllow):
			mark, st, out = markAllow, &d.allowStatus, &d.allow
		case strings.HasPrefix(line, markUpper):
			mark, st, out = markUpper, &d.parentStatus, &d.parent
			d.parentRan = true
		}
		if out != nil {
			if *st, err = strconv.Atoi(strings.TrimPrefix(line, mark)); err != nil {
				return d, fmt.Errorf("delegation check printed %q", line)
			}
			cur = out
			continue
		}
		if cur == nil {
			return d, fmt.Errorf("delegation check printed %q before zfs allow's output", line)
		}
		*cur += line + "\n"
	}
	if cur == nil {
		return d, errors.New("delegation check printed no zfs allow output")
	}
	// printf's own newline, and the last line's.
	d.allow = strings.TrimRight(d.allow, "\n")
	d.parent = strings.TrimRight(d.parent, "\n")
	return d, nil
}

// CheckDelegation checks, before anything is changed, that the account
// zfs runs as on the side holds the delegated permissions needs names:
// on the side's dataset, or for a destination not created yet on its
// parent, where zfs receive will create it. It returns a permanent
// *MissingPermissionError naming each one missing and the zfs allow
// command that grants it; nil when they are all there, or when the
// account is root (no command runs for a local root, a remote side that
// logs in as root, by USER@ or by ssh's configuration, or --sudo). It
// costs one command, over the side's shared ssh connection.
//
// Where the check itself cannot run or its output cannot be read, it
// logs a warning and returns nil: zfs still decides, and the job's own
// commands report what fails.
func (e *Endpoint) CheckDelegation(ctx context.Context, needs []Need) error {
	if len(needs) == 0 || e.side.Local() && os.Geteuid() == 0 || !e.side.Local() && (e.side.User == "root" || e.opts.Sudo) {
		return nil
	}
	if !e.side.Local() && e.side.User == "" {
		// ssh's configuration names the account without contacting the host.
		if name, err := LoginName(ctx, e.side, e.opts.SSH); err == nil && name == "root" {
			return nil
		}
	}
	parent := ""
	if e.opts.Role == "destination" {
		parent = pdu.Parent(e.side.Dataset)
	}
	req, allow, allowParent := delegationArgv(e.side.Dataset, parent)
	out, err := e.outputRequest(ctx, allow, req)
	if err != nil {
		e.log.Warn("cannot read the delegated zfs permissions; not checked", "side", e.side.String(), "err", err)
		return nil
	}
	d, err := parseDelegationOutput(out)
	if err != nil {
		e.log.Warn("cannot read the delegated zfs permissions; not checked", "side", e.side.String(), "err", err)
		return nil
	}
	if d.account.UID == 0 {
		return nil
	}
	e.door.recordArgv(allow)
	dataset, exists, text := e.side.Dataset, true, d.allow
	if d.allowStatus != 0 {
		if !d.parentRan {
			// A source that does not exist: its listing says so.
			e.log.Debug("zfs allow failed; not checked", "side", e.side.String(), "output", d.allow)
			return nil
		}
		e.door.recordArgv(allowParent)
		if d.parentStatus != 0 {
			e.log.Debug("zfs allow of the parent failed; not checked", "side", e.side.String(), "output", d.parent)
			return nil
		}
		dataset, exists, text = parent, false, d.parent
	}
	ds, err := ParseAllow(text, dataset)
	if err != nil {
		e.log.Warn("cannot read the delegated zfs permissions; not checked", "side", e.side.String(), "err", err)
		return nil
	}
	missing := ds.Missing(d.account, dataset, exists, needs)
	e.log.Debug("delegated zfs permissions", "side", e.side.String(), "account", d.account.Name, "dataset", dataset, "missing", Permissions(missing))
	if len(missing) == 0 {
		return nil
	}
	return errMissing(&MissingPermissionError{Role: e.opts.Role, Side: e.side, Account: d.account.Name, Missing: missing,
		Grant: GrantDataset(e.opts.Role, e.side.Dataset)})
}
