package endpoints

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/zrep/zrep/pdu"
)

// propUserRefs counts a snapshot's user holds.
const propUserRefs = "userrefs"

// destroyBatch bounds the snapshots of one `zfs destroy fs@a,b,c`, so that
// a command line stays far below ARG_MAX, over ssh too.
const destroyBatch = 256

// snapshotArgvs takes snapshot name on req's filesystems: `zfs snapshot
// -r` for a whole tree, one `zfs snapshot` naming them all where the
// platform allows several names (OpenZFS), else one command each
// (zfs-fuse). The second result says whether the set is taken by one
// command, atomically.
func snapshotArgvs(req *pdu.SnapshotReq, caps Capabilities) ([][]string, bool, error) {
	if len(req.Filesystems) == 0 {
		return nil, false, errors.New("snapshot: no filesystem given")
	}
	if err := checkVersionName(req.Name); err != nil {
		return nil, false, fmt.Errorf("snapshot: %w", err)
	}
	var names []string
	for _, fs := range req.Filesystems {
		if err := CheckDatasetName(fs); err != nil {
			return nil, false, fmt.Errorf("snapshot: %w", err)
		}
		names = append(names, fs+"@"+req.Name)
	}
	switch {
	case req.Recursive:
		return [][]string{{"zfs", "snapshot", "-r", names[0]}}, true, nil
	case len(names) == 1 || caps.NameLists:
		return [][]string{append([]string{"zfs", "snapshot"}, names...)}, true, nil
	}
	argvs := make([][]string, 0, len(names))
	for _, n := range names {
		argvs = append(argvs, []string{"zfs", "snapshot", n})
	}
	return argvs, false, nil
}

// destroyListArgvs destroys snaps of fs in `zfs destroy fs@a,b,c`
// commands of up to destroyBatch snapshots each.
func destroyListArgvs(fs string, snaps []*pdu.FilesystemVersion) ([][]string, [][]*pdu.FilesystemVersion, error) {
	if err := CheckDatasetName(fs); err != nil {
		return nil, nil, fmt.Errorf("destroy: %w", err)
	}
	var argvs [][]string
	var groups [][]*pdu.FilesystemVersion
	for start := 0; start < len(snaps); start += destroyBatch {
		group := snaps[start:min(start+destroyBatch, len(snaps))]
		names := make([]string, 0, len(group))
		for _, v := range group {
			if v == nil || v.Type != pdu.Snapshot {
				return nil, nil, fmt.Errorf("destroy %s: only snapshots are destroyed in a list", fs)
			}
			// Names hold no ',' or '%' (checkVersionName), so the list
			// cannot be misread as another snapshot or a range.
			if err := checkVersionName(v.Name); err != nil {
				return nil, nil, fmt.Errorf("destroy %s: %w", fs, err)
			}
			names = append(names, v.Name)
		}
		argvs = append(argvs, []string{"zfs", "destroy", fs + "@" + strings.Join(names, ",")})
		groups = append(groups, group)
	}
	return argvs, groups, nil
}

// checkHoldTag keeps a hold tag from being read as an option or splitting.
func checkHoldTag(tag string) error {
	if tag == "" || strings.HasPrefix(tag, "-") || strings.ContainsAny(tag, "\x00\n\t,") || len(tag) > 255 {
		return fmt.Errorf("invalid hold tag %q", tag)
	}
	return nil
}

// holdArgv puts user hold tag on fs@snap.
func holdArgv(fs string, snap *pdu.FilesystemVersion, tag string) ([]string, error) {
	if err := checkHoldTag(tag); err != nil {
		return nil, err
	}
	if err := CheckDatasetName(fs); err != nil {
		return nil, fmt.Errorf("hold: %w", err)
	}
	if snap == nil || snap.Type != pdu.Snapshot {
		return nil, fmt.Errorf("hold %s: only a snapshot can be held", fs)
	}
	if err := checkVersionName(snap.Name); err != nil {
		return nil, fmt.Errorf("hold %s: %w", fs, err)
	}
	return []string{"zfs", "hold", tag, snap.FullPath(fs)}, nil
}

// releaseArgv removes user hold tag from the snapshots of fs.
func releaseArgv(fs string, snaps []*pdu.FilesystemVersion, tag string) ([]string, error) {
	if err := checkHoldTag(tag); err != nil {
		return nil, err
	}
	return snapshotListArgv([]string{"zfs", "release", tag}, fs, snaps)
}

// holdsArgv lists the user holds of the snapshots of fs: `zfs holds -H`,
// OpenZFS only (zfs-fuse's needs a Python helper it lacks).
func holdsArgv(fs string, snaps []*pdu.FilesystemVersion) ([]string, error) {
	return snapshotListArgv([]string{"zfs", "holds", "-H"}, fs, snaps)
}

func snapshotListArgv(argv []string, fs string, snaps []*pdu.FilesystemVersion) ([]string, error) {
	if err := CheckDatasetName(fs); err != nil {
		return nil, fmt.Errorf("%s: %w", argv[1], err)
	}
	if len(snaps) == 0 {
		return nil, fmt.Errorf("%s %s: no snapshot given", argv[1], fs)
	}
	for _, v := range snaps {
		if v == nil || v.Type != pdu.Snapshot {
			return nil, fmt.Errorf("%s %s: only snapshots", argv[1], fs)
		}
		if err := checkVersionName(v.Name); err != nil {
			return nil, fmt.Errorf("%s %s: %w", argv[1], fs, err)
		}
		argv = append(argv, v.FullPath(fs))
	}
	return argv, nil
}

// parseHolds reads `zfs holds -H` output (name, tag, time; tab-separated)
// of the snapshots names into the tags of each. A tag is free text to
// zfs, tabs and newlines included: any line that is not three fields
// naming one of names is an error, and the caller reads no tag from it.
func parseHolds(out string, names map[string]bool) (map[string][]string, error) {
	holds := map[string][]string{}
	if out == "" {
		return holds, nil
	}
	body, ok := strings.CutSuffix(out, "\n")
	if !ok {
		return nil, fmt.Errorf("zfs holds output cut short, without its newline")
	}
	for i, line := range strings.Split(body, "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 || f[1] == "" || f[2] == "" {
			return nil, fmt.Errorf("zfs holds output line %d: want name, tag and time separated by tabs, got %q", i+1, line)
		}
		if !names[f[0]] {
			return nil, fmt.Errorf("zfs holds output line %d: %q, which was not asked for", i+1, f[0])
		}
		holds[f[0]] = append(holds[f[0]], f[1])
	}
	return holds, nil
}

// TakeSnapshots takes req.Name on req's filesystems, all under the side's
// dataset: in one command where it can (`zfs snapshot -r`, or several
// names where the platform allows), so that the set is atomic; on zfs-fuse
// without -r, one command per filesystem, and a failure leaves the earlier
// ones taken.
func (e *Endpoint) TakeSnapshots(ctx context.Context, req *pdu.SnapshotReq) (*pdu.SnapshotRes, error) {
	for _, fs := range req.Filesystems {
		if !e.owns(fs) {
			return nil, pdu.PermanentError(fmt.Errorf("snapshot: endpoint does not allow access to filesystem %s (outside %s)", fs, e.side))
		}
	}
	caps, err := e.Capabilities(ctx)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", e.side, err)
	}
	argvs, atomic, err := snapshotArgvs(req, caps)
	if err != nil {
		return nil, pdu.PermanentError(err)
	}
	for i, argv := range argvs {
		if err := e.run(ctx, argv, nil, nil); err != nil {
			if !atomic && i > 0 {
				return nil, fmt.Errorf("snapshot %s after %d of %d filesystems (the earlier ones keep @%s): %w",
					e.where(req.Filesystems[i]), i, len(argvs), req.Name, err)
			}
			if errors.Is(err, ErrAlreadyExists) {
				// The first command failed: nothing of the set was taken.
				return nil, fmt.Errorf("snapshot %s: %w: %w", e.where(req.Filesystems[i]), pdu.ErrSnapshotExists, err)
			}
			return nil, fmt.Errorf("snapshot %s: %w", e.where(req.Filesystems[i]), err)
		}
	}
	return &pdu.SnapshotRes{Atomic: atomic}, nil
}

// destroyBatched destroys snaps of fs with `zfs destroy fs@a,b,c`, and
// where a list fails (one snapshot gained a hold meanwhile, say) destroys
// that list's snapshots one by one, so each gets its own outcome.
func (e *Endpoint) destroyBatched(ctx context.Context, fs string, snaps []*pdu.FilesystemVersion) (*pdu.DestroySnapshotsRes, error) {
	argvs, groups, err := destroyListArgvs(fs, snaps)
	if err != nil {
		return nil, pdu.PermanentError(err)
	}
	res := &pdu.DestroySnapshotsRes{}
	for i, argv := range argvs {
		if err := e.run(ctx, argv, nil, nil); err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			e.log.Debug("destroying a list failed; one by one", "filesystem", fs, "err", err)
			res.Results = append(res.Results, e.destroyEach(ctx, fs, groups[i])...)
			continue
		}
		for _, v := range groups[i] {
			res.Results = append(res.Results, &pdu.DestroySnapshotRes{Snapshot: v})
		}
	}
	return res, nil
}

// destroyEach destroys each of snaps with its own command.
func (e *Endpoint) destroyEach(ctx context.Context, fs string, snaps []*pdu.FilesystemVersion) []*pdu.DestroySnapshotRes {
	var out []*pdu.DestroySnapshotRes
	for _, v := range snaps {
		r := &pdu.DestroySnapshotRes{Snapshot: v}
		argv, err := destroyArgv(fs, v)
		if err == nil {
			err = e.run(ctx, argv, nil, nil)
		}
		switch {
		case errors.Is(err, ErrDatasetNotExist):
			// Pruned meanwhile by another run from this source.
			r.Gone = true
		case err != nil:
			r.Error = err.Error()
		}
		out = append(out, r)
	}
	return out
}

// Hold puts user hold tag on fs@snap; the tag being there already is no
// error.
func (e *Endpoint) Hold(ctx context.Context, fs string, snap *pdu.FilesystemVersion, tag string) error {
	if !e.owns(fs) {
		return pdu.PermanentError(fmt.Errorf("hold: endpoint does not allow access to filesystem %s (outside %s)", fs, e.side))
	}
	argv, err := holdArgv(fs, snap, tag)
	if err != nil {
		return pdu.PermanentError(err)
	}
	if err := e.run(ctx, argv, nil, nil); err != nil && !errors.Is(err, ErrHoldExists) {
		return fmt.Errorf("hold %s: %w", e.where(snap.FullPath(fs)), err)
	}
	return nil
}

// Release removes user hold tag from those of snaps that have it and
// returns them. Where `zfs holds` works (OpenZFS) it asks which have the
// tag and releases them in one command; elsewhere (zfs-fuse) it releases
// each and takes "no such tag" for a snapshot without it.
func (e *Endpoint) Release(ctx context.Context, fs string, snaps []*pdu.FilesystemVersion, tag string) ([]*pdu.FilesystemVersion, error) {
	if !e.owns(fs) {
		return nil, pdu.PermanentError(fmt.Errorf("release: endpoint does not allow access to filesystem %s (outside %s)", fs, e.side))
	}
	if len(snaps) == 0 {
		return nil, nil
	}
	caps, err := e.Capabilities(ctx)
	if err != nil {
		return nil, fmt.Errorf("release holds on %s: %w", e.where(fs), err)
	}
	if caps.NameLists {
		tagged, listed, err := e.tagged(ctx, fs, snaps, tag)
		switch {
		case err != nil:
			return nil, err
		case listed && len(tagged) == 0:
			return nil, nil
		case listed:
			argv, err := releaseArgv(fs, tagged, tag)
			if err != nil {
				return nil, pdu.PermanentError(err)
			}
			err = e.run(ctx, argv, nil, nil)
			if err == nil {
				return tagged, nil
			}
			if !errors.Is(err, ErrDatasetNotExist) {
				return nil, fmt.Errorf("release %s on %s: %w", tag, e.where(fs), err)
			}
			// One of them was pruned meanwhile by another run from this
			// source: release the others one by one.
			snaps = tagged
		}
		// A hold's tag (another tool's) could not be read as data:
		// release each, as where there is no `zfs holds`.
	}
	var released []*pdu.FilesystemVersion
	var errs []error
	for _, v := range snaps {
		argv, err := releaseArgv(fs, []*pdu.FilesystemVersion{v}, tag)
		if err != nil {
			return released, pdu.PermanentError(err)
		}
		switch err := e.run(ctx, argv, nil, nil); {
		case err == nil:
			released = append(released, v)
		case errors.Is(err, ErrNoSuchHold), errors.Is(err, ErrDatasetNotExist):
			// No hold of ours, or pruned meanwhile by another run.
		default:
			errs = append(errs, fmt.Errorf("release %s on %s: %w", tag, e.where(v.FullPath(fs)), err))
		}
	}
	return released, errors.Join(errs...)
}

// guidsArgv reads the guids of versions of fs, in one command.
func guidsArgv(fs string, vs []*pdu.FilesystemVersion) ([]string, error) {
	if err := CheckDatasetName(fs); err != nil {
		return nil, fmt.Errorf("check guids: %w", err)
	}
	argv := []string{"zfs", "get", "-H", "-p", "-o", "name,value", propGuid}
	for _, v := range vs {
		if v == nil {
			return nil, fmt.Errorf("check guids of %s: no snapshot given", fs)
		}
		if err := checkVersionName(v.Name); err != nil {
			return nil, fmt.Errorf("check guids of %s: %w", fs, err)
		}
		argv = append(argv, v.FullPath(fs))
	}
	return argv, nil
}

// parseGuids reads `zfs get -H -p -o name,value guid NAME...` output:
// every line a name asked for, once, and a number.
func parseGuids(out string, names map[string]bool) (map[string]uint64, error) {
	guids := map[string]uint64{}
	for i, line := range strings.SplitAfter(out, "\n") {
		if line == "" {
			continue
		}
		l, ok := strings.CutSuffix(line, "\n")
		f := strings.Split(l, "\t")
		if !ok || len(f) != 2 {
			return nil, fmt.Errorf("zfs get guid output line %d: want name and guid separated by a tab, got %q", i+1, line)
		}
		if !names[f[0]] {
			return nil, fmt.Errorf("zfs get guid output line %d: %q, which was not asked for", i+1, f[0])
		}
		if _, dup := guids[f[0]]; dup {
			return nil, fmt.Errorf("zfs get guid output line %d: %q a second time", i+1, f[0])
		}
		g, ok := parseUint([]byte(f[1]))
		if !ok {
			return nil, fmt.Errorf("zfs listed %q with guid %q, which is not a number", f[0], f[1])
		}
		guids[f[0]] = g
	}
	return guids, nil
}

// checkGuids reads the guids of snaps of fs, in commands of up to
// destroyBatch names, and returns those whose guid is the one the request
// carries; each of the others (gone, or replaced by another of the same
// name) gets a result saying so. An error means nothing could be checked.
func (e *Endpoint) checkGuids(ctx context.Context, fs string, snaps []*pdu.FilesystemVersion) (ok []*pdu.FilesystemVersion, refused []*pdu.DestroySnapshotRes, err error) {
	for start := 0; start < len(snaps); start += destroyBatch {
		group := snaps[start:min(start+destroyBatch, len(snaps))]
		argv, err := guidsArgv(fs, group)
		if err != nil {
			return nil, nil, pdu.PermanentError(err)
		}
		names := map[string]bool{}
		for _, v := range group {
			names[v.FullPath(fs)] = true
		}
		var out bytes.Buffer
		// A snapshot that is gone makes zfs say so and exit 1 after
		// printing the others.
		if err := e.run(ctx, argv, nil, &out); err != nil && !errors.Is(err, ErrDatasetNotExist) {
			return nil, nil, fmt.Errorf("check guids of snapshots of %s before destroying them: %w", e.where(fs), err)
		}
		guids, err := parseGuids(out.String(), names)
		if err != nil {
			return nil, nil, pdu.PermanentError(fmt.Errorf("check guids of snapshots of %s before destroying them: %w", e.where(fs), err))
		}
		for _, v := range group {
			g, found := guids[v.FullPath(fs)]
			switch {
			case !found:
				refused = append(refused, &pdu.DestroySnapshotRes{Snapshot: v, Gone: true})
			case v.Guid == 0 || g != v.Guid:
				refused = append(refused, &pdu.DestroySnapshotRes{Snapshot: v, Error: fmt.Sprintf(
					"guid %d is not the %d zrep listed: replaced by another of the same name since; left in place", g, v.Guid)})
			default:
				ok = append(ok, v)
			}
		}
	}
	return ok, refused, nil
}

// tagged lists the holds of snaps of fs (`zfs holds -H`) and returns those
// that carry tag. listed is false when the output holds a line that is not
// strictly one hold of one of snaps (another tool's tag with a tab or a
// newline): then nothing is read from it.
func (e *Endpoint) tagged(ctx context.Context, fs string, snaps []*pdu.FilesystemVersion, tag string) (tagged []*pdu.FilesystemVersion, listed bool, err error) {
	argv, err := holdsArgv(fs, snaps)
	if err != nil {
		return nil, false, pdu.PermanentError(err)
	}
	var out bytes.Buffer
	if err := e.run(ctx, argv, nil, &out); err != nil {
		if errors.Is(err, ErrDatasetNotExist) {
			// One of snaps was pruned meanwhile by another run from this
			// source: the caller releases one by one.
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("list holds on %s: %w", e.where(fs), err)
	}
	names := map[string]bool{}
	for _, v := range snaps {
		names[v.FullPath(fs)] = true
	}
	holds, err := parseHolds(out.String(), names)
	if err != nil {
		e.log.Debug("holds not read; releasing one by one", "filesystem", fs, "err", err)
		return nil, false, nil
	}
	for _, v := range snaps {
		if slices.Contains(holds[v.FullPath(fs)], tag) {
			tagged = append(tagged, v)
		}
	}
	return tagged, true, nil
}
