package endpoints

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
// into the tags of each snapshot name.
func parseHolds(out string) (map[string][]string, error) {
	holds := map[string][]string{}
	for i, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) < 2 {
			return nil, fmt.Errorf("zfs holds output line %d: want name, tag and time separated by tabs, got %q", i+1, line)
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
		if err != nil {
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
		argv, err := holdsArgv(fs, snaps)
		if err != nil {
			return nil, pdu.PermanentError(err)
		}
		var out bytes.Buffer
		if err := e.run(ctx, argv, nil, &out); err != nil {
			return nil, fmt.Errorf("list holds on %s: %w", e.where(fs), err)
		}
		holds, err := parseHolds(out.String())
		if err != nil {
			return nil, pdu.PermanentError(fmt.Errorf("list holds on %s: %w", e.where(fs), err))
		}
		var tagged []*pdu.FilesystemVersion
		for _, v := range snaps {
			for _, t := range holds[v.FullPath(fs)] {
				if t == tag {
					tagged = append(tagged, v)
				}
			}
		}
		if len(tagged) == 0 {
			return nil, nil
		}
		argv, err = releaseArgv(fs, tagged, tag)
		if err != nil {
			return nil, pdu.PermanentError(err)
		}
		if err := e.run(ctx, argv, nil, nil); err != nil {
			return nil, fmt.Errorf("release %s on %s: %w", tag, e.where(fs), err)
		}
		return tagged, nil
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
		case errors.Is(err, ErrNoSuchHold):
		default:
			errs = append(errs, fmt.Errorf("release %s on %s: %w", tag, e.where(v.FullPath(fs)), err))
		}
	}
	return released, errors.Join(errs...)
}
