package endpoints

import (
	"errors"
	"fmt"
	"strings"

	"github.com/zrep/zrep/pdu"
)

// The builders below are pure: they turn requests into zfs argv and check
// the names they put in it, so that every command zrep runs can be read and
// tested here. None of them runs anything.

// versionArgv probes for OpenZFS: zfs-fuse and other old ports have no
// `zfs version`.
func versionArgv() []string { return []string{"zfs", "version"} }

// listArgv lists root's filesystems, volumes, snapshots and, where the
// platform has them, bookmarks, in one command. Non-recursive: depth 1,
// which takes the root's own snapshots, and its direct children too, which
// the caller drops (zfs has no "snapshots of this one only" depth).
// zfs-fuse's `zfs get` has no -t but lists snapshots with -r and -d anyway.
//
// extra names more native properties to list (userrefs, for pruning and
// holds). It lists no user property: their values are free text, read
// apart (sourcesArgv, valuesArgv).
func listArgv(root string, recursive bool, caps Capabilities, extra ...string) []string {
	argv := []string{"zfs", "get", "-H", "-p"}
	if recursive {
		argv = append(argv, "-r")
	} else {
		argv = append(argv, "-d", "1")
	}
	props := []string{propType, propGuid, propCreateTXG, propCreation, propOrigin}
	if caps.ListTypes {
		types := "filesystem,volume,snapshot"
		if caps.Bookmarks {
			types += ",bookmark"
		}
		argv = append(argv, "-t", types)
	}
	if caps.ResumeTokens {
		props = append(props, propResumeToken)
	}
	if caps.Encryption {
		props = append(props, propEncryption, propEncryptionRoot, propKeyStatus)
	}
	props = append(props, extra...)
	return append(argv, "-o", "name,property,value,source", strings.Join(props, ","), root)
}

// userProps are zrep's own user properties: zrep:placeholder marks a
// dataset zrep made only to hold children; zrep:sync off leaves a source
// filesystem out (SPEC 15).
var userProps = []string{propPlaceholder, propSync}

// depthArgs are listArgv's depth flags.
func depthArgs(recursive bool) []string {
	if recursive {
		return []string{"-r"}
	}
	return []string{"-d", "1"}
}

// sourcesArgv lists where zrep's user properties are set on root (and its
// descendants, as deep as listArgv goes): name, property and source, no
// value. None of them can hold a tab or newline, so no value can forge a
// line of it.
func sourcesArgv(root string, recursive bool, caps Capabilities) []string {
	argv := append([]string{"zfs", "get", "-H", "-o", "name,property,source", "-s", "local,received,inherited"}, depthArgs(recursive)...)
	if caps.ListTypes {
		argv = append(argv, "-t", "filesystem,volume")
	}
	return append(argv, strings.Join(userProps, ","), root)
}

// valuesArgv lists the values of zrep's user properties that are set
// (locally or received) on root and its descendants, as sourcesArgv
// lists them, in the same order.
func valuesArgv(root string, recursive bool, caps Capabilities) []string {
	argv := append([]string{"zfs", "get", "-H", "-o", "name,property,value", "-s", "local,received"}, depthArgs(recursive)...)
	if caps.ListTypes {
		argv = append(argv, "-t", "filesystem,volume")
	}
	return append(argv, strings.Join(userProps, ","), root)
}

// rootValuesArgv lists the values root inherits from above it.
func rootValuesArgv(root string) []string {
	return []string{"zfs", "get", "-H", "-o", "name,property,value", "-s", "inherited", strings.Join(userProps, ","), root}
}

// userValueArgv reads one property of one dataset alone: its output, less
// one trailing newline, is the value, whatever it holds.
func userValueArgv(ds, prop string) ([]string, error) {
	if _, err := checkZFSName([]byte(ds)); err != nil {
		return nil, fmt.Errorf("read %s of %q: %w", prop, ds, err)
	}
	if err := CheckPropertyName(prop); err != nil {
		return nil, err
	}
	return []string{"zfs", "get", "-H", "-o", "value", prop, ds}, nil
}

// versionsArgv lists one filesystem's snapshots and bookmarks.
func versionsArgv(fs string, caps Capabilities) []string {
	argv := []string{"zfs", "get", "-H", "-p", "-d", "1"}
	if caps.ListTypes {
		types := "snapshot"
		if caps.Bookmarks {
			types += ",bookmark"
		}
		argv = append(argv, "-t", types)
	}
	props := []string{propType, propGuid, propCreateTXG, propCreation}
	return append(argv, "-o", "name,property,value,source", strings.Join(props, ","), fs)
}

// typeArgv asks only whether ds exists (and what it is).
func typeArgv(ds string) []string {
	return []string{"zfs", "get", "-H", "-o", "value", propType, ds}
}

// sendArgv is `zfs send [FLAGS] [-i|-I FROM] TO` or `zfs send -t TOKEN`; estimate
// adds -nvP, which prints the size and sends nothing.
//
// The operator's stream flags (-w, -c, -L, -p) come before the versions.
// A resumed send gets none of them: the token records the flags of the
// interrupted stream and zfs applies them again.
func sendArgv(req *pdu.SendReq, estimate bool) ([]string, error) {
	argv := []string{"zfs", "send"}
	if estimate {
		argv = append(argv, "-nvP")
	}
	if req.ResumeToken != "" {
		if err := checkResumeToken(req.ResumeToken); err != nil {
			return nil, err
		}
		return append(argv, "-t", req.ResumeToken), nil
	}
	argv = append(argv, sendOptionFlags(req.Options)...)
	if err := CheckDatasetName(req.Filesystem); err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	if req.To == nil || req.To.Type != pdu.Snapshot {
		return nil, fmt.Errorf("send %s: the version sent must be a snapshot", req.Filesystem)
	}
	if err := checkVersionName(req.To.Name); err != nil {
		return nil, fmt.Errorf("send %s: %w", req.Filesystem, err)
	}
	if req.From != nil {
		if err := checkVersionName(req.From.Name); err != nil {
			return nil, fmt.Errorf("send %s: %w", req.Filesystem, err)
		}
		flag := "-i"
		if req.Intermediates {
			flag = "-I"
		}
		fromFS := req.Filesystem
		if req.FromFilesystem != "" {
			// A clone sent from its origin: -i ORIGIN, the origin's full
			// name, and only a snapshot can be an origin.
			if err := CheckDatasetName(req.FromFilesystem); err != nil {
				return nil, fmt.Errorf("send %s from its origin: %w", req.Filesystem, err)
			}
			if req.From.Type != pdu.Snapshot || req.Intermediates {
				return nil, fmt.Errorf("send %s from its origin %s: only -i from a snapshot", req.Filesystem, req.From.FullPath(req.FromFilesystem))
			}
			fromFS = req.FromFilesystem
		}
		argv = append(argv, flag, req.From.FullPath(fromFS))
	}
	return append(argv, req.To.FullPath(req.Filesystem)), nil
}

// sendOptionFlags are the zfs send flags of opts, in a fixed order.
func sendOptionFlags(opts pdu.SendOptions) []string {
	var flags []string
	for _, f := range []struct {
		on   bool
		flag string
	}{
		{opts.Raw, "-w"},
		{opts.Compressed, "-c"},
		{opts.LargeBlocks, "-L"},
		{opts.Props, "-p"},
	} {
		if f.on {
			flags = append(flags, f.flag)
		}
	}
	return flags
}

// resumeInfoArgv asks what a resume token continues.
func resumeInfoArgv(token string) ([]string, error) {
	if err := checkResumeToken(token); err != nil {
		return nil, err
	}
	return []string{"zfs", "send", "-nvP", "-t", token}, nil
}

// checkResumeToken keeps a token from being anything but one: `1-` and hex
// fields separated by '-'.
func checkResumeToken(tok string) error {
	if tok == "" || tok[0] == '-' {
		return fmt.Errorf("invalid resume token %q", tok)
	}
	for _, r := range tok {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F' || r == '-') {
			return fmt.Errorf("invalid resume token: unexpected %q", r)
		}
	}
	return nil
}

// receiveArgv is `zfs receive -u [-F] [-s] [-o PROP=VALUE]... [-x PROP]...
// FS`: never mounted; -F only where zrep may overwrite (a placeholder, or
// --rollback); -s where the platform keeps partial state; -o and -x as the
// operator asked.
func receiveArgv(req *pdu.ReceiveReq, caps Capabilities) ([]string, error) {
	if err := CheckDatasetName(req.Filesystem); err != nil {
		return nil, fmt.Errorf("receive: %w", err)
	}
	argv := []string{"zfs", "receive", "-u"}
	if req.OverwritePlaceholder || req.Rollback {
		argv = append(argv, "-F")
	}
	if req.Resumable && caps.ResumeTokens {
		argv = append(argv, "-s")
	}
	for _, p := range req.Options.Set {
		if err := CheckProperty(p); err != nil {
			return nil, fmt.Errorf("receive %s: %w", req.Filesystem, err)
		}
		argv = append(argv, "-o", p.String())
	}
	for _, name := range req.Options.Exclude {
		if err := CheckPropertyName(name); err != nil {
			return nil, fmt.Errorf("receive %s: %w", req.Filesystem, err)
		}
		argv = append(argv, "-x", name)
	}
	return append(argv, req.Filesystem), nil
}

// CheckPropertyName checks that name can be a ZFS property: a native one
// (`compression`) or a user property (`com.example:backup`), lowercase
// letters, digits and _-.: starting with a letter, which also keeps it
// from reading as an option to zfs.
func CheckPropertyName(name string) error {
	if name == "" {
		return errors.New("empty property name")
	}
	if !(name[0] >= 'a' && name[0] <= 'z') {
		return fmt.Errorf("property name %q does not start with a lowercase letter", name)
	}
	if len(name) > 255 {
		return fmt.Errorf("property name %q is longer than ZFS's limit of 255 characters", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.' || r == ':') {
			return fmt.Errorf("property name %q contains %q; property names allow lowercase letters, digits and _-.:", name, r)
		}
	}
	return nil
}

// CheckProperty checks a property to set: a valid name, and a value
// without NUL or newline.
func CheckProperty(p pdu.Property) error {
	if err := CheckPropertyName(p.Name); err != nil {
		return err
	}
	if strings.ContainsAny(p.Value, "\x00\n") {
		return fmt.Errorf("value of property %s contains a NUL or newline", p.Name)
	}
	return nil
}

// bookmarkArgv creates bookmark fs#name of snapshot snap.
func bookmarkArgv(fs string, snap *pdu.FilesystemVersion, name string) ([]string, error) {
	if err := CheckDatasetName(fs); err != nil {
		return nil, fmt.Errorf("bookmark: %w", err)
	}
	if snap == nil || snap.Type != pdu.Snapshot {
		return nil, fmt.Errorf("bookmark %s#%s: can only bookmark a snapshot", fs, name)
	}
	if err := checkVersionName(snap.Name); err != nil {
		return nil, fmt.Errorf("bookmark %s#%s: %w", fs, name, err)
	}
	if err := checkVersionName(name); err != nil {
		return nil, fmt.Errorf("bookmark %s: %w", fs, err)
	}
	return []string{"zfs", "bookmark", snap.FullPath(fs), fs + "#" + name}, nil
}

// createPlaceholderArgv creates a dataset that only holds children: never
// mounted, marked with zrep:placeholder=on set locally. unencrypted adds
// encryption=off, the only way to create one below an encryption root
// whose key is not loaded; it holds no data, so nothing is stored
// unencrypted, and raw receives below it work.
func createPlaceholderArgv(fs string, unencrypted bool) ([]string, error) {
	if err := CheckDatasetName(fs); err != nil {
		return nil, fmt.Errorf("create placeholder: %w", err)
	}
	argv := []string{"zfs", "create", "-o", "canmount=off", "-o", propPlaceholder + "=on"}
	if unencrypted {
		argv = append(argv, "-o", "encryption=off")
	}
	return append(argv, fs), nil
}

// clearPlaceholderArgvs makes a former placeholder an ordinary filesystem:
// zrep:placeholder=off, and mountable again. canmount cannot be inherited
// (`zfs inherit canmount` is refused), so it is set to its default, on;
// that does not mount it. Where the receive options set canmount
// (--recv-set canmount=noauto), the receive set it over the placeholder's
// off, and it is left as the operator asked.
func clearPlaceholderArgvs(fs string, opts pdu.ReceiveOptions) ([][]string, error) {
	if err := CheckDatasetName(fs); err != nil {
		return nil, fmt.Errorf("clear placeholder: %w", err)
	}
	for _, p := range opts.Set {
		if p.Name == "canmount" {
			return [][]string{{"zfs", "set", propPlaceholder + "=off", fs}}, nil
		}
	}
	return [][]string{
		{"zfs", "set", propPlaceholder + "=off", fs},
		{"zfs", "set", "canmount=on", fs},
	}, nil
}

// rollbackArgv rolls fs back to snapshot to, destroying later snapshots (-r).
func rollbackArgv(fs string, to *pdu.FilesystemVersion) ([]string, error) {
	if err := CheckDatasetName(fs); err != nil {
		return nil, fmt.Errorf("rollback: %w", err)
	}
	if to == nil || to.Type != pdu.Snapshot {
		return nil, fmt.Errorf("rollback %s: can only roll back to a snapshot", fs)
	}
	if err := checkVersionName(to.Name); err != nil {
		return nil, fmt.Errorf("rollback %s: %w", fs, err)
	}
	return []string{"zfs", "rollback", "-r", to.FullPath(fs)}, nil
}

// abortReceiveArgv discards fs's partial receive state.
func abortReceiveArgv(fs string) ([]string, error) {
	if err := CheckDatasetName(fs); err != nil {
		return nil, fmt.Errorf("abort partial receive: %w", err)
	}
	return []string{"zfs", "receive", "-A", fs}, nil
}

// destroyArgv destroys one snapshot or bookmark. One per command, so each
// gets its own result, and zfs-fuse, which has no `a,b,c` lists, works too.
func destroyArgv(fs string, v *pdu.FilesystemVersion) ([]string, error) {
	if err := CheckDatasetName(fs); err != nil {
		return nil, fmt.Errorf("destroy: %w", err)
	}
	if v == nil {
		return nil, fmt.Errorf("destroy %s: no snapshot given", fs)
	}
	if err := checkVersionName(v.Name); err != nil {
		return nil, fmt.Errorf("destroy %s: %w", fs, err)
	}
	return []string{"zfs", "destroy", v.FullPath(fs)}, nil
}

// Section markers of the start-up and listing commands' output. None
// holds a tab, so none can be taken for a line of the native listing or
// the sources listing, which hold no free text; the values, which are free
// text, come after a marker that gives their length in bytes, so that no
// value can imitate what follows them.
const (
	markProbe   = "zrep:probe "
	markList    = "zrep:list"
	markEnd     = "zrep:end "
	markSources = "zrep:sources "
	markValues  = "zrep:values "
	markParent  = "zrep:parent "
)

// listing is the command that lists a side: the native listing (listArgv),
// where it succeeds the sources of zrep's user properties (sourcesArgv),
// and where that succeeds their values (valuesArgv, rootValuesArgv). Its
// output, on stdout:
//
//	zrep:list
//	THE NATIVE LISTING (its stderr is the command's stderr)
//
//	zrep:end STATUS
//	[THE SOURCES LISTING
//
//	zrep:sources STATUS
//	[zrep:values STATUS LENGTH
//	LENGTH BYTES: THE VALUES LISTINGS, AND "x"]]
//
// and it exits with the status of the last of the first two that ran. The
// script runs under LC_ALL=C, so that ${#w} counts bytes.
type listing struct {
	list, sources, values, rootValues []string
}

func newListing(root string, recursive bool, caps Capabilities, extra ...string) listing {
	return listing{
		list:       listArgv(root, recursive, caps, extra...),
		sources:    sourcesArgv(root, recursive, caps),
		values:     valuesArgv(root, recursive, caps),
		rootValues: rootValuesArgv(root),
	}
}

// script is the listing as sh commands, after `printf 'zrep:list\n'`; it
// leaves the native listing's status in $l and the last status in $s.
func (l listing) script() string {
	return quotedLine(l.list) + `; s=$?; l=$s; printf '\n` + markEnd + `%d\n' "$s"; ` +
		`if [ "$s" -eq 0 ]; then ` + quotedLine(l.sources) + `; s=$?; printf '\n` + markSources + `%d\n' "$s"; ` +
		`if [ "$s" -eq 0 ]; then w=$(` + quotedLine(l.values) + ` && ` + quotedLine(l.rootValues) + ` && echo x); ` +
		`printf '` + markValues + `%d %d\n%s' "$?" "${#w}" "$w"; fi; fi`
}

// listingArgv is the listing alone, one command.
func listingArgv(l listing) []string {
	return []string{"sh", "-c", `LC_ALL=C; export LC_ALL; printf '` + markList + `\n'; ` + l.script() + `; exit "$s"`}
}

// startup is the one command that opens a side's first planning round, so
// that it costs one round trip over ssh: `zfs version` (the probe), then
// the listing that fits its answer, then, where the listing fails and
// parent is set (a destination's), whether parent exists. It is a POSIX
// sh script on one line (csh, a remote login shell on some systems, takes
// no newline inside quotes), built only from the shell-quoted argvs of
// versionArgv, the listing's and typeArgv: no name reaches the shell
// unquoted. Its output, on stdout:
//
//	zrep:probe STATUS
//	VERSION'S OUTPUT (stdout and stderr)
//	THE LISTING'S OUTPUT (see listing)
//	[THE PARENT CHECK'S OUTPUT (stdout and stderr)
//
//	zrep:parent STATUS]
//
// and it exits as the listing does.
type startup struct {
	argv                             []string
	version, openZFS, legacy, parent []string
	// The listings for each answer of the probe.
	openZFSListing, legacyListing listing
}

func startupArgv(root string, recursive bool, parent string, extra ...string) startup {
	s := startup{
		version:        versionArgv(),
		openZFSListing: newListing(root, recursive, openZFS2, extra...),
		legacyListing:  newListing(root, recursive, Capabilities{}, extra...),
	}
	s.openZFS, s.legacy = s.openZFSListing.list, s.legacyListing.list
	script := `LC_ALL=C; export LC_ALL; v=$(` + quotedLine(s.version) + ` 2>&1); s=$?; o=$s; printf '` + markProbe + `%d\n%s\n` + markList + `\n' "$s" "$v"; ` +
		`if [ "$o" -eq 0 ]; then ` + s.openZFSListing.script() + `; else ` + s.legacyListing.script() + `; fi`
	if parent != "" {
		s.parent = typeArgv(parent)
		script += `; if [ "$l" -ne 0 ]; then ` + quotedLine(s.parent) + ` 2>&1; printf '\n` + markParent + `%d\n' "$?"; fi`
	}
	s.argv = []string{"sh", "-c", script + `; exit "$s"`}
	return s
}

// quotedLine is argv as one shell command, every word quoted.
func quotedLine(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

// sudoPrelude makes every `zfs` a shell script runs go through sudo -n:
// a function is found before the PATH, quoted name or not.
const sudoPrelude = `zfs() { sudo -n zfs "$@"; }; `

// sudoArgv runs a zfs command, or every zfs of a start-up script (`sh -c
// SCRIPT`), through `sudo -n`, which fails at once rather than ask for a
// password. sudo keeps LC_ALL, which zfs's messages are read by. Other
// programs (a codec) run as they are.
func sudoArgv(argv []string) []string {
	switch {
	case len(argv) > 0 && argv[0] == "zfs":
		return append([]string{"sudo", "-n"}, argv...)
	case len(argv) == 3 && argv[0] == "sh" && argv[1] == "-c":
		return []string{"sh", "-c", sudoPrelude + argv[2]}
	}
	return argv
}
