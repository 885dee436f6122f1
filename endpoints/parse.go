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

// ParseGet reads `zfs get -H -p -o name,property,value[,source] ...`
// output (OpenZFS and zfs-fuse alike) into filesystems with their versions,
// parents before children, each filesystem's versions in creation order.
// Names may hold spaces but never tabs, so tabs separate fields; a value,
// the only free text, is whatever lies between property and source.
//
// It reads r as a stream, one line at a time, and keeps only the dataset
// being read besides what it returns: zfs prints all the properties of one
// dataset on consecutive lines, and each run of lines with one name is one
// record.
func ParseGet(r io.Reader) ([]*pdu.Filesystem, error) {
	fss, _, err := parseGetUntil(bufio.NewReaderSize(r, 1<<20), "")
	return fss, err
}

// errStopLine ends parseGetUntil at its stop line.
var errStopLine = errors.New("stop line")

// parseGetUntil is ParseGet reading br up to and including a line that
// starts with stop and holds no tab (so no `zfs get -H` line can be taken
// for it), which it returns; stop "" reads to the end.
func parseGetUntil(br *bufio.Reader, stop string) ([]*pdu.Filesystem, string, error) {
	p := getParser{byPath: map[string]*pdu.Filesystem{}, names: map[string]string{}, stop: stop}
	var long []byte
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
		}
		if len(line) > 0 {
			if lerr := p.line(n, line); lerr == errStopLine {
				stopLine := string(line)
				if err := p.flush(); err != nil {
					return nil, "", err
				}
				return p.filesystems(), stopLine, nil
			} else if lerr != nil {
				return nil, "", lerr
			}
		}
		if err == io.EOF {
			break
		}
	}
	if err := p.flush(); err != nil {
		return nil, "", err
	}
	if stop != "" {
		return nil, "", fmt.Errorf("zfs get output ended without the line %q after it", stop)
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
	// stop starts the line that ends the listing (parseGetUntil).
	stop string

	rec getRecord
}

const maxInterned = 4096

// getRecord is what the lines of one dataset said; its buffers are reused.
// Numbers are parsed as their lines are read; bad keeps the first value
// that was not a number, for the error.
type getRecord struct {
	name                                      []byte
	typ, ph, phSrc                            []byte
	token, origin                             []byte
	encryption, encRoot, keyStatus            []byte
	guid, createTXG, userRefs                 uint64
	creation                                  int64
	bad                                       []byte
	badProp                                   string
	hasTyp, hasGuid, hasTXG, hasCreation, has bool
	hasToken, hasOrigin, version              bool
}

// number parses value as prop's, remembering the first that is not one.
func (r *getRecord) number(prop string, value []byte) uint64 {
	n, ok := parseUint(value)
	if !ok && r.badProp == "" {
		r.bad, r.badProp = append(r.bad[:0], value...), prop
	}
	return n
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
		r.name = append(r.name[:0], name...)
		r.has = true
		rest = after
	}
	// Property names and sources are short: a loop beats IndexByte's
	// set-up on them.
	i := 0
	for i < len(rest) && rest[i] != '\t' {
		i++
	}
	if i == len(rest) {
		return badGetLine(n, line)
	}
	prop, rest := rest[:i], rest[i+1:]
	value, source := rest, []byte(nil)
	for j := len(rest) - 1; j >= 0; j-- {
		if rest[j] == '\t' {
			value, source = rest[:j], rest[j+1:]
			break
		}
	}
	switch string(prop) {
	case propType:
		r.typ, r.hasTyp = append(r.typ[:0], value...), true
		r.version = string(value) == "snapshot" || string(value) == "bookmark"
	case propGuid:
		r.guid, r.hasGuid = r.number(propGuid, value), true
	case propCreateTXG:
		r.createTXG, r.hasTXG = r.number(propCreateTXG, value), true
	case propCreation:
		secs, ok := parseInt(value)
		if !ok && r.badProp == "" {
			r.bad, r.badProp = append(r.bad[:0], value...), propCreation
		}
		r.creation, r.hasCreation = secs, true
	case propUserRefs:
		// "-" for a bookmark.
		r.userRefs, _ = parseUint(value)
	}
	if r.version {
		// The rest are properties of filesystems; a snapshot's are "-".
		return nil
	}
	switch string(prop) {
	case propPlaceholder:
		r.ph, r.phSrc = append(r.ph[:0], value...), append(r.phSrc[:0], source...)
	case propResumeToken:
		r.token, r.hasToken = append(r.token[:0], value...), true
	case propOrigin:
		r.origin, r.hasOrigin = append(r.origin[:0], value...), true
	case propEncryption:
		r.encryption = append(r.encryption[:0], value...)
	case propEncryptionRoot:
		r.encRoot = append(r.encRoot[:0], value...)
	case propKeyStatus:
		r.keyStatus = append(r.keyStatus[:0], value...)
	}
	return nil
}

var tab = []byte{'\t'}

func badGetLine(n int, line []byte) error {
	return fmt.Errorf("zfs get output line %d: want name, property, value and source separated by tabs, got %q", n, line)
}

// flush turns the record read so far into a filesystem or a version, and
// empties it.
func (p *getParser) flush() error {
	r := &p.rec
	if !r.has {
		return nil
	}
	defer func() {
		r.has, r.hasTyp, r.hasGuid, r.hasTXG, r.hasCreation, r.hasToken, r.hasOrigin, r.version = false, false, false, false, false, false, false, false
		r.ph, r.phSrc, r.userRefs, r.badProp = r.ph[:0], r.phSrc[:0], 0, ""
		r.encryption, r.encRoot, r.keyStatus = r.encryption[:0], r.encRoot[:0], r.keyStatus[:0]
	}()
	if !r.hasTyp {
		return fmt.Errorf("zfs listed %q without its type", r.name)
	}
	switch string(r.typ) {
	case "filesystem", "volume":
		fs := p.filesystem(r.name)
		fs.Volume = string(r.typ) == "volume"
		// Only a locally set value marks a placeholder: its children
		// inherit the property but are real datasets.
		fs.Placeholder = string(r.ph) == "on" && string(r.phSrc) == "local"
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
		delim, vt := "@", pdu.Snapshot
		if string(r.typ) == "bookmark" {
			delim, vt = "#", pdu.Bookmark
		}
		i := bytes.IndexByte(r.name, delim[0])
		if i <= 0 || i == len(r.name)-1 {
			return fmt.Errorf("zfs listed %s %q without %q in its name", r.typ, r.name, delim)
		}
		if !r.hasGuid {
			return fmt.Errorf("zfs listed %q without its %s", r.name, propGuid)
		}
		if !r.hasTXG {
			return fmt.Errorf("zfs listed %q without its %s", r.name, propCreateTXG)
		}
		switch r.badProp {
		case "":
		case propCreation:
			return fmt.Errorf("zfs listed %q with creation %q, not seconds since 1970 (was -p given?)", r.name, r.bad)
		default:
			return fmt.Errorf("zfs listed %q with %s %q, not a number (was -p given?)", r.name, r.badProp, r.bad)
		}
		guid, txg, creation := r.guid, r.createTXG, int64(0)
		if r.hasCreation {
			creation = r.creation
		}
		if len(p.slab) == 0 {
			p.slab = make([]pdu.FilesystemVersion, 1024)
		}
		v := &p.slab[0]
		p.slab = p.slab[1:]
		// userrefs is "-" for a bookmark, and absent unless asked for.
		refs := min(r.userRefs, math.MaxUint32)
		fs := p.filesystem(r.name[:i])
		*v = pdu.FilesystemVersion{Name: p.versionName(fs, r.name[i+1:]), Type: vt, Guid: guid, CreateTXG: txg, Creation: creation, UserRefs: uint32(refs)}
		p.addVersion(fs, v)
	default:
		// Other types (a snapshot of a volume is still "snapshot") are
		// not zrep's business.
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
// line naming the base.
func parseResumeInfo(out string) (resumeInfo, error) {
	var ri resumeInfo
	var haveGuid bool
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Split(line, "\t"); len(f) == 4 && f[0] == "incremental" {
			ri.FromName = f[1]
			continue
		}
		key, value, ok := strings.Cut(strings.TrimSpace(line), " = ")
		if !ok {
			continue
		}
		switch key {
		case "toname":
			ri.ToName = value
		case "toguid", "fromguid":
			n, err := strconv.ParseUint(strings.TrimPrefix(value, "0x"), 16, 64)
			if err != nil {
				return resumeInfo{}, fmt.Errorf("resume token: %s %q is not a hex number", key, value)
			}
			if key == "toguid" {
				ri.ToGuid, haveGuid = n, true
			} else {
				ri.FromGuid = n
			}
		}
	}
	if !haveGuid || ri.ToName == "" {
		return resumeInfo{}, fmt.Errorf("zfs send -nvP -t printed no toname and toguid")
	}
	return ri, nil
}

// setEncryption sets fs's encryption from its listed `encryption`,
// `encryptionroot` and `keystatus` (all empty where the platform has no
// encryption). They are native properties, whose values are short words
// and a dataset name; anything else is an error, never a guess.
func setEncryption(fs *pdu.Filesystem, encryption, root, keyStatus []byte) error {
	fs.Encryption, fs.EncryptionRoot, fs.KeyStatus = "", "", ""
	if len(encryption) == 0 && len(root) == 0 && len(keyStatus) == 0 {
		return nil
	}
	for _, c := range encryption {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("zfs listed %q with encryption %q, not a cipher's name", fs.Path, encryption)
		}
	}
	fs.Encryption = string(encryption)
	if !fs.Encrypted() {
		if len(root) > 0 && string(root) != "-" || len(keyStatus) > 0 && string(keyStatus) != "-" {
			return fmt.Errorf("zfs listed %q as not encrypted, but with encryption root %q and key status %q", fs.Path, root, keyStatus)
		}
		return nil
	}
	if err := CheckDatasetName(string(root)); err != nil {
		return fmt.Errorf("zfs listed %q with encryption root %q: %w", fs.Path, root, err)
	}
	switch string(keyStatus) {
	case pdu.KeyAvailable, pdu.KeyUnavailable:
	default:
		return fmt.Errorf("zfs listed %q with key status %q, neither %s nor %s", fs.Path, keyStatus, pdu.KeyAvailable, pdu.KeyUnavailable)
	}
	fs.EncryptionRoot, fs.KeyStatus = string(root), string(keyStatus)
	return nil
}
