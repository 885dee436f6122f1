package endpoints

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
)

// Capabilities are the zfs features a side has. zrep probes once per side
// per run and uses only what is there.
type Capabilities struct {
	// Version is the first line of `zfs version` (e.g. `zfs-2.3.2-2`),
	// empty on platforms without that command.
	Version string
	// ListParsable: `zfs list -p` prints exact numbers.
	ListParsable bool
	// ListTypes: `zfs get` takes -t.
	ListTypes bool
	// SendEstimate: `zfs send -nvP` estimates a stream's size.
	SendEstimate bool
	// Bookmarks exist and can be incremental sources.
	Bookmarks bool
	// ResumeTokens: `zfs receive -s` keeps partial state, `receive -A`
	// discards it, `send -t` resumes it, `receive_resume_token` shows it.
	ResumeTokens bool
	// NameLists: `zfs snapshot` takes several names in one command,
	// `zfs destroy` takes `fs@a,b,c`, and `zfs holds` lists holds.
	// zfs-fuse has none of these.
	NameLists bool
	// Encryption: native encryption (`encryption`, `encryptionroot`,
	// `keystatus`, `zfs send -w`). zfs-fuse has none: its datasets are
	// all unencrypted.
	Encryption bool
}

// openZFS2 is what `zfs version` succeeding implies: that command arrived
// in OpenZFS 0.8, after every feature listed here.
var openZFS2 = Capabilities{ListParsable: true, ListTypes: true, SendEstimate: true, Bookmarks: true, ResumeTokens: true, NameLists: true, Encryption: true}

// String lists the capabilities for a log line.
func (c Capabilities) String() string {
	name := "legacy zfs (zfs-fuse or pre-0.8)"
	if c.Version != "" {
		name = c.Version
	}
	var have []string
	for _, f := range []struct {
		ok   bool
		name string
	}{
		{c.ListParsable, "list-p"},
		{c.ListTypes, "get-t"},
		{c.SendEstimate, "send-estimate"},
		{c.Bookmarks, "bookmarks"},
		{c.ResumeTokens, "resume-tokens"},
		{c.NameLists, "name-lists"},
		{c.Encryption, "encryption"},
	} {
		if f.ok {
			have = append(have, f.name)
		}
	}
	if len(have) == 0 {
		return name + " (none of list-p, send-estimate, bookmarks, resume-tokens)"
	}
	return name + " (" + strings.Join(have, ", ") + ")"
}

// probe runs `zfs version` once. A zfs that does not know the command is a
// legacy one; a failure to run zfs at all (ssh down, zfs missing) is an
// error, so a lost connection is not mistaken for an old platform.
func (e *Endpoint) probe(ctx context.Context) (Capabilities, error) {
	var out bytes.Buffer
	err := e.run(ctx, versionArgv(), nil, &out)
	if err == nil {
		caps := openZFS2
		caps.Version, _, _ = strings.Cut(strings.TrimSpace(out.String()), "\n")
		return caps, nil
	}
	if errors.Is(err, ErrUnsupported) {
		return Capabilities{}, nil
	}
	return Capabilities{}, fmt.Errorf("probe zfs features: %w", err)
}

// Capabilities returns the side's zfs features, probing on first use.
func (e *Endpoint) Capabilities(ctx context.Context) (Capabilities, error) {
	e.capsMu.Lock()
	defer e.capsMu.Unlock()
	if e.caps != nil {
		return *e.caps, nil
	}
	caps, err := e.probe(ctx)
	if err != nil {
		return Capabilities{}, err
	}
	e.caps = &caps
	e.log.Debug("zfs capabilities", "role", e.opts.Role, "side", e.side.String(), "capabilities", caps.String())
	return caps, nil
}
