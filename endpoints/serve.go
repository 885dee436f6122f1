package endpoints

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/zrep/zrep/pdu"
)

// A served side (`zrep serve`, an ssh forced command) runs only the
// requests that a zrep run of its role needs under its dataset. The
// requests are data (ParseRequest); this file decides which to run.

// ServeRole is what a served key may do.
type ServeRole int

// The roles.
const (
	// ReceiveOnly is the destination of a push: listing, receiving
	// (resumable, unmounted), discarding partial state, placeholders.
	ReceiveOnly ServeRole = iota + 1
	// SendOnly is the source of a pull: listing, estimates, sending,
	// zrep's cursor bookmarks and holds.
	SendOnly
)

func (r ServeRole) String() string {
	if r == SendOnly {
		return "--send-only"
	}
	return "--receive-only"
}

// ServePolicy is one served key's role, dataset and widenings.
type ServePolicy struct {
	Role    ServeRole
	Dataset string
	// AllowPrune lets the client destroy snapshots under Dataset.
	AllowPrune bool
	// AllowRollback lets the client roll back and receive with -F.
	AllowRollback bool
	// AllowSnapshot lets a send-only client take snapshots.
	AllowSnapshot bool
}

func (p ServePolicy) String() string {
	s := p.Role.String() + " " + p.Dataset
	for _, f := range []struct {
		on   bool
		name string
	}{{p.AllowPrune, "--allow-prune"}, {p.AllowRollback, "--allow-rollback"}, {p.AllowSnapshot, "--allow-snapshot"}} {
		if f.on {
			s += " " + f.name
		}
	}
	return s
}

// ServeFacts answers the questions a check cannot answer from the request
// alone; they are asked of the served host.
type ServeFacts interface {
	// Placeholder reports whether fs has zrep:placeholder=on set locally.
	Placeholder(fs string) (bool, error)
	// ResumeTarget is the snapshot a resume token sends (its toname).
	ResumeTarget(token string) (string, error)
	// ServedGroup says whether pid leads a process group that zrep serve
	// started for a request of the same policy, as the same user; an
	// error says why not.
	ServedGroup(pid int) error
}

// Refusal is a request the policy does not allow; Error is the line the
// client sees.
type Refusal struct{ reason string }

func (r *Refusal) Error() string { return "refused: " + r.reason }

func refuse(format string, a ...any) error {
	return &Refusal{reason: fmt.Sprintf(format, a...)}
}

// serveRule allows one zfs subcommand (or one other program) to a role.
type serveRule struct {
	command string    // argv[0] and, for zfs, the subcommand
	roles   ServeRole // 0: both roles
	allows  string    // what the check lets through, for the reader
	check   func(p ServePolicy, f ServeFacts, args []string) error
}

// serveTable is everything a served key can run; anything not here is
// refused. The checks below hold each argv to the exact forms that zrep's
// own builders (argv.go, snapshot.go, compress.go) write: options are
// separate words from a fixed set, before the operands, and every name is
// the served dataset or below it.
var serveTable = []serveRule{
	{"zfs version", 0, "exactly that: the probe", checkVersion},
	{"zfs get", 0, "-H -p -r -d N -t -o -s -j, properties, datasets at or below DATASET; the type of DATASET's parent (-H -o value type)", checkGet},
	{"zfs list", 0, "-H -p -r -d N -t -o -s -S -j, datasets at or below DATASET", checkList},
	{"zfs holds", 0, "-H -r, snapshots at or below DATASET", checkHolds},
	{"zfs allow", 0, "reading the delegations of one dataset at or below DATASET, or of DATASET's parent (no options)", checkAllowRead},
	{"zfs send", SendOnly, "-nvP -w -c -L -p, -i/-I FROM, a snapshot at or below DATASET; -t TOKEN of one", checkSend},
	{"zfs bookmark", SendOnly, "a snapshot at or below DATASET to a zrep_ cursor bookmark of its filesystem", checkBookmark},
	{"zfs hold", SendOnly, "a zrep_ tag on snapshots at or below DATASET", checkHold},
	{"zfs release", SendOnly, "a zrep_ tag from snapshots at or below DATASET", checkRelease},
	{"zfs snapshot", SendOnly, "with --allow-snapshot: -r, snapshots at or below DATASET", checkSnapshot},
	{"zfs destroy", 0, "with --allow-prune: snapshots at or below DATASET (fs@a,b,c); send-only: zrep_ cursor bookmarks", checkDestroy},
	{"zfs receive", ReceiveOnly, "-u -s -o/-x PROP into a filesystem at or below DATASET; -F only into a placeholder or with --allow-rollback; -A", checkReceive},
	{"zfs create", ReceiveOnly, "exactly a placeholder: -o canmount=off -o zrep:placeholder=on [-o encryption=off] FS", checkCreate},
	{"zfs set", ReceiveOnly, "exactly zrep:placeholder=off or canmount=on (clearing a placeholder)", checkSet},
	{"zfs rollback", ReceiveOnly, "with --allow-rollback: -r to a snapshot at or below DATASET", checkRollback},
	{"zstd", 0, "--version (the probe of --compress)", checkCodecVersion},
	{"lz4", 0, "--version", checkCodecVersion},
	{"gzip", 0, "--version", checkCodecVersion},
	{"mbuffer", 0, "-V (the probe of --buffer)", checkBufferVersion},
}

// Check decides whether req may run under p: nil, or a *Refusal (or an
// error of a fact that could not be read).
func (p ServePolicy) Check(req Request, f ServeFacts) error {
	switch req.Kind {
	case RequestRun:
		return p.checkArgv(req.Words, f)
	case RequestKill:
		if len(req.Words) != 1 {
			return refuse("a kill takes one process id")
		}
		pid, err := strconv.Atoi(req.Words[0])
		if err != nil || pid <= 1 || strconv.Itoa(pid) != req.Words[0] {
			return refuse("a kill takes one process id")
		}
		if err := f.ServedGroup(pid); err != nil {
			return refuse("kill of process group %d: %v", pid, err)
		}
		return nil
	case RequestPipeline:
		argvs, err := req.Groups()
		if err != nil {
			return refuse("%v", err)
		}
		return p.checkPipeline(argvs, f)
	case RequestDelegation:
		argvs, err := req.Groups()
		if err != nil {
			return refuse("%v", err)
		}
		if len(argvs) != 1 && len(argvs) != 2 {
			return refuse("a delegation check reads zfs allow of a dataset and perhaps its parent, not %d commands", len(argvs))
		}
		for _, argv := range argvs {
			if z := withoutSudo(argv); len(z) != 3 || z[0] != "zfs" || z[1] != "allow" {
				return refuse("a delegation check runs zfs allow DATASET, not %s", describeArgv(argv))
			}
			if err := p.checkArgv(argv, f); err != nil {
				return err
			}
		}
		return nil
	case RequestStartup, RequestListing:
		argvs, err := req.Groups()
		if err != nil {
			return refuse("%v", err)
		}
		listings := argvs
		if req.Kind == RequestStartup {
			if len(argvs) != 9 && len(argvs) != 10 {
				return refuse("a start-up request has 9 or 10 commands, not %d", len(argvs))
			}
			if !slices.Equal(withoutSudo(argvs[0]), versionArgv()) {
				return refuse("a start-up request begins with zfs version, not %s", describeArgv(argvs[0]))
			}
			listings = argvs[1:]
		} else if len(argvs) != 4 {
			return refuse("a listing request has 4 commands, not %d", len(argvs))
		}
		for _, argv := range listings {
			if z := withoutSudo(argv); len(z) < 2 || z[0] != "zfs" || z[1] != "get" && z[1] != "list" {
				return refuse("a listing runs zfs get or zfs list, not %s", describeArgv(argv))
			}
			if err := p.checkArgv(argv, f); err != nil {
				return err
			}
		}
		return nil
	}
	return refuse("unknown request")
}

// checkPipeline allows one program, any argv the table allows (a command
// that carries no stream runs as a one-program pipeline too, so that zrep
// can end it whole), or a stream through a codec, a buffer or both: zfs
// send, then a compressor, then mbuffer (send-only), or mbuffer, then a
// decompressor, then zfs receive (receive-only).
func (p ServePolicy) checkPipeline(argvs [][]string, f ServeFacts) error {
	want := "send"
	if p.Role == ReceiveOnly {
		want = "receive"
	}
	if len(argvs) > 1 {
		// The buffer is the program that meets the link.
		end := len(argvs) - 1
		if p.Role == ReceiveOnly {
			end = 0
		}
		if isBufferStage(argvs[end]) {
			argvs = slices.Delete(slices.Clone(argvs), end, end+1)
			if len(argvs) == 1 {
				if z := withoutSudo(argvs[0]); len(z) < 2 || z[0] != "zfs" || z[1] != want {
					return refuse("a stream through a buffer under %s runs zfs %s, not %s", p.Role, want, describeArgv(argvs[0]))
				}
			}
		}
	}
	zfs, codec := 0, 1
	if p.Role == ReceiveOnly {
		zfs, codec = 1, 0
	}
	switch len(argvs) {
	case 1:
		return p.checkArgv(argvs[0], f)
	case 2:
	default:
		return refuse("a stream runs zfs %s, at most one codec and at most one buffer, not %d programs", want, len(argvs))
	}
	if z := withoutSudo(argvs[zfs]); len(z) < 2 || z[0] != "zfs" || z[1] != want {
		return refuse("a stream through a codec under %s runs zfs %s, not %s", p.Role, want, describeArgv(argvs[zfs]))
	}
	if !isCodecStage(argvs[codec], p.Role == SendOnly) {
		return refuse("%s is not one of zrep's codecs in a zfs %s stream", describeArgv(argvs[codec]), want)
	}
	return p.checkArgv(argvs[zfs], f)
}

// isCodecStage reports whether argv is the program of one of the codecs,
// compressing (send) or decompressing, exactly as zrep runs it.
func isCodecStage(argv []string, send bool) bool {
	for _, c := range []Codec{CodecZstd, CodecLZ4, CodecGzip, CodecAuto} {
		want := c.decompressArgv()
		if send {
			want = c.compressArgv()
		}
		if slices.Equal(argv, want) {
			return true
		}
	}
	return false
}

// withoutSudo is argv without a leading `sudo -n` before zfs.
func withoutSudo(argv []string) []string {
	if len(argv) > 2 && argv[0] == "sudo" && argv[1] == "-n" && argv[2] == "zfs" {
		return argv[2:]
	}
	return argv
}

// checkArgv checks one argv against serveTable. A zfs command may come
// through `sudo -n` (--sudo), for an account that runs zfs so: the zfs
// argv is what is checked.
func (p ServePolicy) checkArgv(argv []string, f ServeFacts) error {
	argv = withoutSudo(argv)
	if len(argv) == 0 {
		return refuse("empty command")
	}
	command, args := argv[0], argv[1:]
	if argv[0] == "zfs" {
		if len(argv) < 2 {
			return refuse("zfs without a subcommand")
		}
		command, args = "zfs "+argv[1], argv[2:]
	}
	for _, r := range serveTable {
		if r.command != command {
			continue
		}
		if r.roles != 0 && r.roles != p.Role {
			return refuse("%s is not allowed under %s %s", command, p.Role, p.Dataset)
		}
		return r.check(p, f, args)
	}
	return refuse("%s is not allowed under %s %s", describeCommand(command), p.Role, p.Dataset)
}

// describeCommand names a command that is not in the table for the
// refusal, quoted where it is not a plain word.
func describeCommand(c string) string {
	for _, r := range c {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == ' ' || r == '-' || r == '_' || r == '.') {
			return strconv.Quote(c)
		}
	}
	return c
}

// describeArgv is argv for a message, each word quoted.
func describeArgv(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = strconv.Quote(a)
	}
	return strings.Join(q, " ")
}

// option is one option word of an argv and its argument, if it takes one.
type option struct{ flag, arg string }

// splitOptions reads args as zrep writes them: options first, each a word
// of its own from spec (true: it takes the next word as its argument),
// then operands, none of which starts with '-' (so that no zfs reorders
// one into an option).
func splitOptions(command string, args []string, spec map[string]bool) ([]option, []string, error) {
	var opts []option
	i := 0
	for ; i < len(args) && strings.HasPrefix(args[i], "-"); i++ {
		takes, ok := spec[args[i]]
		if !ok {
			return nil, nil, refuse("%s: option %q is not allowed", command, args[i])
		}
		o := option{flag: args[i]}
		if takes {
			if i+1 == len(args) {
				return nil, nil, refuse("%s: option %s needs an argument", command, args[i])
			}
			i++
			o.arg = args[i]
		}
		opts = append(opts, o)
	}
	operands := args[i:]
	for _, a := range operands {
		if strings.HasPrefix(a, "-") {
			return nil, nil, refuse("%s: option %q after the operands is not allowed", command, a)
		}
	}
	return opts, operands, nil
}

func hasFlag(opts []option, flag string) bool {
	return slices.ContainsFunc(opts, func(o option) bool { return o.flag == flag })
}

// under checks that name (a dataset, or a snapshot or bookmark of one) is
// p's dataset or below it: the dataset part is the served one, or starts
// with it and a '/'. kinds says which forms are allowed: "fs" a
// filesystem or volume, "@" a snapshot, "#" a bookmark.
func (p ServePolicy) under(command, name string, kinds ...string) (fs, version string, err error) {
	fs, version, sep := name, "", "fs"
	if i := strings.IndexAny(name, "@#"); i >= 0 {
		fs, sep, version = name[:i], name[i:i+1], name[i+1:]
	}
	if !slices.Contains(kinds, sep) {
		what := map[string]string{"fs": "a filesystem", "@": "a snapshot", "#": "a bookmark"}[sep]
		return "", "", refuse("%s: %q is %s, which is not allowed here", command, name, what)
	}
	if err := CheckDatasetName(fs); err != nil {
		return "", "", refuse("%s: %v", command, err)
	}
	if sep != "fs" {
		if err := checkVersionName(version); err != nil {
			return "", "", refuse("%s: %v", command, err)
		}
	}
	if fs != p.Dataset && !strings.HasPrefix(fs, p.Dataset+"/") {
		return "", "", refuse("%s: %s is outside %s, the only dataset this key may use (%s)", command, fs, p.Dataset, p.Role)
	}
	return fs, version, nil
}

func checkVersion(p ServePolicy, f ServeFacts, args []string) error {
	if len(args) != 0 {
		return refuse("zfs version takes no arguments")
	}
	return nil
}

func checkBufferVersion(p ServePolicy, f ServeFacts, args []string) error {
	if !slices.Equal(args, []string{"-V"}) {
		return refuse("mbuffer runs here only as -V or in a stream")
	}
	return nil
}

func checkCodecVersion(p ServePolicy, f ServeFacts, args []string) error {
	if !slices.Equal(args, []string{"--version"}) {
		return refuse("a codec's program runs here only as --version or in a stream")
	}
	return nil
}

// listOptions are the options of zfs get and zfs list that only choose
// what is printed and how.
var listOptions = map[string]bool{
	"-H": false, "-p": false, "-r": false, "-j": false, "--json-int": false,
	"-d": true, "-t": true, "-o": true, "-s": true, "-S": true,
}

// checkListOptions checks the values of list options: a depth, types,
// fields, property names.
func checkListOptions(command string, opts []option) error {
	for _, o := range opts {
		switch o.flag {
		case "-d":
			if n, err := strconv.Atoi(o.arg); err != nil || n < 0 || strconv.Itoa(n) != o.arg {
				return refuse("%s: -d %q is not a depth", command, o.arg)
			}
		case "-t", "-o", "-s", "-S":
			for _, w := range strings.Split(o.arg, ",") {
				if err := CheckPropertyName(w); err != nil {
					return refuse("%s %s: %v", command, o.flag, err)
				}
			}
		}
	}
	return nil
}

func checkGet(p ServePolicy, f ServeFacts, args []string) error {
	// The destination's parent check (typeArgv): its type, and no more.
	if parent := pdu.Parent(p.Dataset); parent != "" && slices.Equal(args, typeArgv(parent)[2:]) {
		return nil
	}
	opts, operands, err := splitOptions("zfs get", args, listOptions)
	if err != nil {
		return err
	}
	if hasFlag(opts, "-S") {
		return refuse("zfs get: option -S is not allowed")
	}
	if err := checkListOptions("zfs get", opts); err != nil {
		return err
	}
	if len(operands) < 2 {
		return refuse("zfs get: properties and at least one dataset at or below %s are needed", p.Dataset)
	}
	for _, prop := range strings.Split(operands[0], ",") {
		if err := CheckPropertyName(prop); err != nil {
			return refuse("zfs get: %v", err)
		}
	}
	for _, name := range operands[1:] {
		if _, _, err := p.under("zfs get", name, "fs", "@", "#"); err != nil {
			return err
		}
	}
	return nil
}

func checkList(p ServePolicy, f ServeFacts, args []string) error {
	opts, operands, err := splitOptions("zfs list", args, listOptions)
	if err != nil {
		return err
	}
	if err := checkListOptions("zfs list", opts); err != nil {
		return err
	}
	if len(operands) == 0 {
		return refuse("zfs list: at least one dataset at or below %s is needed", p.Dataset)
	}
	for _, name := range operands {
		if _, _, err := p.under("zfs list", name, "fs", "@", "#"); err != nil {
			return err
		}
	}
	return nil
}

func checkHolds(p ServePolicy, f ServeFacts, args []string) error {
	_, operands, err := splitOptions("zfs holds", args, map[string]bool{"-H": false, "-r": false})
	if err != nil {
		return err
	}
	if len(operands) == 0 {
		return refuse("zfs holds: at least one snapshot is needed")
	}
	for _, name := range operands {
		if _, _, err := p.under("zfs holds", name, "@"); err != nil {
			return err
		}
	}
	return nil
}

// checkAllowRead allows `zfs allow DATASET`, which only prints who may do
// what there: a client's check of its delegations before it plans.
func checkAllowRead(p ServePolicy, f ServeFacts, args []string) error {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		return refuse("zfs allow: only reading one dataset's delegations (zfs allow DATASET), never granting")
	}
	if parent := pdu.Parent(p.Dataset); parent != "" && args[0] == parent {
		return nil
	}
	_, _, err := p.under("zfs allow", args[0], "fs")
	return err
}

func checkSend(p ServePolicy, f ServeFacts, args []string) error {
	opts, operands, err := splitOptions("zfs send", args, map[string]bool{
		"-nvP": false, "-w": false, "-c": false, "-L": false, "-p": false,
		"-i": true, "-I": true, "-t": true,
	})
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, o := range opts {
		if seen[o.flag] {
			return refuse("zfs send: option %s given twice", o.flag)
		}
		seen[o.flag] = true
	}
	if seen["-i"] && seen["-I"] {
		return refuse("zfs send: -i and -I together")
	}
	if seen["-t"] {
		var token string
		for _, o := range opts {
			switch o.flag {
			case "-t":
				token = o.arg
			case "-nvP":
			default:
				return refuse("zfs send -t: option %s is not allowed with a resume token", o.flag)
			}
		}
		if len(operands) != 0 {
			return refuse("zfs send -t takes no operand")
		}
		if err := checkResumeToken(token); err != nil {
			return refuse("zfs send: %v", err)
		}
		target, err := f.ResumeTarget(token)
		if err != nil {
			return refuse("zfs send -t: cannot read what the resume token sends: %v", err)
		}
		_, _, err = p.under("zfs send -t", target, "@")
		return err
	}
	if len(operands) != 1 {
		return refuse("zfs send: one snapshot to send, not %d operands", len(operands))
	}
	for _, o := range opts {
		if o.flag == "-i" || o.flag == "-I" {
			if _, _, err := p.under("zfs send "+o.flag, o.arg, "@", "#"); err != nil {
				return err
			}
		}
	}
	_, _, err = p.under("zfs send", operands[0], "@")
	return err
}

// zrepName reports whether a hold tag or bookmark name is zrep's own.
func zrepName(name string) bool { return strings.HasPrefix(name, "zrep_") }

func checkBookmark(p ServePolicy, f ServeFacts, args []string) error {
	if len(args) != 2 {
		return refuse("zfs bookmark: a snapshot and a bookmark name")
	}
	snapFS, _, err := p.under("zfs bookmark", args[0], "@")
	if err != nil {
		return err
	}
	markFS, mark, err := p.under("zfs bookmark", args[1], "#")
	if err != nil {
		return err
	}
	if markFS != snapFS || !zrepName(mark) {
		return refuse("zfs bookmark: only zrep's cursor (%s#zrep_...) of the snapshot's own filesystem", snapFS)
	}
	return nil
}

func checkHold(p ServePolicy, f ServeFacts, args []string) error {
	return checkHoldTagAndSnapshots(p, "zfs hold", args)
}

func checkRelease(p ServePolicy, f ServeFacts, args []string) error {
	return checkHoldTagAndSnapshots(p, "zfs release", args)
}

func checkHoldTagAndSnapshots(p ServePolicy, command string, args []string) error {
	if len(args) < 2 {
		return refuse("%s: a tag and snapshots", command)
	}
	if err := checkHoldTag(args[0]); err != nil || !zrepName(args[0]) {
		return refuse("%s: only zrep's own tags (zrep_...), not %q", command, args[0])
	}
	for _, name := range args[1:] {
		if _, _, err := p.under(command, name, "@"); err != nil {
			return err
		}
	}
	return nil
}

func checkSnapshot(p ServePolicy, f ServeFacts, args []string) error {
	if !p.AllowSnapshot {
		return refuse("zfs snapshot is not allowed under %s %s (serve it with --allow-snapshot)", p.Role, p.Dataset)
	}
	_, operands, err := splitOptions("zfs snapshot", args, map[string]bool{"-r": false})
	if err != nil {
		return err
	}
	if len(operands) == 0 {
		return refuse("zfs snapshot: at least one snapshot name")
	}
	for _, name := range operands {
		if _, _, err := p.under("zfs snapshot", name, "@"); err != nil {
			return err
		}
	}
	return nil
}

func checkDestroy(p ServePolicy, f ServeFacts, args []string) error {
	if p.Role == ReceiveOnly && !p.AllowPrune {
		return refuse("zfs destroy is not allowed under %s %s (serve it with --allow-prune to let zrep prune snapshots)", p.Role, p.Dataset)
	}
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		return refuse("zfs destroy under %s %s: only %s, as one operand without options", p.Role, p.Dataset, destroyAllowed(p))
	}
	name := args[0]
	i := strings.IndexAny(name, "@#")
	switch {
	case i < 0:
		return refuse("zfs destroy of a filesystem (%s) is never allowed under %s %s", name, p.Role, p.Dataset)
	case name[i] == '#':
		_, mark, err := p.under("zfs destroy", name, "#")
		if err != nil {
			return err
		}
		if p.Role != SendOnly || !zrepName(mark) {
			return refuse("zfs destroy of bookmark %s is not allowed under %s %s; only %s", name, p.Role, p.Dataset, destroyAllowed(p))
		}
		return nil
	}
	if !p.AllowPrune {
		return refuse("zfs destroy of snapshots is not allowed under %s %s (serve it with --allow-prune to let zrep prune snapshots)", p.Role, p.Dataset)
	}
	// fs@a,b,c: each a plain snapshot name, no range (%).
	for _, snap := range strings.Split(name[i+1:], ",") {
		if _, _, err := p.under("zfs destroy", name[:i]+"@"+snap, "@"); err != nil {
			return err
		}
	}
	return nil
}

// destroyAllowed says what a destroy may remove under p, which allows
// some.
func destroyAllowed(p ServePolicy) string {
	var what []string
	if p.AllowPrune {
		what = append(what, "snapshots (fs@a,b,c)")
	}
	if p.Role == SendOnly {
		what = append(what, "zrep's cursor bookmarks (fs#zrep_...)")
	}
	return strings.Join(what, " and ")
}

// receiveSetRefused are properties a client may not set on a receive:
// zrep's own mark, which allows -F, and where a backup would be mounted
// or shared, unless to a value that mounts or shares nothing.
var receiveSetRefused = map[string][]string{
	propPlaceholder: nil,
	"mountpoint":    {"none", "legacy"},
	"canmount":      {"off", "noauto"},
	"sharenfs":      {"off"},
	"sharesmb":      {"off"},
}

func checkReceive(p ServePolicy, f ServeFacts, args []string) error {
	opts, operands, err := splitOptions("zfs receive", args, map[string]bool{
		"-u": false, "-F": false, "-s": false, "-A": false, "-o": true, "-x": true,
	})
	if err != nil {
		return err
	}
	if len(operands) != 1 {
		return refuse("zfs receive: one filesystem at or below %s, not %d operands", p.Dataset, len(operands))
	}
	fs, _, err := p.under("zfs receive", operands[0], "fs")
	if err != nil {
		return err
	}
	if hasFlag(opts, "-A") {
		if len(opts) != 1 {
			return refuse("zfs receive -A takes no other option")
		}
		return nil
	}
	if !hasFlag(opts, "-u") {
		return refuse("zfs receive: only unmounted (-u)")
	}
	for _, o := range opts {
		switch o.flag {
		case "-o":
			name, value, ok := strings.Cut(o.arg, "=")
			if !ok {
				return refuse("zfs receive -o %q: not PROPERTY=VALUE", o.arg)
			}
			if err := CheckProperty(pdu.Property{Name: name, Value: value}); err != nil {
				return refuse("zfs receive -o: %v", err)
			}
			if safe, ok := receiveSetRefused[name]; ok && !slices.Contains(safe, value) {
				return refuse("zfs receive -o %s=%s is not allowed under %s %s", name, value, p.Role, p.Dataset)
			}
		case "-x":
			if err := CheckPropertyName(o.arg); err != nil {
				return refuse("zfs receive -x: %v", err)
			}
		}
	}
	if hasFlag(opts, "-F") && !p.AllowRollback {
		// SPEC 1: a placeholder is overwritten by a full receive.
		ok, err := f.Placeholder(fs)
		if err != nil {
			return refuse("zfs receive -F into %s: cannot tell whether it is a placeholder: %v", fs, err)
		}
		if !ok {
			return refuse("zfs receive -F into %s is not allowed under %s %s: it is not a placeholder (serve it with --allow-rollback)", fs, p.Role, p.Dataset)
		}
	}
	return nil
}

func checkCreate(p ServePolicy, f ServeFacts, args []string) error {
	placeholder := []string{"-o", "canmount=off", "-o", propPlaceholder + "=on"}
	// encryption=off: a placeholder below an encryption root whose key is
	// not loaded (it holds no data).
	unencrypted := append(slices.Clone(placeholder), "-o", "encryption=off")
	if len(args) != len(placeholder)+1 && len(args) != len(unencrypted)+1 ||
		!slices.Equal(args[:len(args)-1], placeholder) && !slices.Equal(args[:len(args)-1], unencrypted) {
		return refuse("zfs create: only a placeholder (zfs create -o canmount=off -o %s=on [-o encryption=off] FS)", propPlaceholder)
	}
	_, _, err := p.under("zfs create", args[len(args)-1], "fs")
	return err
}

func checkSet(p ServePolicy, f ServeFacts, args []string) error {
	if len(args) != 2 || args[0] != propPlaceholder+"=off" && args[0] != "canmount=on" {
		return refuse("zfs set: only %s=off or canmount=on (clearing a placeholder)", propPlaceholder)
	}
	_, _, err := p.under("zfs set", args[1], "fs")
	return err
}

func checkRollback(p ServePolicy, f ServeFacts, args []string) error {
	if !p.AllowRollback {
		return refuse("zfs rollback is not allowed under %s %s (serve it with --allow-rollback)", p.Role, p.Dataset)
	}
	if len(args) != 2 || args[0] != "-r" {
		return refuse("zfs rollback: only -r to a snapshot")
	}
	_, _, err := p.under("zfs rollback", args[1], "@")
	return err
}

// IsRefusal reports whether err is a request the policy refused.
func IsRefusal(err error) bool {
	var r *Refusal
	return errors.As(err, &r)
}
