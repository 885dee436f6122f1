package endpoints

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/zrep/zrep/pdu"
)

// zrep's own user properties are free text to zfs: `zfs get -H` prints
// their values raw, tabs and newlines included, so they are never read in
// a listing where a value could pass for other lines. They are read in two
// steps: where they are set (sourcesArgv: names and sources only, which
// hold no tab or newline), then the values of those set locally or
// received (valuesArgv), which is believed only if its lines are, line for
// line, the pairs the first listing announced. Otherwise (a value holds a
// newline) each value is read alone (userValueArgv), where the whole output
// is the value.

// propSource is one line of the sources listing.
type propSource struct {
	name, prop string
	// source is "local", "received" or "inherited from DATASET".
	source string
}

func (s propSource) set() bool { return s.source == "local" || s.source == "received" }

// inheritedFrom is the dataset s inherits from, "" if s is set here.
func (s propSource) inheritedFrom() string {
	from, _ := strings.CutPrefix(s.source, "inherited from ")
	if from == s.source {
		return ""
	}
	return from
}

// parseSources reads the sources listing of root up to and including a
// line that starts with stop and holds no tab ("" reads to the end), which
// it returns. Every line is a name inside root, one of zrep's user
// properties and a source of the three sourcesArgv asks for; an empty line
// is allowed only right before the stop line. Only what bears on
// filesystems is kept: the sources of filesystems, and the pairs set on a
// snapshot (valuesArgv lists those too).
func parseSources(br *bufio.Reader, root, stop string) ([]propSource, string, error) {
	var out []propSource
	seen := map[[2]string]bool{}
	blank := 0
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return nil, "", fmt.Errorf("zfs get (sources) output line %d: longer than any name", n)
		}
		if err != nil && err != io.EOF {
			return nil, "", err
		}
		if err == io.EOF {
			if len(line) > 0 {
				return nil, "", fmt.Errorf("zfs get (sources) output line %d: cut short, without its newline: %q", n, line)
			}
			if stop != "" {
				return nil, "", fmt.Errorf("zfs get (sources) output ended without the line %q after it", stop)
			}
			return out, "", nil
		}
		line = line[:len(line)-1]
		if len(line) == 0 {
			if blank != 0 || stop == "" {
				return nil, "", fmt.Errorf("zfs get (sources) output line %d: empty", n)
			}
			blank = n
			continue
		}
		f := bytes.Split(line, tab)
		if len(f) == 1 && stop != "" && bytes.HasPrefix(line, []byte(stop)) {
			return out, string(line), nil
		}
		if blank != 0 {
			return nil, "", fmt.Errorf("zfs get (sources) output line %d: empty", blank)
		}
		if len(f) != 3 {
			return nil, "", fmt.Errorf("zfs get (sources) output line %d: want name, property and source separated by tabs, got %q", n, line)
		}
		if _, err := checkListedName(f[0], root); err != nil {
			return nil, "", fmt.Errorf("zfs get (sources) output line %d: %w", n, err)
		}
		ps := propSource{name: string(f[0]), source: string(f[2])}
		for _, p := range userProps {
			if string(f[1]) == p {
				ps.prop = p
			}
		}
		if ps.prop == "" {
			return nil, "", fmt.Errorf("zfs get (sources) output line %d: property %q of %q, which zrep did not ask for", n, f[1], f[0])
		}
		if !ps.set() {
			from := ps.inheritedFrom()
			if i, err := checkZFSName([]byte(from)); err != nil || i >= 0 {
				return nil, "", fmt.Errorf("zfs get (sources) output line %d: %s of %q has source %q, not local, received or inherited from a dataset", n, ps.prop, ps.name, ps.source)
			}
		}
		if snapshot := bytes.IndexAny(f[0], "@#") >= 0; snapshot && !ps.set() {
			// zfs-fuse lists snapshots, which inherit; zrep reads no
			// property of a snapshot.
			continue
		}
		k := [2]string{ps.name, ps.prop}
		if seen[k] {
			return nil, "", fmt.Errorf("zfs get (sources) output line %d: %s of %q a second time", n, ps.prop, ps.name)
		}
		seen[k] = true
		out = append(out, ps)
	}
}

// wantedValues are the pairs whose values the values listings print, in
// their order: those set on root and below, then those root inherits.
func wantedValues(srcs []propSource, root string) []propSource {
	var want, inherited []propSource
	for _, s := range srcs {
		switch {
		case s.set():
			want = append(want, s)
		case s.name == root:
			inherited = append(inherited, s)
		}
	}
	return append(want, inherited...)
}

// parseValues reads the values listings' output (less the "x" that
// protects its trailing newlines) for the pairs want. It is accepted only
// if its lines are want's pairs exactly, in count and order; a value that
// holds a newline makes it fail, never a wrong value.
func parseValues(out []byte, want []propSource) ([]string, bool) {
	if len(want) == 0 {
		return nil, len(out) == 0
	}
	out, ok := bytes.CutSuffix(out, []byte{'\n'})
	if !ok || bytes.Count(out, []byte{'\n'}) != len(want)-1 {
		return nil, false
	}
	vals := make([]string, len(want))
	for i, w := range want {
		line := out
		if j := bytes.IndexByte(out, '\n'); j >= 0 {
			line, out = out[:j], out[j+1:]
		}
		rest, ok := bytes.CutPrefix(line, []byte(w.name+"\t"+w.prop+"\t"))
		if !ok {
			return nil, false
		}
		vals[i] = string(rest)
	}
	return vals, true
}

// userProps is what a listing said about zrep's user properties.
type userPropsListing struct {
	sources []propSource
	// values is the values section, "x" removed; ok false if it did not
	// run or failed.
	values   []byte
	valuesOK bool
}

// readListingTail reads what follows the native listing's end marker
// (already read, with status status): the sources section and the values
// section. stop ends the sources listing.
func readListingTail(br *bufio.Reader, root string) (userPropsListing, error) {
	var up userPropsListing
	srcs, stopLine, err := parseSources(br, root, markSources)
	if err != nil {
		return up, err
	}
	status, err := strconv.Atoi(strings.TrimPrefix(stopLine, markSources))
	if err != nil {
		return up, fmt.Errorf("listing printed %q, want %q", stopLine, markSources+"STATUS")
	}
	if status != 0 {
		// The command fails with this status; its stderr says why.
		return up, errSourcesFailed
	}
	up.sources = srcs
	head, err := br.ReadString('\n')
	f := strings.Fields(strings.TrimPrefix(head, markValues))
	var vstatus, n int
	if err == nil && strings.HasPrefix(head, markValues) && len(f) == 2 {
		vstatus, err = strconv.Atoi(f[0])
		if err == nil {
			n, err = strconv.Atoi(f[1])
		}
	} else if err == nil {
		err = errors.New("malformed")
	}
	if err != nil || n < 0 {
		return up, fmt.Errorf("listing printed %q, want %q", head, markValues+"STATUS LENGTH")
	}
	up.values = make([]byte, n)
	if _, err := io.ReadFull(br, up.values); err != nil {
		return up, fmt.Errorf("listing's values section ended after fewer than its %d bytes: %w", n, err)
	}
	up.values, up.valuesOK = bytes.CutSuffix(up.values, []byte{'x'})
	up.valuesOK = up.valuesOK && vstatus == 0
	return up, nil
}

// errSourcesFailed is a sources listing that exited non-zero.
var errSourcesFailed = errors.New("listing the sources of zrep's properties failed")

// applyUserProps reads the values of zrep's user properties (from the
// listing, or each alone where the listing's values cannot be believed)
// and sets Placeholder and SyncOff on fss.
func (e *Endpoint) applyUserProps(ctx context.Context, fss []*pdu.Filesystem, root string, up userPropsListing) error {
	want := wantedValues(up.sources, root)
	vals, ok := []string(nil), false
	if up.valuesOK {
		vals, ok = parseValues(up.values, want)
	}
	if !ok {
		e.log.Debug("reading zrep's properties one by one", "side", e.side.String(), "values", len(want))
		var err error
		if vals, err = readEach(want, func(ds, prop string) (string, error) {
			argv, err := userValueArgv(ds, prop)
			if err != nil {
				return "", pdu.PermanentError(err)
			}
			out, err := e.output(ctx, argv)
			if errors.Is(err, ErrDatasetNotExist) {
				// Gone since the listing: list again, and do not take
				// it for the side's dataset missing.
				return "", pdu.RetryableError(fmt.Errorf("read %s of %s: gone since it was listed: %v", prop, e.where(ds), err))
			}
			if err != nil {
				return "", fmt.Errorf("read %s of %s: %w", prop, e.where(ds), err)
			}
			return out, nil
		}); err != nil {
			return err
		}
	}
	if err := setUserProps(fss, root, up.sources, want, vals); err != nil {
		return parseError{err}
	}
	return nil
}

// readEach reads the value of each pair of want with read, which returns
// what `zfs get -H -o value PROP DATASET` printed: the value and one
// newline.
func readEach(want []propSource, read func(ds, prop string) (string, error)) ([]string, error) {
	vals := make([]string, len(want))
	for i, w := range want {
		out, err := read(w.name, w.prop)
		if err != nil {
			return nil, err
		}
		v, ok := strings.CutSuffix(out, "\n")
		if !ok {
			return nil, parseError{fmt.Errorf("zfs get printed %s of %s without its newline: %q", w.prop, w.name, out)}
		}
		vals[i] = v
	}
	return vals, nil
}

// setUserProps sets each filesystem's Placeholder and SyncOff from the
// sources listing and the values of the pairs want.
func setUserProps(fss []*pdu.Filesystem, root string, srcs, want []propSource, vals []string) error {
	type key struct{ name, prop string }
	value := make(map[key]string, len(want))
	inherited := map[key]string{} // root's values from above
	for i, w := range want {
		if w.set() {
			value[key{w.name, w.prop}] = vals[i]
		} else {
			inherited[key{w.name, w.prop}] = vals[i]
		}
	}
	source := make(map[key]propSource, len(srcs))
	for _, s := range srcs {
		source[key{s.name, s.prop}] = s
	}
	for _, fs := range fss {
		fs.Placeholder, fs.SyncOff = false, false
		// Only a locally set value marks a placeholder: its children
		// inherit the property but are real datasets.
		if s, ok := source[key{fs.Path, propPlaceholder}]; ok && s.source == "local" {
			fs.Placeholder = value[key{fs.Path, propPlaceholder}] == "on"
		}
		s, ok := source[key{fs.Path, propSync}]
		if !ok {
			continue
		}
		from := s.inheritedFrom()
		var v string
		switch {
		case s.set():
			v = value[key{fs.Path, propSync}]
		case from == root || strings.HasPrefix(from, root+"/"):
			v, ok = value[key{from, propSync}]
			if !ok {
				return fmt.Errorf("%s inherits %s from %s, which the listing did not show set", fs.Path, propSync, from)
			}
		default:
			v, ok = inherited[key{root, propSync}]
			if !ok {
				return fmt.Errorf("%s inherits %s from %s, whose value the listing did not show", fs.Path, propSync, from)
			}
		}
		fs.SyncOff = v == "off"
	}
	return nil
}

// listingRan says how far a listing command (see listing) got.
type listingRan struct {
	status          int // the native listing's
	sources, values bool
}

// parseListing reads a listing command's output after its zrep:list line:
// the native listing of root, then, where it succeeded, the sections on
// zrep's user properties. A native listing that failed (ran.status) gives
// no error here: the command's exit status and stderr tell why.
func parseListing(br *bufio.Reader, root string) (fss []*pdu.Filesystem, up userPropsListing, ran listingRan, err error) {
	fss, stopLine, err := parseGetUntil(br, root, markEnd)
	if err != nil {
		return nil, up, ran, err
	}
	if ran.status, err = strconv.Atoi(strings.TrimPrefix(stopLine, markEnd)); err != nil {
		return nil, up, ran, fmt.Errorf("listing printed %q, want %q", stopLine, markEnd+"STATUS")
	}
	if ran.status != 0 {
		return nil, up, ran, nil
	}
	ran.sources = true
	up, err = readListingTail(br, root)
	if err != nil {
		return nil, up, ran, err
	}
	ran.values = true
	return fss, up, ran, nil
}

// recordListing logs the commands of l that ran.
func (r *runner) recordListing(l listing, ran listingRan) {
	r.recordArgv(l.list)
	if ran.sources {
		r.recordArgv(l.sources)
	}
	if ran.values {
		r.recordArgv(l.values)
		r.recordArgv(l.rootValues)
	}
}
