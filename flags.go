package main

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/zrep/zrep/endpoints"
	"github.com/zrep/zrep/pdu"
	"github.com/zrep/zrep/replication"
)

// envVar names a flag's environment variable: --ssh-port is ZREP_SSH_PORT.
func envVar(flag string) []string {
	return []string{"ZREP_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))}
}

// repeated is the values of a repeatable flag. A value is never split at
// commas (a regular expression, an ssh option or a property value may
// hold one); the flag is repeated for more. Its ZREP_* variable, which
// cannot be repeated, holds one value per line.
func repeated(c *cli.Context, flag string) []string {
	values := c.StringSlice(flag)
	env := strings.TrimSpace(os.Getenv(envVar(flag)[0]))
	if len(values) != 1 || env == "" || values[0] != env {
		return values
	}
	// The value came from the variable.
	var lines []string
	for _, line := range strings.Split(env, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			lines = append(lines, line)
		}
	}
	return lines
}

// commonFlags are the flags of plan, run and prune (SPEC section 2);
// snapshot and status pick theirs from them.
func commonFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "recursive", Aliases: []string{"r"}, Usage: "include all descendants of SRC"},
		&cli.StringSliceFlag{Name: "exclude", Usage: "skip source datasets whose full name matches `REGEX` (repeatable)"},
		&cli.StringFlag{Name: "snapshots", Usage: "only snapshots whose name after @ matches `REGEX` take part"},
		&cli.StringFlag{Name: "initial", Value: "newest", Usage: "`WHICH` snapshots to send when the destination has nothing: newest, or all"},
		&cli.BoolFlag{Name: "rollback", Usage: "allow rolling the destination back to the newest common snapshot, destroying later snapshots and changes"},
		&cli.IntFlag{Name: "ssh-port", DefaultText: "ssh's own, usually 22", Usage: "ssh `PORT` of every remote side"},
		&cli.StringFlag{Name: "ssh-identity", Aliases: []string{"i"}, Usage: "ssh identity `FILE` for every remote side"},
		&cli.StringSliceFlag{Name: "ssh-option", Usage: "ssh option `OPT`, passed as -o OPT (repeatable)"},
		&cli.BoolFlag{Name: "json", Usage: "print the result as JSON on stdout"},
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "`LEVEL` of the logs on stderr: debug, info, warn or error"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "only errors on stderr; run prints its Report only when it fails (unless --json)"},
		&cli.IntFlag{Name: "jobs", Value: defaultJobs, Usage: "replicate up to `N` filesystems at once"},
		&cli.DurationFlag{Name: "command-timeout", Value: defaultCommandTimeout, Usage: "end a zfs command that carries no stream (a listing, a destroy, a hold) after `DURATION` and retry it; 0 never"},
		&cli.BoolFlag{Name: "raw", Usage: "send encrypted datasets as they are, still encrypted (zfs send -w; the default); the destination needs no key"},
		&cli.BoolFlag{Name: "decrypt", Usage: "send encrypted datasets decrypted, their keys loaded on the source; the destination stores them under its own parent's encryption, if any"},
		&cli.BoolFlag{Name: "compressed", Usage: "send compressed blocks as they are (zfs send -c)"},
		&cli.BoolFlag{Name: "large-blocks", Usage: "keep blocks larger than 128 KiB as they are (zfs send -L)"},
		&cli.BoolFlag{Name: "props", Usage: "send the datasets' properties along (zfs send -p)"},
		&cli.StringSliceFlag{Name: "recv-set", Usage: "set `PROP=VALUE` on every received dataset (zfs receive -o; repeatable)"},
		&cli.StringSliceFlag{Name: "recv-exclude", Usage: "do not receive property `PROP` from the stream (zfs receive -x; repeatable)"},
		linkFlag(),
		sudoFlag(),
	}
}

// sudoFlag is --sudo, for every command that contacts a side.
func sudoFlag() cli.Flag {
	return &cli.BoolFlag{Name: "sudo", Usage: "on remote sides, run zfs through sudo -n (for accounts without zfs allow delegation; needs a sudoers line for zfs)"}
}

// runFlags are run's flags.
func runFlags() []cli.Flag {
	flags := append(commonFlags(), runOnlyFlags()...)
	flags = append(flags, metricsFileFlag(), postRunFlag())
	return append(append(flags, retentionFlags(true)...), snapshotHookFlags()...)
}

// planFlags are plan's flags: run's that change what run would do.
func planFlags() []cli.Flag {
	flags := append(commonFlags(), retentionFlags(true)...)
	return append(append(flags, snapshotHookFlags()...), postRunFlag())
}

// allowFlags are allow's flags: run's that change what zfs permissions the
// job needs, and the rest of run's so that a run's command line can be
// given as it is.
func allowFlags() []cli.Flag {
	flags := append(commonFlags(), runOnlyFlags()...)
	return append(append(flags, metricsFileFlag()), retentionFlags(true)...)
}

// pruneFlags are prune's flags.
func pruneFlags() []cli.Flag {
	flags := append(commonFlags(), retentionFlags(false)...)
	return append(flags, lockDirFlag("`DIR` of the per-destination lock files, shared with run"))
}

// snapshotFlags are snapshot's flags.
func snapshotFlags() []cli.Flag {
	flags := pickFlags(commonFlags(), "recursive", "exclude", "ssh-port", "ssh-identity", "ssh-option", "json", "log-level", "quiet", "command-timeout", "sudo")
	return append(append(flags, prefixFlag("`PREFIX` of the snapshot name")), snapshotHookFlags()...)
}

// statusFlags are status's flags.
func statusFlags() []cli.Flag {
	flags := pickFlags(commonFlags(), "recursive", "snapshots", "ssh-port", "ssh-identity", "ssh-option", "json", "log-level", "quiet", "command-timeout", "sudo")
	for _, f := range flags {
		switch f := f.(type) {
		case *cli.BoolFlag:
			if f.Name == "recursive" {
				f.Usage = "include all descendants of DATASET"
			}
		case *cli.StringFlag:
			if f.Name == "snapshots" {
				f.Usage = "only snapshots whose name after @ matches `REGEX` count"
			}
		}
	}
	return append(flags,
		&cli.DurationFlag{Name: "max-age", DefaultText: "none, no check", Usage: "be a monitoring check: CRITICAL when a newest snapshot is older than `DURATION`"},
		&cli.DurationFlag{Name: "warn-age", DefaultText: "none", Usage: "with --max-age: WARNING when a newest snapshot is older than `DURATION`"},
		prefixFlag("a snapshot named `PREFIX`YYYYMMDDTHHMMSSZ is as old as its name says; others as their creation"),
	)
}

// runOnlyFlags are the flags of run alone.
func runOnlyFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.DurationFlag{Name: "retry-wait", Value: 10 * time.Second, Usage: "wait `DURATION` after a planning error or a retryable step error"},
		&cli.IntFlag{Name: "retries", Value: 3, Usage: "retry planning and each step `N` times before giving up"},
		&cli.DurationFlag{Name: "timeout", DefaultText: "none", Usage: "bound the whole run to `DURATION`"},
		&cli.StringFlag{Name: "progress", Value: "auto", Usage: "`WHEN` to show a progress bar on stderr: auto (when stderr is a terminal), always or never"},
		lockDirFlag("`DIR` of the per-destination lock files"),
	}, linkRunFlags()...)
}

// lockDirFlag is --lock-dir, on run and prune, which share the locks.
func lockDirFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "lock-dir", Value: defaultLockDir, Usage: usage}
}

// prefixFlag is --prefix, the start of the names of zrep's snapshots, with
// the usage of its command.
func prefixFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: "prefix", Value: replication.DefaultSnapshotPrefix, Usage: usage}
}

// retentionFlags are the flags of snapshotting and pruning (SPEC section
// 8) on run, plan (withSnapshot) and prune.
func retentionFlags(withSnapshot bool) []cli.Flag {
	flags := []cli.Flag{
		prefixFlag("`PREFIX` of the snapshots zrep takes (<prefix>YYYYMMDDTHHMMSSZ), and of those it prunes by default"),
		&cli.StringFlag{Name: "keep-source", Usage: "prune the source to `POLICY`, e.g. last=4,hourly=24,daily=7,weekly=4,monthly=12,yearly=2,within=2d"},
		&cli.StringFlag{Name: "keep-dest", Usage: "prune the destination to `POLICY` (as --keep-source)"},
		&cli.StringFlag{Name: "prune-match", Usage: "prune only snapshots whose name after @ matches `REGEX` (default: starts with the prefix)"},
		&cli.BoolFlag{Name: "hold", Usage: "keep a user hold zrep_<id> on the newest replicated snapshot of each source filesystem"},
	}
	if withSnapshot {
		flags = append(flags, &cli.BoolFlag{Name: "snapshot", Usage: "take a snapshot set on the source first (as zrep snapshot)"})
	}
	return flags
}

// snapshotHookFlags are the hooks around a snapshot set (SPEC 15), on run,
// plan (which only names them) and snapshot.
func snapshotHookFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "pre-snapshot", Usage: "run `CMD` (sh -c) on the source's machine before the snapshot set; if it fails, no snapshot is taken"},
		&cli.StringFlag{Name: "post-snapshot", Usage: "run `CMD` (sh -c) on the source's machine after the snapshot set, whenever the pre-snapshot hook ran"},
		&cli.DurationFlag{Name: "hook-timeout", Value: defaultHookTimeout, Usage: "end a hook that runs longer than `DURATION`; a pre-snapshot hook ended so counts as failed"},
	}
}

// postRunFlag is run's hook after the Report (plan names it).
func postRunFlag() cli.Flag {
	return &cli.StringFlag{Name: "post-run", Usage: "run `CMD` (sh -c) on this machine after the Report, with ZREP_EXIT, ZREP_STATUS and ZREP_REPORT (a file with the JSON Report)"}
}

// metricsFileFlag is run's --metrics-file.
func metricsFileFlag() cli.Flag {
	return &cli.StringFlag{Name: "metrics-file", Usage: "after the run, whatever its outcome, write Prometheus metrics to `PATH` (node_exporter textfile collector, *.prom)"}
}

// linkFlag is --compress, a flag of plan (which shows it) and run.
func linkFlag() cli.Flag {
	return &cli.StringFlag{Name: "compress", Value: string(endpoints.DefaultCodec), Usage: "compress streams that cross ssh with `CODEC`: auto (zstd where it makes the stream faster), zstd, lz4, gzip or none (local to local never compresses)"}
}

// linkRunFlags are run's flags for the link.
func linkRunFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "bwlimit", Usage: "limit the bytes on the wire to `RATE` per second, e.g. 10M or 500K (default: none)"},
		&cli.StringFlag{Name: "buffer", Value: "16M", Usage: "on a remote side that has mbuffer, run each stream through `SIZE` of its memory (1M to 1G; 0: none), which keeps the link busy while zfs pauses"},
		&cli.DurationFlag{Name: "stall-timeout", Value: replication.DefaultStallTimeout, Usage: "end a transfer that moves no byte for `DURATION` and retry it (0: never)"},
	}
}

// pickFlags returns the flags of flags named in names, so that a command
// shares a flag's definition instead of copying it.
func pickFlags(flags []cli.Flag, names ...string) []cli.Flag {
	var picked []cli.Flag
	for _, f := range flags {
		if slices.Contains(names, f.Names()[0]) {
			picked = append(picked, f)
		}
	}
	return picked
}

// defaultJobs is how many filesystems run at once unless --jobs says
// otherwise: 4 was fastest for many small incrementals (docs/performance.md).
const defaultJobs = 4

// defaultCommandTimeout bounds each zfs command that carries no stream: a
// hung `zfs get` or destroy, or a connection gone half-open, must not hold
// a run for ever.
const defaultCommandTimeout = 10 * time.Minute

// commandTimeout is --command-timeout. Its error is a usage error.
func commandTimeout(c *cli.Context) (time.Duration, error) {
	d := c.Duration("command-timeout")
	if d < 0 {
		return 0, usageErrorf("--command-timeout must not be negative, got %s", d)
	}
	return d, nil
}

// defaultLockDir is where run and prune keep the per-destination locks.
const defaultLockDir = "/run/lock/zrep"

// parseJob reads the arguments and flags that plan, run and prune share
// (commonFlags and retentionFlags) into a job; the command adds its own.
// Every error it returns is a usage error.
func parseJob(c *cli.Context) (*job, error) {
	if c.NArg() != 2 {
		return nil, usageErrorf("%s needs two arguments, SRC and DST (got %d): zrep %s [flags] SRC DST",
			c.Command.Name, c.NArg(), c.Command.Name)
	}
	src, err := endpoints.ParseSide(c.Args().Get(0))
	if err != nil {
		return nil, usageErrorf("SRC: %v", err)
	}
	dst, err := endpoints.ParseSide(c.Args().Get(1))
	if err != nil {
		return nil, usageErrorf("DST: %v", err)
	}
	j := &job{src: src, dst: dst, recursive: c.Bool("recursive"), sudo: c.Bool("sudo")}
	if sameHost(src, dst) {
		if src.Dataset == dst.Dataset {
			return nil, usageErrorf("SRC and DST are the same dataset %q: choose another DST", dst.Dataset)
		}
		if strings.HasPrefix(dst.Dataset, src.Dataset+"/") {
			return nil, usageErrorf("DST %q lies inside SRC %q: choose a DST outside the source tree", dst.Dataset, src.Dataset)
		}
		if j.recursive && strings.HasPrefix(src.Dataset, dst.Dataset+"/") {
			return nil, usageErrorf("SRC %q lies inside DST %q: a recursive run would overwrite its own source", src.Dataset, dst.Dataset)
		}
	}

	j.cfg = replication.Config{
		SourceRoot: src.Dataset,
		DestRoot:   dst.Dataset,
		Rollback:   c.Bool("rollback"),
		Jobs:       c.Int("jobs"),
	}
	if j.cfg.Jobs < 1 {
		return nil, usageErrorf("--jobs must be at least 1, got %d", j.cfg.Jobs)
	}
	if j.cfg.Exclude, err = parseExclude(c); err != nil {
		return nil, err
	}
	if j.cfg.Snapshots, err = parseSnapshotsMatch(c); err != nil {
		return nil, err
	}
	switch c.String("initial") {
	case "newest":
		j.cfg.Initial = replication.InitialNewest
	case "all":
		j.cfg.Initial = replication.InitialAll
	default:
		return nil, usageErrorf("--initial must be newest or all, not %q", c.String("initial"))
	}

	if c.Bool("raw") && c.Bool("decrypt") {
		return nil, usageErrorf("--raw and --decrypt contradict each other: encrypted datasets are sent raw unless --decrypt is given")
	}
	j.cfg.Decrypt = c.Bool("decrypt")
	j.cfg.Send = pdu.SendOptions{
		Compressed:  c.Bool("compressed"),
		LargeBlocks: c.Bool("large-blocks"),
		Props:       c.Bool("props"),
	}
	if j.cfg.Receive, err = parseReceiveOptions(repeated(c, "recv-set"), repeated(c, "recv-exclude")); err != nil {
		return nil, err
	}
	j.cfg.CursorID = cursorID(dst)

	if j.ssh, err = parseSSHOptions(c); err != nil {
		return nil, err
	}
	if j.commandTimeout, err = commandTimeout(c); err != nil {
		return nil, err
	}

	if j.link, err = parseLink(c, &j.cfg); err != nil {
		return nil, err
	}

	if j.out, err = parseOutput(c); err != nil {
		return nil, err
	}
	j.cfg.Logger = j.out.logger
	if j.ret, err = parseRetention(c); err != nil {
		return nil, err
	}
	return j, nil
}

// parseOneSide reads the argument DATASET of snapshot or status and the
// flags they share. Every error it returns is a usage error.
func parseOneSide(c *cli.Context) (o oneSide, err error) {
	if c.NArg() != 1 {
		return o, usageErrorf("%s needs one argument, DATASET (got %d): zrep %s [flags] DATASET", c.Command.Name, c.NArg(), c.Command.Name)
	}
	if o.side, err = endpoints.ParseSide(c.Args().First()); err != nil {
		return o, usageErrorf("DATASET: %v", err)
	}
	o.recursive, o.sudo = c.Bool("recursive"), c.Bool("sudo")
	if o.ssh, err = parseSSHOptions(c); err != nil {
		return o, err
	}
	if o.commandTimeout, err = commandTimeout(c); err != nil {
		return o, err
	}
	o.out, err = parseOutput(c)
	return o, err
}

// parseOutput reads --json, --log-level and --quiet.
// Every error it returns is a usage error.
func parseOutput(c *cli.Context) (output, error) {
	level, err := parseLevel(c.String("log-level"))
	if err != nil {
		return output{}, err
	}
	return newOutput(c.App.Writer, c.App.ErrWriter, c.Bool("json"), c.Bool("quiet"), level), nil
}

// parseExclude compiles each --exclude. Every error it returns is a usage
// error.
func parseExclude(c *cli.Context) ([]*regexp.Regexp, error) {
	var res []*regexp.Regexp
	for _, expr := range repeated(c, "exclude") {
		re, err := compileFlag("exclude", expr)
		if err != nil {
			return nil, err
		}
		res = append(res, re)
	}
	return res, nil
}

// parseSnapshotsMatch compiles --snapshots; nil without it.
func parseSnapshotsMatch(c *cli.Context) (*regexp.Regexp, error) {
	if expr := c.String("snapshots"); expr != "" {
		return compileFlag("snapshots", expr)
	}
	return nil, nil
}

// compileFlag compiles the regular expression expr of --flag; its error
// is a usage error.
func compileFlag(flag, expr string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, usageErrorf("--%s %q is not a valid regular expression: %v", flag, expr, err)
	}
	return re, nil
}

// parsePrefix reads --prefix, a name zrep gives its snapshots.
func parsePrefix(c *cli.Context) (string, error) {
	prefix := c.String("prefix")
	if err := replication.CheckSnapshotPrefix(prefix); err != nil {
		return "", usageErrorf("--prefix: %v", err)
	}
	return prefix, nil
}

// parseRetention reads the flags of retentionFlags. Every error it
// returns is a usage error.
func parseRetention(c *cli.Context) (*retention, error) {
	prefix, err := parsePrefix(c)
	if err != nil {
		return nil, err
	}
	r := &retention{snapshot: c.Bool("snapshot"), prefix: prefix}
	ret := &replication.Retention{Location: time.Local}
	for _, p := range []struct {
		flag string
		dst  **replication.RetentionPolicy
	}{{"keep-source", &ret.Source}, {"keep-dest", &ret.Dest}} {
		if !c.IsSet(p.flag) {
			continue
		}
		policy, err := replication.ParseRetentionPolicy(c.String(p.flag))
		if err != nil {
			return nil, usageErrorf("--%s: %v", p.flag, err)
		}
		*p.dst = policy
	}
	match := "^" + regexp.QuoteMeta(r.prefix)
	if c.IsSet("prune-match") {
		match = c.String("prune-match")
	}
	if ret.Match, err = compileFlag("prune-match", match); err != nil {
		return nil, err
	}
	r.prune = replication.PruneOptions{Retention: ret, Hold: c.Bool("hold")}
	return r, nil
}

// parseSnapshotHooks reads snapshotHookFlags; its errors are usage errors.
func parseSnapshotHooks(c *cli.Context) (snapshotHooks, error) {
	h := snapshotHooks{pre: c.String("pre-snapshot"), post: c.String("post-snapshot"), timeout: c.Duration("hook-timeout")}
	if h.timeout <= 0 {
		return h, usageErrorf("--hook-timeout must be positive, got %s", h.timeout)
	}
	for _, f := range []struct{ name, cmd string }{{"pre-snapshot", h.pre}, {"post-snapshot", h.post}} {
		if c.IsSet(f.name) && strings.TrimSpace(f.cmd) == "" {
			return h, usageErrorf("--%s needs a command", f.name)
		}
	}
	return h, nil
}

// parseLink reads --compress, and on run --bwlimit and --stall-timeout
// into cfg. Every error it returns is a usage error.
func parseLink(c *cli.Context, cfg *replication.Config) (link, error) {
	var l link
	codec, err := endpoints.ParseCodec(c.String("compress"))
	if err != nil {
		return l, usageErrorf("%v", err)
	}
	l.codec = codec
	if c.IsSet("bwlimit") || c.String("bwlimit") != "" {
		rate, err := parseRate(c.String("bwlimit"))
		if err != nil {
			return l, usageErrorf("--bwlimit: %v", err)
		}
		l.limit = endpoints.NewLimiter(rate)
	}
	if c.IsSet("buffer") || c.String("buffer") != "" {
		if l.buffer, err = parseBuffer(c.String("buffer")); err != nil {
			return l, usageErrorf("--buffer: %v", err)
		}
	}
	if d := c.Duration("stall-timeout"); d < 0 {
		return l, usageErrorf("--stall-timeout must not be negative, got %s", d)
	} else {
		cfg.StallTimeout = d
	}
	return l, nil
}

// parseSSHOptions checks --ssh-port, --ssh-identity and --ssh-option.
// Every error it returns is a usage error.
func parseSSHOptions(c *cli.Context) (endpoints.SSHOptions, error) {
	port := c.Int("ssh-port")
	if port < 0 || port > 65535 {
		return endpoints.SSHOptions{}, usageErrorf("--ssh-port must be between 1 and 65535, got %d", port)
	}
	opts := endpoints.SSHOptions{
		Port:     port,
		Identity: c.String("ssh-identity"),
		Options:  repeated(c, "ssh-option"),
	}
	for _, o := range opts.Options {
		if strings.TrimSpace(o) == "" || strings.HasPrefix(o, "-") {
			return endpoints.SSHOptions{}, usageErrorf("--ssh-option %q must be an ssh option such as ConnectTimeout=5", o)
		}
	}
	return opts, nil
}

// parseReceiveOptions checks --recv-set PROP=VALUE and --recv-exclude PROP.
// Every error it returns is a usage error.
func parseReceiveOptions(set, exclude []string) (pdu.ReceiveOptions, error) {
	var opts pdu.ReceiveOptions
	for _, s := range set {
		name, value, ok := strings.Cut(s, "=")
		p := pdu.Property{Name: name, Value: value}
		if !ok {
			return opts, usageErrorf("--recv-set %q must be PROP=VALUE, e.g. --recv-set readonly=on", s)
		}
		if err := endpoints.CheckProperty(p); err != nil {
			return opts, usageErrorf("--recv-set %q: %v", s, err)
		}
		opts.Set = append(opts.Set, p)
	}
	for _, name := range exclude {
		if err := endpoints.CheckPropertyName(name); err != nil {
			return opts, usageErrorf("--recv-exclude %q: %v", name, err)
		}
		opts.Exclude = append(opts.Exclude, name)
	}
	return opts, nil
}

// cursorID identifies the destination dst for the replication cursor
// bookmarks zrep keeps on the source: the first 16 hex digits of the
// SHA-256 of its host and dataset. The ssh user is left out: it names who
// logs in, not where the copy lives.
func cursorID(dst endpoints.Side) string {
	sum := sha256.Sum256([]byte(dst.Host + "\x00" + dst.Dataset))
	return hex.EncodeToString(sum[:])[:16]
}

func sameHost(a, b endpoints.Side) bool {
	return a.Host == b.Host
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, usageErrorf("--log-level must be debug, info, warn or error, not %q", s)
}

// eachFlag calls fn with every flag of app and of its commands.
func eachFlag(app *cli.App, fn func(cli.Flag)) {
	var walk func(cmds []*cli.Command)
	walk = func(cmds []*cli.Command) {
		for _, c := range cmds {
			for _, f := range c.Flags {
				fn(f)
			}
			walk(c.Subcommands)
		}
	}
	for _, f := range app.Flags {
		fn(f)
	}
	walk(app.Commands)
}

// withEnvVars gives each of flags its environment variable, ZREP_ and its
// name (envVar), unless its definition names one, and returns flags: every
// flag of a command that runs a job or looks at a side can be given so, for
// cron, systemd and containers. Every flag type of urfave/cli has the
// field EnvVars.
func withEnvVars(flags []cli.Flag) []cli.Flag {
	for _, f := range flags {
		env := reflect.ValueOf(f).Elem().FieldByName("EnvVars")
		if env.Len() == 0 {
			env.Set(reflect.ValueOf(envVar(f.Names()[0])))
		}
	}
	return flags
}

// serveFlags are zrep serve's flags. Unlike every other command's they have
// no environment variables: an ssh client may be allowed to set some
// (AcceptEnv), and none may widen what a key can do.
func serveFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "receive-only", Usage: "allow what the destination of a push needs, at or below `DATASET`"},
		&cli.StringFlag{Name: "send-only", Usage: "allow what the source of a pull needs, at or below `DATASET`"},
		&cli.BoolFlag{Name: "allow-prune", Usage: "also allow destroying snapshots under DATASET (--keep-dest, --keep-source)"},
		&cli.BoolFlag{Name: "allow-rollback", Usage: "also allow rollbacks and zfs receive -F under DATASET (--rollback)"},
		&cli.BoolFlag{Name: "allow-snapshot", Usage: "with --send-only: also allow taking snapshots under DATASET (--snapshot)"},
		&cli.StringFlag{Name: "log-file", Usage: "append each request and its verdict to `FILE` instead of syslog"},
	}
}
