package endpoints

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/zrep/zrep/pdu"
)

// Property names zrep lists.
const (
	propType        = "type"
	propGuid        = "guid"
	propCreateTXG   = "createtxg"
	propCreation    = "creation"
	propPlaceholder = "zrep:placeholder"
	propSync        = "zrep:sync"
	propResumeToken = "receive_resume_token"
	propOrigin      = "origin"
	// Native encryption, OpenZFS only.
	propEncryption     = "encryption"
	propEncryptionRoot = "encryptionroot"
	propKeyStatus      = "keystatus"
)

// property is one value of `zfs get` output.
type property struct {
	value, source string
}

// datasetRecord gathers what one listing says about one name.
type datasetRecord struct {
	name  string
	props map[string]property
}

// recordSet keeps records in the order zfs printed their names (parseList's;
// ParseGet reads a stream instead).
type recordSet struct {
	order []*datasetRecord
	byKey map[string]*datasetRecord
}

func (s *recordSet) set(name, prop, value, source string) {
	if s.byKey == nil {
		s.byKey = map[string]*datasetRecord{}
	}
	r := s.byKey[name]
	if r == nil {
		r = &datasetRecord{name: name, props: map[string]property{}}
		s.byKey[name] = r
		s.order = append(s.order, r)
	}
	r.props[prop] = property{value, source}
}

// ParseGet reads `zfs get -H -p -o name,property,value,source` output of
// native properties of root and its descendants (OpenZFS and zfs-fuse
// alike) into filesystems with their versions, parents before children,
// each filesystem's versions in creation order.
//
// The listing holds no user property: their values are free text, which
// zfs prints raw, tabs and newlines included (zrep reads its own apart,
// see readUserProps). The values of the native properties it asks for
// never hold a tab or newline, so it is read strictly: every line is four
// tab-separated fields, a property it asked for, once per dataset, with a
// value of that property's syntax, of a dataset whose name is a valid ZFS
// name inside root. Anything else is an error naming the line, never a
// shorter list.
//
// It reads r as a stream, one line at a time, and keeps only the dataset
// being read besides what it returns: zfs prints all the properties of one
// dataset on consecutive lines, and each run of lines with one name is one
// record.
func ParseGet(r io.Reader, root string) ([]*pdu.Filesystem, error) {
	fss, _, err := parseGetUntil(bufio.NewReaderSize(r, 1<<20), root, "")
	return fss, err
}

// errStopLine ends parseGetUntil at its stop line.
var errStopLine = errors.New("stop line")

// parseGetUntil is ParseGet reading br up to and including a line that
// starts with stop and holds no tab (so no `zfs get -H` line can be taken
// for it), which it returns; stop "" reads to the end. An empty line is
// allowed only right before the stop line.
func parseGetUntil(br *bufio.Reader, root, stop string) ([]*pdu.Filesystem, string, error) {
	p := getParser{byPath: map[string]*pdu.Filesystem{}, names: map[string]string{}, root: root, stop: stop}
	var long []byte
	blank := 0
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long[:0], line...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if err != nil && err != io.EOF {
			return nil, "", err
		}
		if k := len(line); k > 0 && line[k-1] == '\n' {
			line = line[:k-1]
		} else if k > 0 {
			return nil, "", fmt.Errorf("zfs get output line %d: cut short, without its newline: %q", n, line)
		}
		switch {
		case len(line) == 0 && err == nil:
			if blank != 0 || stop == "" {
				return nil, "", fmt.Errorf("zfs get output line %d: empty", n)
			}
			blank = n
		case len(line) > 0:
			lerr := p.line(n, line)
			if lerr == errStopLine {
				stopLine := string(line)
				if err := p.flush(); err != nil {
					return nil, "", err
				}
				return p.filesystems(), stopLine, nil
			}
			if lerr != nil {
				return nil, "", lerr
			}
			if blank != 0 {
				return nil, "", fmt.Errorf("zfs get output line %d: empty", blank)
			}
		}
		if err == io.EOF {
			break
		}
	}
	if stop != "" {
		return nil, "", fmt.Errorf("zfs get output ended without the line %q after it", stop)
	}
	if err := p.flush(); err != nil {
		return nil, "", err
	}
	return p.filesystems(), "", nil
}

// getParser is ParseGet's state: the filesystems so far and the record of
// the dataset whose lines are being read.
type getParser struct {
	fss    []*pdu.Filesystem
	byPath map[string]*pdu.Filesystem
	last   *pdu.Filesystem // the filesystem of the previous record
	// names interns snapshot and bookmark names (one `zfs snapshot -r`
	// gives many filesystems the same one), up to maxInterned of them.
	names map[string]string
	// Consecutive filesystems mostly have the same snapshot names in the
	// same order: the names of the previous filesystem's versions, by
	// position, are tried before the map (no hashing).
	prevNames, curNames []string
	namesOf             *pdu.Filesystem         // whose versions curNames are
	slab                []pdu.FilesystemVersion // versions are allocated from it in blocks
	// ptrs holds the Versions slices, one run per filesystem, in blocks of
	// ptrBlock: no slice grows by doubling. open is the filesystem whose
	// run ends at len(ptrs) and may still grow in place.
	ptrs []*pdu.FilesystemVersion
	open *pdu.Filesystem
	// root is the listed dataset: every name is it or inside it.
	root string
	// stop starts the line that ends the listing (parseGetUntil).
	stop string

	rec getRecord
}

const maxInterned = 4096

// getRecord is what the lines of one dataset said; its buffers are reused.
type getRecord struct {
	name                    []byte
	delim                   int // the position of '@' or '#' in name, or -1
	typ                     []byte
	token, origin           []byte
	encryption, encRoot     []byte
	keyStatus               []byte
	guid, createTXG         uint64
	userRefs                uint64
	creation                int64
	seen                    uint16 // the properties read, by propBit
	has, version            bool
	hasToken, hasOrigin     bool
	hasGuid, hasTXG, hasTyp bool
}

// propBit numbers the native properties a listing may hold; 0 for any other.
func propBit(prop []byte) uint16 {
	switch string(prop) {
	case propType:
		return 1
	case propGuid:
		return 2
	case propCreateTXG:
		return 4
	case propCreation:
		return 8
	case propResumeToken:
		return 16
	case propOrigin:
		return 32
	case propUserRefs:
		return 64
	case propEncryption:
		return 128
	case propEncryptionRoot:
		return 256
	case propKeyStatus:
		return 512
	}
	return 0
}

func (p *getParser) line(n int, line []byte) error {
	r := &p.rec
	var rest []byte
	if k := len(r.name); r.has && len(line) > k && line[k] == '\t' && bytes.Equal(line[:k], r.name) {
		// Another property of the current dataset (its name has no tab).
		rest = line[k+1:]
	} else {
		name, after, ok := bytes.Cut(line, tab)
		if !ok {
			if p.stop != "" && bytes.HasPrefix(line, []byte(p.stop)) {
				return errStopLine
			}
			return badGetLine(n, line)
		}
		if err := p.flush(); err != nil {
			return err
		}
		delim, err := checkListedName(name, p.root)
		if err != nil {
			return fmt.Errorf("zfs get output line %d: %w", n, err)
		}
		r.name, r.delim = append(r.name[:0], name...), delim
		r.has = true
		rest = after
	}
	// Property names, values and sources are short: a loop beats
	// IndexByte's set-up on them.
	i := 0
	for i < len(rest) && rest[i] != '\t' {
		i++
	}
	if i == len(rest) {
		return badGetLine(n, line)
	}
	prop, rest := rest[:i], rest[i+1:]
	// The source is shorter than the value: found from the end. A tab in
	// the value fails its syntax check below (no syntax takes one).
	j := len(rest) - 1
	for j >= 0 && rest[j] != '\t' {
		j--
	}
	if j < 0 {
		return badGetLine(n, line)
	}
	value := rest[:j]
	bit := propBit(prop)
	if bit == 0 {
		return fmt.Errorf("zfs get output line %d: property %q of %q, which zrep did not ask for", n, prop, r.name)
	}
	if r.seen&bit != 0 {
		return fmt.Errorf("zfs get output line %d: %s of %q a second time", n, prop, r.name)
	}
	r.seen |= bit
	ok := true
	switch bit {
	case 1:
		switch string(value) {
		case "filesystem", "volume":
		case "snapshot", "bookmark":
			r.version = true
		default:
			ok = false
		}
		r.typ, r.hasTyp = append(r.typ[:0], value...), true
	case 2:
		r.guid, ok = parseUint(value)
		r.hasGuid = true
	case 4:
		r.createTXG, ok = parseUint(value)
		r.hasTXG = true
	case 8:
		r.creation, ok = parseInt(value)
	case 64:
		// "-" for a bookmark.
		if string(value) != "-" {
			r.userRefs, ok = parseUint(value)
		}
	case 16:
		if string(value) != "-" {
			ok = checkResumeToken(string(value)) == nil
		}
		r.token, r.hasToken = append(r.token[:0], value...), true
	case 32:
		if string(value) != "-" && len(value) > 0 {
			ok = checkSnapshotName(value) == nil
		}
		r.origin, r.hasOrigin = append(r.origin[:0], value...), true
	case 128:
		// A cipher's name (aes-256-gcm), off, or - for a bookmark.
		for _, c := range value {
			ok = ok && (c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-')
		}
		r.encryption = append(r.encryption[:0], value...)
	case 256:
		if string(value) != "-" {
			ok = CheckDatasetName(string(value)) == nil
		}
		r.encRoot = append(r.encRoot[:0], value...)
	case 512:
		switch string(value) {
		case pdu.KeyAvailable, pdu.KeyUnavailable, "-":
		default:
			ok = false
		}
		r.keyStatus = append(r.keyStatus[:0], value...)
	}
	if !ok {
		return fmt.Errorf("zfs listed %q with %s %q, which is not one (was -p given?)", r.name, prop, value)
	}
	return nil
}

var tab = []byte{'\t'}

func badGetLine(n int, line []byte) error {
	return fmt.Errorf("zfs get output line %d: want name, property, value and source separated by tabs, got %q", n, line)
}

// nameClass sorts the bytes of ZFS dataset, snapshot and bookmark names:
// letters, digits and `_-.: ` (nameChar), and the separators `/` and `@#`;
// 0 for every other byte.
var nameClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("_-.: ", byte(c)) >= 0:
			t[c] = nameChar
		case c == '/':
			t[c] = nameSlash
		case c == '@' || c == '#':
			t[c] = nameDelim
		}
	}
	return
}()

const (
	nameChar = 1 + iota
	nameSlash
	nameDelim
)

// checkListedName checks that name, listed by zfs, is a valid ZFS name
// (a dataset, or a snapshot or bookmark of one) that is root or inside it,
// and returns the position of its '@' or '#', -1 if it has none.
func checkListedName(name []byte, root string) (int, error) {
	if !bytes.HasPrefix(name, []byte(root)) || len(name) > len(root) && nameClass[name[len(root)]] < nameSlash {
		return -1, fmt.Errorf("zfs listed %q, which is not %s or inside it", name, root)
	}
	delim, err := checkZFSName(name)
	if err != nil {
		return -1, fmt.Errorf("zfs listed %q: %w", name, err)
	}
	return delim, nil
}

var errNotZFSName = errors.New("not a ZFS name")

// checkZFSName checks the syntax of a dataset, snapshot or bookmark name
// and returns the position of its '@' or '#', -1 if it has none.
func checkZFSName(name []byte) (int, error) {
	if len(name) == 0 {
		return -1, errNotZFSName
	}
	delim := -1
	prev := uint8(nameSlash)
	for i, c := range name {
		k := nameClass[c]
		if k != nameChar {
			switch {
			case k == 0:
				return -1, fmt.Errorf("%q is not allowed in a ZFS name", c)
			case delim >= 0 || prev != nameChar:
				return -1, errNotZFSName
			case k == nameDelim:
				delim = i
			}
		}
		prev = k
	}
	if prev != nameChar {
		return -1, errNotZFSName
	}
	return delim, nil
}

// checkSnapshotName checks that name is a snapshot's full name, fs@snap.
func checkSnapshotName(name []byte) error {
	i, err := checkZFSName(name)
	if err == nil && (i < 0 || name[i] != '@') {
		err = errors.New("not a snapshot name")
	}
	return err
}

// flush turns the record read so far into a filesystem or a version, and
// empties it.
func (p *getParser) flush() error {
	r := &p.rec
	if !r.has {
		return nil
	}
	defer func() {
		r.has, r.hasTyp, r.hasGuid, r.hasTXG, r.hasToken, r.hasOrigin, r.version = false, false, false, false, false, false, false
		r.seen, r.userRefs, r.creation = 0, 0, 0
		r.encryption, r.encRoot, r.keyStatus = r.encryption[:0], r.encRoot[:0], r.keyStatus[:0]
	}()
	if !r.hasTyp {
		return fmt.Errorf("zfs listed %q without its type", r.name)
	}
	i := r.delim
	switch string(r.typ) {
	case "filesystem", "volume":
		if i >= 0 {
			return fmt.Errorf("zfs listed %s %q with a snapshot's name", r.typ, r.name)
		}
		fs := p.filesystem(r.name)
		fs.Volume = string(r.typ) == "volume"
		fs.ResumeToken = ""
		if r.hasToken && string(r.token) != "-" {
			fs.ResumeToken = string(r.token)
		}
		fs.Origin = ""
		if r.hasOrigin && len(r.origin) > 0 && string(r.origin) != "-" {
			fs.Origin = string(r.origin)
		}
		if err := setEncryption(fs, r.encryption, r.encRoot, r.keyStatus); err != nil {
			return err
		}
	case "snapshot", "bookmark":
		delim, vt := byte('@'), pdu.Snapshot
		if string(r.typ) == "bookmark" {
			delim, vt = '#', pdu.Bookmark
		}
		if i <= 0 || r.name[i] != delim {
			return fmt.Errorf("zfs listed %s %q without %q in its name", r.typ, r.name, delim)
		}
		if !r.hasGuid {
			return fmt.Errorf("zfs listed %q without its %s", r.name, propGuid)
		}
		if !r.hasTXG {
			return fmt.Errorf("zfs listed %q without its %s", r.name, propCreateTXG)
		}
		if len(p.slab) == 0 {
			p.slab = make([]pdu.FilesystemVersion, 1024)
		}
		v := &p.slab[0]
		p.slab = p.slab[1:]
		// userrefs is "-" for a bookmark, and absent unless asked for.
		refs := min(r.userRefs, math.MaxUint32)
		fs := p.filesystem(r.name[:i])
		*v = pdu.FilesystemVersion{Name: p.versionName(fs, r.name[i+1:]), Type: vt, Guid: r.guid, CreateTXG: r.createTXG, Creation: r.creation, UserRefs: uint32(refs)}
		p.addVersion(fs, v)
	}
	return nil
}

const ptrBlock = 1 << 16

// addVersion appends v to fs.Versions.
func (p *getParser) addVersion(fs *pdu.Filesystem, v *pdu.FilesystemVersion) {
	n := len(fs.Versions)
	if fs == p.open && len(p.ptrs) < cap(p.ptrs) {
		p.ptrs = append(p.ptrs, v)
		end := len(p.ptrs)
		fs.Versions = p.ptrs[end-n-1 : end : end]
		return
	}
	// A new run for fs, holding what it had so far (its versions were not
	// consecutive, or the block is full).
	if cap(p.ptrs)-len(p.ptrs) < n+1 {
		if n+1 > ptrBlock/4 {
			fs.Versions = append(fs.Versions, v)
			p.open = nil
			return
		}
		p.ptrs = make([]*pdu.FilesystemVersion, 0, ptrBlock)
	}
	start := len(p.ptrs)
	p.ptrs = append(p.ptrs, fs.Versions...)
	p.ptrs = append(p.ptrs, v)
	end := len(p.ptrs)
	fs.Versions = p.ptrs[start:end:end]
	p.open = fs
}

// filesystem finds or adds the filesystem named name.
func (p *getParser) filesystem(name []byte) *pdu.Filesystem {
	if p.last != nil && p.last.Path == string(name) {
		return p.last
	}
	fs := p.byPath[string(name)]
	if fs == nil {
		fs = &pdu.Filesystem{Path: string(name)}
		p.byPath[fs.Path] = fs
		p.fss = append(p.fss, fs)
	}
	p.last = fs
	return fs
}

// versionName is the name b of a version of fs, as a string shared with
// earlier versions of that name where possible.
func (p *getParser) versionName(fs *pdu.Filesystem, b []byte) string {
	if fs != p.namesOf {
		p.prevNames, p.curNames, p.namesOf = p.curNames, p.prevNames[:0], fs
	}
	var s string
	if k := len(p.curNames); k < len(p.prevNames) && p.prevNames[k] == string(b) {
		s = p.prevNames[k]
	} else {
		s = p.intern(b)
	}
	p.curNames = append(p.curNames, s)
	return s
}

func (p *getParser) intern(b []byte) string {
	if s, ok := p.names[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(p.names) < maxInterned {
		p.names[s] = s
	}
	return s
}

// filesystems orders what was read: parents before children, versions by
// creation.
func (p *getParser) filesystems() []*pdu.Filesystem {
	for _, fs := range p.fss {
		sortVersions(fs.Versions)
	}
	if !slices.IsSortedFunc(p.fss, func(a, b *pdu.Filesystem) int { return pdu.CompareDatasets(a.Path, b.Path) }) {
		slices.SortStableFunc(p.fss, func(a, b *pdu.Filesystem) int { return pdu.CompareDatasets(a.Path, b.Path) })
	}
	return p.fss
}

func compareVersions(a, b *pdu.FilesystemVersion) int {
	return cmp.Or(cmp.Compare(a.CreateTXG, b.CreateTXG), cmp.Compare(a.Type, b.Type))
}

// sortVersions puts versions in creation order (zfs lists them so already,
// mostly).
func sortVersions(vs []*pdu.FilesystemVersion) {
	if !slices.IsSortedFunc(vs, compareVersions) {
		slices.SortStableFunc(vs, compareVersions)
	}
}

// parseInt is strconv.ParseInt(string(b), 10, 64) without the string.
func parseInt(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '+' || b[0] == '-') {
		neg, b = b[0] == '-', b[1:]
	}
	u, ok := parseUint(b)
	switch {
	case !ok:
		return 0, false
	case neg && u <= 1<<63:
		return -int64(u), true
	case !neg && u < 1<<63:
		return int64(u), true
	}
	return 0, false
}

// parseUint is strconv.ParseUint(string(b), 10, 64) without the string.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n uint64
	if len(b) < 20 {
		// Up to 19 digits cannot overflow: the common case, checked
		// only for digits.
		for _, c := range b {
			d := uint64(c - '0')
			if d > 9 {
				return 0, false
			}
			n = n*10 + d
		}
		return n, true
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// listColumns is the -o argument parseList expects.
const listColumns = "name,guid,createtxg,creation,type"

// parseList reads `zfs list -H -p -o name,guid,createtxg,creation,type`
// output (OpenZFS only: zfs-fuse has no -p and prints guids rounded).
func parseList(out string) ([]*pdu.Filesystem, error) {
	var set recordSet
	cols := strings.Split(listColumns, ",")
	for i, line := range strings.Split(out, "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != len(cols) {
			return nil, fmt.Errorf("zfs list output line %d: want %d tab-separated columns (%s), got %q", i+1, len(cols), listColumns, line)
		}
		for j, c := range cols[1:] {
			set.set(f[0], c, f[j+1], "")
		}
	}
	return set.filesystems()
}

// filesystems turns records into filesystems, parents before children,
// each filesystem's versions in creation order.
func (s *recordSet) filesystems() ([]*pdu.Filesystem, error) {
	byPath := map[string]*pdu.Filesystem{}
	var fss []*pdu.Filesystem
	for _, r := range s.order {
		typ, ok := r.props[propType]
		if !ok {
			return nil, fmt.Errorf("zfs listed %q without its type", r.name)
		}
		switch typ.value {
		case "filesystem", "volume":
			fs := byPath[r.name]
			if fs == nil {
				fs = &pdu.Filesystem{Path: r.name}
				byPath[r.name] = fs
				fss = append(fss, fs)
			}
			fs.Volume = typ.value == "volume"
			ph := r.props[propPlaceholder]
			// Only a locally set value marks a placeholder: its children
			// inherit the property but are real datasets.
			fs.Placeholder = ph.value == "on" && ph.source == "local"
			if tok := r.props[propResumeToken].value; tok != "-" {
				fs.ResumeToken = tok
			}
			if o := r.props[propOrigin].value; o != "-" {
				fs.Origin = o
			}
		case "snapshot", "bookmark":
			v, fsName, err := r.version(typ.value)
			if err != nil {
				return nil, err
			}
			fs := byPath[fsName]
			if fs == nil {
				fs = &pdu.Filesystem{Path: fsName}
				byPath[fsName] = fs
				fss = append(fss, fs)
			}
			fs.Versions = append(fs.Versions, v)
		default:
			// Other types (a snapshot of a volume is still "snapshot") are
			// not zrep's business.
		}
	}
	for _, fs := range fss {
		sortVersions(fs.Versions)
	}
	slices.SortStableFunc(fss, func(a, b *pdu.Filesystem) int { return pdu.CompareDatasets(a.Path, b.Path) })
	return fss, nil
}

// version reads a snapshot or bookmark record.
func (r *datasetRecord) version(typ string) (*pdu.FilesystemVersion, string, error) {
	delim, vt := "@", pdu.Snapshot
	if typ == "bookmark" {
		delim, vt = "#", pdu.Bookmark
	}
	fsName, name, ok := strings.Cut(r.name, delim)
	if !ok || fsName == "" || name == "" {
		return nil, "", fmt.Errorf("zfs listed %s %q without %q in its name", typ, r.name, delim)
	}
	v := &pdu.FilesystemVersion{Name: name, Type: vt}
	var err error
	if v.Guid, err = r.uint(propGuid); err != nil {
		return nil, "", err
	}
	if v.CreateTXG, err = r.uint(propCreateTXG); err != nil {
		return nil, "", err
	}
	if c, ok := r.props[propCreation]; ok {
		secs, err := strconv.ParseInt(c.value, 10, 64)
		if err != nil {
			return nil, "", fmt.Errorf("zfs listed %q with creation %q, not seconds since 1970 (was -p given?)", r.name, c.value)
		}
		v.Creation = secs
	}
	return v, fsName, nil
}

func (r *datasetRecord) uint(prop string) (uint64, error) {
	p, ok := r.props[prop]
	if !ok {
		return 0, fmt.Errorf("zfs listed %q without its %s", r.name, prop)
	}
	n, err := strconv.ParseUint(p.value, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("zfs listed %q with %s %q, not a number (was -p given?)", r.name, prop, p.value)
	}
	return n, nil
}

// parseSendEstimate reads the size from `zfs send -nvP` output: the `size`
// line, or, from versions that print none, the sum of the per-snapshot
// lines (`full NAME BYTES`, `incremental FROM TO BYTES`).
func parseSendEstimate(out string) (int64, error) {
	var sum int64
	var parts int
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(strings.TrimRight(line, "\r"), "\t")
		switch {
		case len(f) == 2 && f[0] == "size":
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("zfs send -nvP printed size %q, not a byte count", f[1])
			}
			return n, nil
		case len(f) >= 3 && (f[0] == "full" || f[0] == "incremental"):
			n, err := strconv.ParseInt(f[len(f)-1], 10, 64)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("zfs send -nvP printed %q without a byte count", line)
			}
			sum += n
			parts++
		}
	}
	if parts == 0 {
		return 0, fmt.Errorf("zfs send -nvP printed no size")
	}
	return sum, nil
}

// resumeInfo is what `zfs send -nvP -t TOKEN` says about a resume token.
type resumeInfo struct {
	// ToName is the full name of the snapshot being sent.
	ToName string
	// ToGuid is that snapshot's guid.
	ToGuid uint64
	// FromGuid is the incremental base's guid, 0 for a full send.
	FromGuid uint64
	// FromName is the base's full name as zfs printed it, if it did.
	FromName string
}

// parseResumeInfo reads `zfs send -nvP -t TOKEN` output: the token's nvlist
// (`toname = ...`, `toguid = 0x...`, `fromguid = 0x...`) and the estimate
// line naming the base. The token comes from the destination, which may
// not be trusted: each of these keys at most once, toname and the base
// valid snapshot names, or it is an error.
func parseResumeInfo(out string) (resumeInfo, error) {
	var ri resumeInfo
	seen := map[string]bool{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Split(line, "\t"); f[0] == "incremental" {
			if len(f) != 4 || checkSnapshotName([]byte(f[1])) != nil || seen["incremental"] {
				return resumeInfo{}, fmt.Errorf("zfs send -nvP -t printed %q, not one incremental send from a snapshot", line)
			}
			seen["incremental"], ri.FromName = true, f[1]
			continue
		}
		key, value, ok := strings.Cut(strings.TrimSpace(line), " = ")
		if !ok {
			continue
		}
		switch key {
		case "toname", "toguid", "fromguid":
			if seen[key] {
				return resumeInfo{}, fmt.Errorf("resume token: %s a second time", key)
			}
			seen[key] = true
		}
		switch key {
		case "toname":
			if checkSnapshotName([]byte(value)) != nil {
				return resumeInfo{}, fmt.Errorf("resume token: toname %q is not a snapshot's name", value)
			}
			ri.ToName = value
		case "toguid", "fromguid":
			n, err := strconv.ParseUint(strings.TrimPrefix(value, "0x"), 16, 64)
			if err != nil {
				return resumeInfo{}, fmt.Errorf("resume token: %s %q is not a hex number", key, value)
			}
			if key == "toguid" {
				ri.ToGuid = n
			} else {
				ri.FromGuid = n
			}
		}
	}
	if !seen["toguid"] || ri.ToName == "" {
		return resumeInfo{}, fmt.Errorf("zfs send -nvP -t printed no toname and toguid")
	}
	return ri, nil
}

// setEncryption sets fs's encryption from its listed `encryption`,
// `encryptionroot` and `keystatus` (all empty where the platform has no
// encryption, which counts as unencrypted), each already checked for its
// syntax. They must agree: an encrypted filesystem has a root and a key
// status, one that is not has neither.
func setEncryption(fs *pdu.Filesystem, encryption, root, keyStatus []byte) error {
	fs.Encryption, fs.EncryptionRoot, fs.KeyStatus = "", "", ""
	if len(encryption) == 0 && len(root) == 0 && len(keyStatus) == 0 {
		return nil
	}
	fs.Encryption = string(encryption)
	switch {
	case len(encryption) == 0 || string(encryption) == "-":
		fs.Encryption = ""
		return fmt.Errorf("zfs listed %q with encryption root %q and key status %q but no encryption", fs.Path, root, keyStatus)
	case !fs.Encrypted():
		if len(root) > 0 && string(root) != "-" || len(keyStatus) > 0 && string(keyStatus) != "-" {
			return fmt.Errorf("zfs listed %q as not encrypted, but with encryption root %q and key status %q", fs.Path, root, keyStatus)
		}
		return nil
	case len(root) == 0 || string(root) == "-" || len(keyStatus) == 0 || string(keyStatus) == "-":
		return fmt.Errorf("zfs listed %q as encrypted (%s) without its encryption root and key status (%q, %q)", fs.Path, encryption, root, keyStatus)
	}
	fs.EncryptionRoot, fs.KeyStatus = string(root), string(keyStatus)
	return nil
}
