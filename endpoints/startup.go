package endpoints

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/zrep/zrep/pdu"
)

// startupResult is what the start-up command (startupArgv) found.
type startupResult struct {
	caps Capabilities
	fss  []*pdu.Filesystem
	// err is the listing's error, classified as the listing alone would
	// have been; a parseError for output zrep could not read.
	err error
	// parentErr is the parent check's verdict (checkParent's), set when
	// the check ran.
	parentErr error
	parentRan bool
}

// listStartup runs the start-up command: probe, listing and, for a
// destination, the parent check, in one process (one ssh round trip). The
// error is a failure of the probe or of the command as a whole (ssh
// down, zfs missing); the listing's own outcome is in the result.
func (e *Endpoint) listStartup(ctx context.Context) (*startupResult, error) {
	root := e.side.Dataset
	parent := ""
	if e.opts.Role == "destination" {
		parent = pdu.Parent(root)
	}
	st := startupArgv(root, e.opts.Recursive, parent, e.listExtra()...)
	argv, onKill, err := e.requestCommand(ctx, st.req)
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", describe(st.openZFS, e.side.Host), err)
	}
	growPipe(pw)
	// Errors name the listing: the command's exit status is the listing's.
	p, err := e.door.launch(ctx, st.openZFS, argv, nil, pw, onKill)
	pw.Close()
	if err != nil {
		pr.Close()
		e.door.recordArgv(st.version)
		return nil, err
	}
	out := parseStartup(bufio.NewReaderSize(pr, 1<<20), root)
	// Read to the end, so that the command ends on its own and its own
	// verdict can be heard.
	io.Copy(io.Discard, pr)
	pr.Close()
	werr := p.wait()

	if !out.probed {
		// The script did not get as far as its first line: ssh or sh
		// failed, and said why.
		e.door.recordArgv(st.version)
		if werr != nil {
			return nil, fmt.Errorf("probe zfs features: %w", werr)
		}
		return nil, pdu.PermanentError(fmt.Errorf("probe zfs features on %s: %w", e.side, out.err))
	}
	e.door.recordArgv(st.version)
	res := &startupResult{}
	listing := st.legacyListing
	if out.probeStatus == 0 {
		res.caps = openZFS2
		res.caps.Version, _, _ = strings.Cut(strings.TrimSpace(out.version), "\n")
		listing = st.openZFSListing
	} else {
		perr := e.classifyRan(st.version, out.probeStatus, out.version)
		if !errors.Is(perr, ErrUnsupported) {
			return nil, fmt.Errorf("probe zfs features: %w", perr)
		}
	}
	e.door.recordListing(listing, out.listing)
	switch {
	case werr != nil:
		res.err = werr
	case out.err != nil:
		res.err = parseError{out.err}
	default:
		res.fss = out.fss
		if err := e.applyUserProps(ctx, res.fss, root, out.userProps); err != nil {
			res.fss, res.err = nil, err
		}
	}
	if out.parentRan {
		e.door.recordArgv(st.parent)
		res.parentRan = true
		var perr error
		if out.parentStatus != 0 {
			perr = e.classifyRan(st.parent, out.parentStatus, out.parent)
		}
		res.parentErr = e.parentVerdict(parent, perr)
	}
	return res, nil
}

// classifyRan classifies a command of the start-up script from the status
// and output the script printed for it: that command ran to its end on the
// side, so its failure is zfs's, never ssh's.
func (e *Endpoint) classifyRan(argv []string, code int, out string) error {
	if e.side.Host != "" {
		// As remoteCommand's wrapper reports a remote command's status.
		out += "\n" + exitMarker + strconv.Itoa(code) + "\n"
	}
	return classify(argv, e.side.Host, exitStatus{code: code}, out)
}

// startupOutput is the start-up command's stdout, read.
type startupOutput struct {
	probed       bool // the probe's section was there
	probeStatus  int
	version      string
	fss          []*pdu.Filesystem
	userProps    userPropsListing
	listing      listingRan
	parentRan    bool
	parentStatus int
	parent       string
	// err says what did not parse; the rest is unset after it.
	err error
}

// parseStartup reads the start-up command's output (see startup) of a
// side whose dataset is root.
func parseStartup(br *bufio.Reader, root string) startupOutput {
	var out startupOutput
	first, err := br.ReadString('\n')
	status, ok := strings.CutPrefix(strings.TrimSuffix(first, "\n"), markProbe)
	if err != nil || !ok {
		out.err = fmt.Errorf("start-up command printed %q, want %q first", first, markProbe+"STATUS")
		return out
	}
	if out.probeStatus, err = strconv.Atoi(status); err != nil {
		out.err = fmt.Errorf("start-up command printed %q, want %q first", first, markProbe+"STATUS")
		return out
	}
	out.probed = true
	var version strings.Builder
	for {
		line, err := br.ReadString('\n')
		if strings.TrimSuffix(line, "\n") == markList {
			break
		}
		if err != nil {
			out.err = fmt.Errorf("start-up command ended before its listing")
			return out
		}
		version.WriteString(line)
	}
	out.version = version.String()

	out.fss, out.userProps, out.listing, out.err = parseListing(br, root)
	if out.err != nil || out.listing.status == 0 {
		return out
	}
	// What follows is short: the parent check, if it ran.
	rest, err := io.ReadAll(io.LimitReader(br, 64<<10))
	if err != nil {
		out.err = err
		return out
	}
	rest = bytes.TrimRight(rest, "\n")
	if len(rest) == 0 {
		return out
	}
	i := bytes.LastIndexByte(rest, '\n')
	if s, ok := bytes.CutPrefix(rest[i+1:], []byte(markParent)); ok {
		if out.parentStatus, err = strconv.Atoi(string(s)); err == nil {
			out.parentRan = true
			out.parent = strings.TrimSpace(string(rest[:max(i, 0)]))
		}
	}
	return out
}

// parentVerdict decides what a missing destination root means, given the
// outcome err of asking whether its parent exists (typeArgv): nothing
// received yet (nil), or a mistyped DST (a permanent error).
func (e *Endpoint) parentVerdict(parent string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrDatasetNotExist):
		return pdu.PermanentError(fmt.Errorf("destination parent %s does not exist; create it (zfs create %s) or choose another DST: %w",
			e.where(parent), shellQuote(parent), err))
	default:
		return fmt.Errorf("check destination parent %s: %w", e.where(parent), err)
	}
}
