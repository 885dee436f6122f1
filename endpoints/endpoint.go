package endpoints

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zrep/zrep/pdu"
)

// Options configure an Endpoint.
type Options struct {
	// Role is "source" or "destination"; it names the side in logs and in
	// the argv log.
	Role string
	// Recursive includes every descendant of the side's dataset.
	Recursive bool
	// SSH settings, used when the side is remote.
	SSH SSHOptions
	// Logger receives debug lines for every command; nil discards them.
	Logger *slog.Logger
	// Holds lists each snapshot's user holds (`userrefs`) too, for
	// pruning, which leaves held snapshots alone.
	Holds bool
	// Link is how the side's streams cross the link: compression, rate.
	Link Link
	// CommandTimeout bounds each command that carries no stream (a
	// listing, a get, a destroy, a hold, a snapshot), the ssh login
	// before it included; one that takes longer is ended and fails with
	// a retryable error. 0 leaves them unbounded. Streams are bounded by
	// their stall timeout instead.
	CommandTimeout time.Duration
	// Sudo runs zfs through `sudo -n` on a remote side.
	Sudo bool
}

// commandTimeoutError is why a command was ended after CommandTimeout.
type commandTimeoutError struct{ limit time.Duration }

func (e *commandTimeoutError) Error() string {
	return fmt.Sprintf("no answer within %s, ended (--command-timeout); it is retried", e.limit)
}

// bounded is ctx for one command that carries no stream: ended after
// CommandTimeout with a retryable error as its cause.
func (e *Endpoint) bounded(ctx context.Context) (context.Context, context.CancelFunc) {
	if e.opts.CommandTimeout <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeoutCause(ctx, e.opts.CommandTimeout,
		pdu.RetryableError(&commandTimeoutError{limit: e.opts.CommandTimeout}))
}

// Endpoint runs zfs on one side, locally or over ssh, and is both the
// engine's Sender and its Receiver. It is safe for concurrent use.
type Endpoint struct {
	side Side
	opts Options
	log  *slog.Logger
	door *runner
	ssh  *sshConn // nil for a local side

	capsMu sync.Mutex
	caps   *Capabilities

	linkCheck linkCheck
}

// New returns an endpoint for side. It contacts nothing: the ssh login and
// the capability probe happen on first use.
func New(side Side, opts Options) *Endpoint {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Endpoint{side: side, opts: opts, log: log}
	e.door = newRunner(log, opts.Role, side.Host)
	if !side.Local() {
		e.ssh = &sshConn{side: side, opts: opts.SSH, run: e.door}
	}
	return e
}

// Side is the side the endpoint drives.
func (e *Endpoint) Side() Side { return e.side }

// Close ends the shared ssh connection, if any, and removes its control
// directory. It is safe to call more than once and on every exit path;
// the endpoint cannot be used afterwards.
func (e *Endpoint) Close() error {
	if e.ssh == nil {
		return nil
	}
	return e.ssh.close()
}

// remoteArgv is argv as the remote side runs it: through sudo -n with
// Sudo, else unchanged.
func (e *Endpoint) remoteArgv(argv []string) []string {
	if !e.opts.Sudo {
		return argv
	}
	return sudoArgv(argv)
}

// command wraps the zfs argv of a command that carries no stream for this
// side. On a remote side it runs as a one-program pipeline, which reports
// its process group, and onKill ends that group when zrep ends the
// command (a timeout, a signal): a hung remote zfs does not notice that
// its ssh client is gone.
func (e *Endpoint) command(ctx context.Context, zfsArgv []string) (argv []string, onKill func(stderr string), err error) {
	if e.ssh == nil {
		return zfsArgv, nil, nil
	}
	return e.requestCommand(ctx, pipelineRequest([][]string{zfsArgv}))
}

// requestCommand is the argv that runs req on this side, its template
// under sh here, in ssh over there, where onKill ends the process group
// that the request reported (all but a kill report theirs). With Sudo a
// remote side runs every zfs of req through sudo -n.
func (e *Endpoint) requestCommand(ctx context.Context, req Request) (argv []string, onKill func(stderr string), err error) {
	if e.ssh == nil {
		return req.Argv(), nil, nil
	}
	if e.opts.Sudo {
		req = req.withSudo()
	}
	argv, err = e.ssh.wrapScript(ctx, req.String())
	if err != nil {
		return nil, nil, err
	}
	return argv, e.ssh.killGroup, nil
}

// outputRequest runs req, which carries no stream, on this side within
// CommandTimeout and returns its stdout; zfsArgv names it in logs and
// errors.
func (e *Endpoint) outputRequest(ctx context.Context, zfsArgv []string, req Request) (string, error) {
	ctx, cancel := e.bounded(ctx)
	defer cancel()
	argv, onKill, err := e.requestCommand(ctx, req)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	// The caller records the zfs commands that ran.
	p, err := e.door.launch(ctx, zfsArgv, argv, nil, &out, onKill)
	if err != nil {
		return "", err
	}
	err = p.wait()
	return out.String(), err
}

// run runs one zfs command that carries no stream on this side to
// completion, within CommandTimeout.
func (e *Endpoint) run(ctx context.Context, zfsArgv []string, stdin io.Reader, stdout io.Writer) error {
	ctx, cancel := e.bounded(ctx)
	defer cancel()
	argv, onKill, err := e.command(ctx, zfsArgv)
	if err != nil {
		return err
	}
	p, err := e.door.startWith(ctx, zfsArgv, argv, stdin, stdout, onKill)
	if err != nil {
		return err
	}
	return p.wait()
}

// output runs zfsArgv and returns its stdout.
func (e *Endpoint) output(ctx context.Context, zfsArgv []string) (string, error) {
	var out bytes.Buffer
	err := e.run(ctx, zfsArgv, nil, &out)
	return out.String(), err
}

// parseError is a listing zfs printed but zrep could not read.
type parseError struct{ err error }

func (e parseError) Error() string { return e.err.Error() }
func (e parseError) Unwrap() error { return e.err }

func isParseError(err error) bool {
	var pe parseError
	return errors.As(err, &pe)
}

// list runs a `zfs get` listing of native properties of root and parses
// its output as it comes, without holding it whole. The command's own
// failure wins over what its output looked like (a connection lost
// mid-line is retryable); output that does not parse from a command that
// succeeded is a parseError.
func (e *Endpoint) list(ctx context.Context, zfsArgv []string, root string) ([]*pdu.Filesystem, error) {
	ctx, cancel := e.bounded(ctx)
	defer cancel()
	argv, onKill, err := e.command(ctx, zfsArgv)
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", describe(zfsArgv, e.side.Host), err)
	}
	growPipe(pw)
	p, err := e.door.startWith(ctx, zfsArgv, argv, nil, pw, onKill)
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, err
	}
	fss, perr := ParseGet(pr, root)
	if perr != nil {
		// Read to the end, so that the command ends on its own and its
		// own verdict can be heard.
		io.Copy(io.Discard, pr)
	}
	pr.Close()
	if err := p.wait(); err != nil {
		return nil, err
	}
	if perr != nil {
		return nil, parseError{perr}
	}
	return fss, nil
}

// listAll runs the listing command l (native properties, then zrep's own)
// of root, one command, and parses it as list does.
func (e *Endpoint) listAll(ctx context.Context, l listing, root string) ([]*pdu.Filesystem, error) {
	lctx, cancel := e.bounded(ctx)
	defer cancel()
	argv, onKill, err := e.requestCommand(lctx, l.request())
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", describe(l.list, e.side.Host), err)
	}
	growPipe(pw)
	// Errors name the native listing: the command's status is its, or
	// the sources listing's after it.
	p, err := e.door.launch(lctx, l.list, argv, nil, pw, onKill)
	pw.Close()
	if err != nil {
		pr.Close()
		e.door.recordArgv(l.list)
		return nil, err
	}
	br := bufio.NewReaderSize(pr, 1<<20)
	var fss []*pdu.Filesystem
	var up userPropsListing
	var ran listingRan
	head, perr := br.ReadString('\n')
	if perr == nil && head != markList+"\n" {
		perr = fmt.Errorf("listing printed %q, want %q first", head, markList)
	}
	if perr == nil {
		fss, up, ran, perr = parseListing(br, root)
	}
	io.Copy(io.Discard, pr)
	pr.Close()
	werr := p.wait()
	e.door.recordListing(l, ran)
	switch {
	case werr != nil:
		return nil, werr
	case perr != nil:
		return nil, parseError{perr}
	}
	if err := e.applyUserProps(ctx, fss, root, up); err != nil {
		return nil, err
	}
	return fss, nil
}

// ListFilesystems lists the side's dataset (and with Recursive its
// descendants) with snapshots and bookmarks, in one zfs command, parents
// before children.
//
// A destination whose dataset does not exist yet gives an empty list if
// its parent exists, and a permanent error naming the parent if not; a
// missing source dataset is a permanent error. Connection failures are
// retryable.
//
// The side's first listing is also its probe (Capabilities) and, for a
// destination, its parent check: one command, one round trip over ssh.
func (e *Endpoint) ListFilesystems(ctx context.Context) ([]*pdu.Filesystem, error) {
	root := e.side.Dataset
	fss, checkParent, err := e.listRoot(ctx)
	if err != nil && !isParseError(err) {
		if !errors.Is(err, ErrDatasetNotExist) {
			return nil, fmt.Errorf("list %s: %w", e.side, err)
		}
		if e.opts.Role != "destination" {
			return nil, pdu.PermanentError(fmt.Errorf("source %s does not exist: %w", e.side, err))
		}
		return nil, checkParent(ctx, root)
	}
	if err != nil {
		return nil, pdu.PermanentError(fmt.Errorf("list %s: %w", e.side, err))
	}
	if !e.opts.Recursive {
		// Depth 1 brings the root's snapshots and also its direct children
		// (zfs-fuse and OpenZFS alike); only the root is ours.
		fss = slices.DeleteFunc(fss, func(fs *pdu.Filesystem) bool { return fs.Path != root })
	}
	return fss, nil
}

// listRoot lists the side's dataset: on first use with the start-up
// command, which also probes (and keeps the capabilities) and, for a
// destination, checks the parent; later with the listing alone. err is
// the listing's error; checkParent decides what a missing destination
// means, from the start-up command's answer where it gave one.
func (e *Endpoint) listRoot(ctx context.Context) (fss []*pdu.Filesystem, checkParent func(context.Context, string) error, err error) {
	e.capsMu.Lock()
	if e.caps != nil {
		caps := *e.caps
		e.capsMu.Unlock()
		fss, err = e.listAll(ctx, newListing(e.side.Dataset, e.opts.Recursive, caps, e.listExtra()...), e.side.Dataset)
		return fss, e.checkParent, err
	}
	// Held throughout, so that a concurrent Capabilities waits for this
	// probe rather than running its own.
	defer e.capsMu.Unlock()
	startCtx, cancel := e.bounded(ctx)
	defer cancel()
	res, err := e.listStartup(startCtx)
	if err != nil {
		return nil, e.checkParent, err
	}
	e.caps = &res.caps
	e.log.Debug("zfs capabilities", "role", e.opts.Role, "side", e.side.String(), "capabilities", res.caps.String())
	if res.parentRan {
		return res.fss, func(context.Context, string) error { return res.parentErr }, res.err
	}
	return res.fss, e.checkParent, res.err
}

// listExtra are the properties the side's listing needs beyond the
// planner's: userrefs where holds are read (pruning, --hold).
func (e *Endpoint) listExtra() []string {
	if e.opts.Holds {
		return []string{propUserRefs}
	}
	return nil
}

// checkParent decides what a missing destination root means: nothing
// received yet (nil), or a mistyped DST (permanent error).
func (e *Endpoint) checkParent(ctx context.Context, root string) error {
	parent := pdu.Parent(root)
	if parent == "" {
		return pdu.PermanentError(fmt.Errorf("destination pool %s does not exist; create the pool or choose another DST: %w", e.where(root), ErrDatasetNotExist))
	}
	_, err := e.output(ctx, typeArgv(parent))
	return e.parentVerdict(parent, err)
}

// where names a dataset on this side for messages.
func (e *Endpoint) where(ds string) string {
	s := e.side
	s.Dataset = ds
	return s.String()
}

// owns reports whether fs is the side's dataset or, when recursive, one of
// its descendants.
func (e *Endpoint) owns(fs string) bool {
	root := e.side.Dataset
	return fs == root || e.opts.Recursive && strings.HasPrefix(fs, root+"/")
}

// ListFilesystemVersions lists the snapshots and bookmarks of one
// filesystem under the side's dataset; any other filesystem is refused
// with a permanent error.
func (e *Endpoint) ListFilesystemVersions(ctx context.Context, fs string) ([]*pdu.FilesystemVersion, error) {
	if !e.owns(fs) {
		return nil, pdu.PermanentError(fmt.Errorf("endpoint does not allow access to filesystem %s (outside %s)", fs, e.side))
	}
	caps, err := e.Capabilities(ctx)
	if err != nil {
		return nil, fmt.Errorf("list versions of %s: %w", e.where(fs), err)
	}
	fss, err := e.list(ctx, versionsArgv(fs, caps), fs)
	if err != nil && !isParseError(err) {
		return nil, fmt.Errorf("list versions of %s: %w", e.where(fs), err)
	}
	if err != nil {
		return nil, pdu.PermanentError(fmt.Errorf("list versions of %s: %w", e.where(fs), err))
	}
	for _, f := range fss {
		if f.Path == fs {
			return f.Versions, nil
		}
	}
	return nil, nil
}

// DestroySnapshots destroys the snapshots of one filesystem and reports
// each outcome: in `zfs destroy fs@a,b,c` lists where the platform has
// them (OpenZFS), else with one command each (zfs-fuse, and bookmarks).
// Just before, it reads their guids in one command: a snapshot whose guid
// is not the request's (replaced since it was listed) or that is gone is
// left and reported, the others destroyed.
// The error covers only a request zrep refuses (a filesystem outside the
// side's dataset) or a probe that failed.
func (e *Endpoint) DestroySnapshots(ctx context.Context, req *pdu.DestroySnapshotsReq) (*pdu.DestroySnapshotsRes, error) {
	if !e.owns(req.Filesystem) {
		return nil, pdu.PermanentError(fmt.Errorf("endpoint does not allow access to filesystem %s (outside %s)", req.Filesystem, e.side))
	}
	caps, err := e.Capabilities(ctx)
	if err != nil {
		return nil, fmt.Errorf("destroy snapshots of %s: %w", e.where(req.Filesystem), err)
	}
	snaps, refused, err := e.checkGuids(ctx, req.Filesystem, req.Snapshots)
	if err != nil {
		return nil, err
	}
	res, err := e.destroyChecked(ctx, caps, req.Filesystem, snaps)
	if err != nil {
		return nil, err
	}
	// In the request's order.
	byVersion := map[*pdu.FilesystemVersion]*pdu.DestroySnapshotRes{}
	for _, r := range append(res.Results, refused...) {
		byVersion[r.Snapshot] = r
	}
	res.Results = res.Results[:0]
	for _, v := range req.Snapshots {
		if r := byVersion[v]; r != nil {
			res.Results = append(res.Results, r)
			delete(byVersion, v)
		}
	}
	return res, nil
}

// destroyChecked destroys snaps, whose guids were checked.
func (e *Endpoint) destroyChecked(ctx context.Context, caps Capabilities, fs string, snaps []*pdu.FilesystemVersion) (*pdu.DestroySnapshotsRes, error) {
	if len(snaps) == 0 {
		return &pdu.DestroySnapshotsRes{}, nil
	}
	req := &pdu.DestroySnapshotsReq{Filesystem: fs, Snapshots: snaps}
	snapshotsOnly := true
	for _, v := range req.Snapshots {
		snapshotsOnly = snapshotsOnly && v != nil && v.Type == pdu.Snapshot
	}
	if caps.NameLists && snapshotsOnly && len(req.Snapshots) > 1 {
		return e.destroyBatched(ctx, req.Filesystem, req.Snapshots)
	}
	return &pdu.DestroySnapshotsRes{Results: e.destroyEach(ctx, req.Filesystem, req.Snapshots)}, nil
}

// Send starts `zfs send` and returns its output. Closing the stream before
// its end stops the sender; Close returns the sender's classified error.
// A filesystem outside the side's dataset is refused, as by every other
// request.
func (e *Endpoint) Send(ctx context.Context, req *pdu.SendReq) (pdu.Stream, error) {
	if !e.owns(req.Filesystem) {
		return nil, pdu.PermanentError(fmt.Errorf("send: endpoint does not allow access to filesystem %s (outside %s)", req.Filesystem, e.side))
	}
	argv, err := sendArgv(req, false)
	if err != nil {
		return nil, pdu.PermanentError(err)
	}
	if req.ResumeToken != "" {
		caps, err := e.Capabilities(ctx)
		if err != nil {
			return nil, fmt.Errorf("send %s: %w", e.where(req.Filesystem), err)
		}
		if !caps.ResumeTokens {
			return nil, pdu.PermanentError(fmt.Errorf("send %s: resuming needs zfs send -t, which %s lacks: %w", e.where(req.Filesystem), caps, ErrUnsupported))
		}
	}
	full, onKill, err := e.streamArgv(ctx, argv, true, e.linkCodec())
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("send %s: %w", e.where(req.Filesystem), err)
	}
	// The child writes straight into the pipe (an *os.File, so no copying
	// goroutine); the reader reads its other end with whatever buffer it
	// likes, or splices it into the receiver's stdin (WriteTo).
	growPipe(pw)
	p, err := e.door.startWith(ctx, argv, full, nil, pw, onKill)
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, err
	}
	return e.linkSendStream(ctx, &sendStream{p: p, r: pr}, req.Wire), nil
}

// sendStream is a running `zfs send`.
type sendStream struct {
	p    *process
	r    *os.File
	eof  atomic.Bool // the reader saw the end; Close may come from another goroutine
	once sync.Once
	err  error
}

func (s *sendStream) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	if err == io.EOF {
		s.eof.Store(true)
	}
	return n, err
}

// countingWriter is how a caller that counts the bytes of a stream (the
// engine) hands a writer to WriteTo: Write counts what it passes on;
// Unwrap gives the writer beneath, so that bytes may go to it directly
// (spliced) and be counted with Add.
type countingWriter interface {
	io.Writer
	Unwrap() io.Writer
	Add(n int64)
}

// WriteTo moves the stream to w until its end. When w is, under a
// countingWriter or not, the stdin pipe of a receiving process of this
// package, the data moves from pipe to pipe with splice(2) and never enters
// zrep; otherwise it is copied in chunks of 1 MiB.
func (s *sendStream) WriteTo(w io.Writer) (int64, error) {
	dst, add := w, func(int64) {}
	if cw, ok := w.(countingWriter); ok {
		dst, add = cw.Unwrap(), cw.Add
	}
	if a, ok := dst.(*autoEncoder); ok {
		n, err := a.readFromPipe(s.p.ctx, s.r, add)
		if err == nil {
			s.eof.Store(true)
		}
		return n, err
	}
	if fp, ok := dst.(feedPipe); ok {
		n, handled, err := splicePipes(s.p.ctx, fp.File, s.r, add)
		if handled {
			if err == nil {
				s.eof.Store(true)
			}
			return n, err
		}
	}
	return copyChunks(w, s)
}

// Close stops the sender if its output was not read to the end, waits for
// it, and returns its classified error.
func (s *sendStream) Close() error {
	s.once.Do(func() {
		if !s.eof.Load() {
			s.p.stop()
		}
		s.r.Close()
		s.err = s.p.wait()
	})
	return s.err
}

// EstimateSize runs `zfs send -nvP` where the platform has it; elsewhere it
// runs nothing and returns Known false.
func (e *Endpoint) EstimateSize(ctx context.Context, req *pdu.SendReq) (pdu.SizeEstimate, error) {
	caps, err := e.Capabilities(ctx)
	if err != nil {
		return pdu.SizeEstimate{}, fmt.Errorf("estimate send of %s: %w", e.where(req.Filesystem), err)
	}
	if !caps.SendEstimate || req.ResumeToken != "" && !caps.ResumeTokens {
		return pdu.SizeEstimate{}, nil
	}
	argv, err := sendArgv(req, true)
	if err != nil {
		return pdu.SizeEstimate{}, pdu.PermanentError(err)
	}
	out, err := e.output(ctx, argv)
	if err != nil {
		return pdu.SizeEstimate{}, fmt.Errorf("estimate send of %s: %w", e.where(req.Filesystem), err)
	}
	n, err := parseSendEstimate(out)
	if err != nil {
		return pdu.SizeEstimate{}, pdu.PermanentError(fmt.Errorf("estimate send of %s: %w", e.where(req.Filesystem), err))
	}
	return pdu.SizeEstimate{Bytes: n, Known: true}, nil
}

// ResumeTarget asks `zfs send -nvP -t` what the token continues and finds
// those versions among fs's snapshots and bookmarks. A token this sender
// cannot resume (a version gone, no resumable send) is a permanent error;
// a lost connection stays retryable.
func (e *Endpoint) ResumeTarget(ctx context.Context, fs, token string) (from, to *pdu.FilesystemVersion, err error) {
	caps, err := e.Capabilities(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("resume token for %s: %w", e.where(fs), err)
	}
	if !caps.ResumeTokens {
		return nil, nil, pdu.PermanentError(fmt.Errorf("resume token for %s: %s has no resumable send: %w", e.where(fs), caps, ErrUnsupported))
	}
	argv, err := resumeInfoArgv(token)
	if err != nil {
		return nil, nil, pdu.PermanentError(fmt.Errorf("resume token for %s: %w", e.where(fs), err))
	}
	out, err := e.output(ctx, argv)
	if err != nil {
		if pdu.ClassOf(err) != pdu.Retryable {
			err = pdu.PermanentError(err)
		}
		return nil, nil, fmt.Errorf("resume token for %s: %w", e.where(fs), err)
	}
	ri, err := parseResumeInfo(out)
	if err != nil {
		return nil, nil, pdu.PermanentError(fmt.Errorf("resume token for %s: %w", e.where(fs), err))
	}
	versions, err := e.ListFilesystemVersions(ctx, fs)
	if err != nil {
		return nil, nil, err
	}
	for _, v := range versions {
		switch {
		case v.Type == pdu.Snapshot && v.Guid == ri.ToGuid:
			to = v
		case ri.FromGuid != 0 && v.Guid == ri.FromGuid && (from == nil || from.Type == pdu.Bookmark):
			// A bookmark shares its snapshot's guid; prefer the snapshot.
			from = v
		}
	}
	if to == nil {
		return nil, nil, pdu.PermanentError(fmt.Errorf("resume token for %s continues %s, which is not a snapshot of %s", e.where(fs), ri.ToName, fs))
	}
	if ri.FromGuid != 0 && from == nil {
		return nil, nil, pdu.PermanentError(fmt.Errorf("resume token for %s continues an incremental send from %s, which is gone from %s", e.where(fs), ri.FromName, fs))
	}
	return from, to, nil
}

// Receive runs `zfs receive -u` on req.Filesystem with stream as its input
// until EOF. A stream that ends early gives a retryable error; a refusal
// (modified destination, no space, wrong base) a permanent one.
func (e *Endpoint) Receive(ctx context.Context, req *pdu.ReceiveReq, stream io.Reader) error {
	if !e.owns(req.Filesystem) {
		return pdu.PermanentError(fmt.Errorf("receive: endpoint does not allow access to filesystem %s (outside %s)", req.Filesystem, e.side))
	}
	caps, err := e.Capabilities(ctx)
	if err != nil {
		return fmt.Errorf("receive %s: %w", e.where(req.Filesystem), err)
	}
	argv, err := receiveArgv(req, caps)
	if err != nil {
		return pdu.PermanentError(err)
	}
	codec := e.linkCodec()
	if codec == CodecAuto {
		var compresses bool
		stream, compresses = sampleAuto(stream)
		if !compresses {
			codec = CodecNone
			e.log.Debug("--compress auto: the stream's start does not shrink; it crosses uncompressed", "dataset", req.Filesystem)
		}
	}
	full, onKill, err := e.streamArgv(ctx, argv, false, codec)
	if err != nil {
		return err
	}
	in, afterStart, err := e.linkReceiveInput(ctx, stream, req.Wire, codec)
	if err != nil {
		return fmt.Errorf("receive %s: %w", e.where(req.Filesystem), err)
	}
	p, err := e.door.startWith(ctx, argv, full, in, nil, onKill)
	afterStart()
	if err != nil {
		return err
	}
	return p.wait()
}

// CreatePlaceholder creates fs, not mountable, with zrep:placeholder=on set
// locally. Its parent must exist.
func (e *Endpoint) CreatePlaceholder(ctx context.Context, fs string) error {
	if !e.owns(fs) {
		return pdu.PermanentError(fmt.Errorf("create placeholder: endpoint does not allow access to filesystem %s (outside %s)", fs, e.side))
	}
	argv, err := createPlaceholderArgv(fs, false)
	if err != nil {
		return pdu.PermanentError(err)
	}
	err = e.run(ctx, argv, nil, nil)
	if errors.Is(err, ErrKeyNotLoaded) {
		// Below an encryption root whose key is not loaded (a backup
		// host without keys), zfs creates only an unencrypted dataset.
		// Elsewhere the placeholder inherits its parent's encryption, so
		// that what is received below it unencrypted is encrypted as
		// the operator set the parent up to do.
		argv, _ = createPlaceholderArgv(fs, true)
		e.log.Info("the placeholder's parent is encrypted and its key is not loaded; creating it unencrypted (it holds no data)", "dataset", fs)
		err = e.run(ctx, argv, nil, nil)
	}
	if err != nil {
		return fmt.Errorf("create placeholder %s: %w", e.where(fs), err)
	}
	return nil
}

// ClearPlaceholder sets zrep:placeholder=off on fs and makes it mountable
// again (without mounting it), unless opts set canmount: the receive
// already set the operator's value, which stays.
func (e *Endpoint) ClearPlaceholder(ctx context.Context, fs string, opts pdu.ReceiveOptions) error {
	if !e.owns(fs) {
		return pdu.PermanentError(fmt.Errorf("clear placeholder: endpoint does not allow access to filesystem %s (outside %s)", fs, e.side))
	}
	argvs, err := clearPlaceholderArgvs(fs, opts)
	if err != nil {
		return pdu.PermanentError(err)
	}
	for _, argv := range argvs {
		if err := e.run(ctx, argv, nil, nil); err != nil {
			return fmt.Errorf("clear placeholder %s: %w", e.where(fs), err)
		}
	}
	return nil
}

// Rollback rolls fs back to snapshot to, destroying later snapshots.
func (e *Endpoint) Rollback(ctx context.Context, fs string, to *pdu.FilesystemVersion) error {
	if !e.owns(fs) {
		return pdu.PermanentError(fmt.Errorf("rollback: endpoint does not allow access to filesystem %s (outside %s)", fs, e.side))
	}
	argv, err := rollbackArgv(fs, to)
	if err != nil {
		return pdu.PermanentError(err)
	}
	if err := e.run(ctx, argv, nil, nil); err != nil {
		return fmt.Errorf("rollback %s: %w", e.where(fs), err)
	}
	return nil
}

// AbortPartialReceive discards fs's partial receive state (`zfs receive
// -A`); a platform without resumable receive gives a permanent error.
func (e *Endpoint) AbortPartialReceive(ctx context.Context, fs string) error {
	if !e.owns(fs) {
		return pdu.PermanentError(fmt.Errorf("abort partial receive: endpoint does not allow access to filesystem %s (outside %s)", fs, e.side))
	}
	caps, err := e.Capabilities(ctx)
	if err != nil {
		return fmt.Errorf("abort partial receive %s: %w", e.where(fs), err)
	}
	if !caps.ResumeTokens {
		return pdu.PermanentError(fmt.Errorf("abort partial receive %s: %s has no zfs receive -A: %w", e.where(fs), caps, ErrUnsupported))
	}
	argv, err := abortReceiveArgv(fs)
	if err != nil {
		return pdu.PermanentError(err)
	}
	if err := e.run(ctx, argv, nil, nil); err != nil {
		return fmt.Errorf("abort partial receive %s: %w", e.where(fs), err)
	}
	return nil
}

// SetCursor makes snapshot snap of fs the replication cursor of the
// destination identified by id: `zfs bookmark fs@snap fs#zrep_<id>_<guid>`
// unless that bookmark exists, then `zfs destroy` of each other cursor
// bookmark of id on fs. Creating first means a failure never leaves fs
// without a cursor it had. Where the platform has no bookmarks (zfs-fuse)
// it runs nothing and returns nil.
func (e *Endpoint) SetCursor(ctx context.Context, fs string, snap *pdu.FilesystemVersion, id string) error {
	if !e.owns(fs) {
		return pdu.PermanentError(fmt.Errorf("set replication cursor: endpoint does not allow access to filesystem %s (outside %s)", fs, e.side))
	}
	caps, err := e.Capabilities(ctx)
	if err != nil {
		return fmt.Errorf("set replication cursor of %s: %w", e.where(fs), err)
	}
	if !caps.Bookmarks {
		return nil
	}
	name := pdu.CursorName(id, snap.Guid)
	versions, err := e.ListFilesystemVersions(ctx, fs)
	if err != nil {
		return fmt.Errorf("set replication cursor of %s: %w", e.where(fs), err)
	}
	exists := false
	var stale []*pdu.FilesystemVersion
	for _, v := range versions {
		switch {
		case v.Type != pdu.Bookmark || !pdu.IsCursor(v.Name, id):
		case v.Name == name:
			exists = true
		default:
			stale = append(stale, v)
		}
	}
	if !exists {
		argv, err := bookmarkArgv(fs, snap, name)
		if err != nil {
			return pdu.PermanentError(err)
		}
		if err := e.run(ctx, argv, nil, nil); err != nil {
			return fmt.Errorf("create replication cursor %s#%s: %w", e.where(fs), name, err)
		}
	}
	var errs []error
	for _, v := range stale {
		argv, err := destroyArgv(fs, v)
		if err == nil {
			err = e.run(ctx, argv, nil, nil)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("destroy old replication cursor %s: %w", e.where(v.FullPath(fs)), err))
		}
	}
	return errors.Join(errs...)
}
