package endpoints

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

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

// recordSet keeps records in the order zfs printed their names.
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

// parseGet reads `zfs get -H -p -o name,property,value[,source] ...`
// output (OpenZFS and zfs-fuse alike) into filesystems with their versions.
// Names may hold spaces but never tabs, so tabs separate fields; a value,
// the only free text, is whatever lies between property and source.
func parseGet(out string) ([]*pdu.Filesystem, error) {
	var set recordSet
	for i, line := range strings.Split(out, "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		switch {
		case len(f) == 3:
			set.set(f[0], f[1], f[2], "")
		case len(f) >= 4:
			set.set(f[0], f[1], strings.Join(f[2:len(f)-1], "\t"), f[len(f)-1])
		default:
			return nil, fmt.Errorf("zfs get output line %d: want name, property, value and source separated by tabs, got %q", i+1, line)
		}
	}
	return set.filesystems()
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
		slices.SortStableFunc(fs.Versions, func(a, b *pdu.FilesystemVersion) int {
			return cmp.Or(cmp.Compare(a.CreateTXG, b.CreateTXG), cmp.Compare(a.Type, b.Type))
		})
	}
	slices.SortStableFunc(fss, func(a, b *pdu.Filesystem) int { return comparePaths(a.Path, b.Path) })
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
		v.Creation = time.Unix(secs, 0)
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

// comparePaths orders dataset names component by component, so a parent
// sorts right before its children (`a`, `a/b`, `a b`), never after a
// sibling that merely shares a prefix.
func comparePaths(a, b string) int {
	return slices.Compare(strings.Split(a, "/"), strings.Split(b, "/"))
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
