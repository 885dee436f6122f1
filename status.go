package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/zrep/zrep/endpoints"
	"github.com/zrep/zrep/pdu"
	"github.com/zrep/zrep/replication"
)

// Exit statuses of a monitoring check (zrep status --max-age), in the
// Nagios/Icinga plugin convention.
const (
	checkOK       = 0
	checkWarning  = 1
	checkCritical = 2
	checkUnknown  = 3
)

var checkStateNames = [...]string{"OK", "WARNING", "CRITICAL", "UNKNOWN"}

// statusDescription is what status --help says about DATASET and the
// check.
const statusDescription = "DATASET is a destination (or any dataset), local or [USER@]HOST:DATASET. With --max-age,\n" +
	"zrep status is a Nagios/Icinga plugin: one line on stdout, exit 0 OK, 1 WARNING,\n" +
	"2 CRITICAL (a newest snapshot older than --max-age, no snapshot, partial receive\n" +
	"state), 3 UNKNOWN (cannot list, or a usage error)."

// statusConfig is what status needs to judge a listing.
type statusConfig struct {
	snapshots *regexp.Regexp // nil: every snapshot
	prefix    string
	maxAge    time.Duration // 0: no check
	warnAge   time.Duration // 0: no warning
}

// FilesystemStatus is one filesystem in zrep status's output.
type FilesystemStatus struct {
	Filesystem string `json:"filesystem"`
	// NewestSnapshot is the name after @ of the newest snapshot (by
	// creation order); nil when there is none.
	NewestSnapshot *string `json:"newest_snapshot"`
	// SnapshotTime is when it was taken: from its name when it has zrep's
	// form, from its creation property otherwise.
	SnapshotTime *time.Time `json:"snapshot_time"`
	AgeSeconds   *float64   `json:"age_seconds"`
	Placeholder  bool       `json:"placeholder"`
	// PartialReceive is true when the filesystem holds partial receive
	// state (a receive_resume_token).
	PartialReceive bool `json:"partial_receive"`
	// Encrypted, EncryptionRoot and KeyStatus are its native encryption:
	// a raw backup is encrypted with its key unavailable on a backup host
	// that never had it.
	Encrypted      bool   `json:"encrypted"`
	EncryptionRoot string `json:"encryption_root"`
	KeyStatus      string `json:"key_status"`
	// Check is the filesystem's state in a check (OK, WARNING, CRITICAL),
	// "" without --max-age.
	Check string `json:"check"`
	// Problem says what is wrong, "" when nothing is.
	Problem string `json:"problem"`
}

// StatusReport is zrep status's output.
type StatusReport struct {
	Dataset string `json:"dataset"`
	// Exists is false when the dataset does not exist.
	Exists      bool                `json:"exists"`
	Filesystems []*FilesystemStatus `json:"filesystems"`
	// Check is the overall state with --max-age (OK, WARNING, CRITICAL,
	// UNKNOWN), "" without.
	Check   string `json:"check"`
	Summary string `json:"summary"`

	state  int
	oldest *FilesystemStatus // the filesystem with the stalest newest snapshot
}

// judgeStatus builds the status of the listed filesystems fss of dataset
// at time now.
func judgeStatus(dataset string, fss []*pdu.Filesystem, now time.Time, cfg statusConfig) *StatusReport {
	rep := &StatusReport{Dataset: dataset, Exists: len(fss) > 0, Filesystems: []*FilesystemStatus{}}
	check := cfg.maxAge > 0
	var problems []string
	for _, fs := range fss {
		st := &FilesystemStatus{Filesystem: fs.Path, Placeholder: fs.Placeholder, PartialReceive: fs.ResumeToken != ""}
		if fs.Encrypted() {
			st.Encrypted, st.EncryptionRoot, st.KeyStatus = true, fs.EncryptionRoot, fs.KeyStatus
		}
		var newest *pdu.FilesystemVersion
		for _, v := range fs.Versions {
			if v.Type != pdu.Snapshot || cfg.snapshots != nil && !cfg.snapshots.MatchString(v.Name) {
				continue
			}
			if newest == nil || v.CreateTXG > newest.CreateTXG {
				newest = v
			}
		}
		state := checkOK
		if newest != nil {
			name, at := newest.Name, replication.SnapshotTime(newest, cfg.prefix)
			age := max(now.Sub(at), 0)
			secs := age.Round(time.Second).Seconds()
			st.NewestSnapshot, st.SnapshotTime, st.AgeSeconds = &name, &at, &secs
			switch {
			case cfg.maxAge > 0 && age > cfg.maxAge:
				state = checkCritical
				st.Problem = fmt.Sprintf("newest snapshot @%s is %s old, more than %s", name, humanAge(age), humanAge(cfg.maxAge))
			case cfg.warnAge > 0 && age > cfg.warnAge:
				state = checkWarning
				st.Problem = fmt.Sprintf("newest snapshot @%s is %s old, more than %s", name, humanAge(age), humanAge(cfg.warnAge))
			}
			if rep.oldest == nil || *st.AgeSeconds > *rep.oldest.AgeSeconds {
				rep.oldest = st
			}
		} else if !fs.Placeholder {
			// A placeholder only holds children; it has no snapshot by design.
			state = checkCritical
			st.Problem = "no snapshot"
			if cfg.snapshots != nil {
				st.Problem += " matching --snapshots " + cfg.snapshots.String()
			}
		}
		if st.PartialReceive {
			state = checkCritical
			st.Problem = strings.TrimPrefix(st.Problem+"; partial receive state (an interrupted receive; the next zrep run resumes or discards it)", "; ")
		}
		if check {
			st.Check = checkStateNames[state]
			rep.state = max(rep.state, state)
		}
		if st.Problem != "" {
			problems = append(problems, fs.Path+": "+st.Problem)
		}
		rep.Filesystems = append(rep.Filesystems, st)
	}
	if !rep.Exists {
		rep.state = checkCritical
		rep.Summary = dataset + " does not exist"
	} else {
		rep.Summary = summarize(rep, problems)
	}
	if check {
		rep.Check = checkStateNames[rep.state]
	}
	return rep
}

// summarize says in one line how the filesystems are: the problems first
// (the first three, then how many more), or how fresh the stalest is.
func summarize(rep *StatusReport, problems []string) string {
	if len(problems) > 0 {
		const shown = 3
		s := strings.Join(problems[:min(shown, len(problems))], "; ")
		if len(problems) > shown {
			s += fmt.Sprintf("; and %d more", len(problems)-shown)
		}
		return s
	}
	n := fmt.Sprintf("%d filesystems", len(rep.Filesystems))
	if len(rep.Filesystems) == 1 {
		n = "1 filesystem"
	}
	if rep.oldest == nil {
		return n + ", no snapshots"
	}
	return fmt.Sprintf("%s, newest snapshots at most %s old (stalest %s@%s)", n,
		humanAge(time.Duration(*rep.oldest.AgeSeconds)*time.Second), rep.oldest.Filesystem, *rep.oldest.NewestSnapshot)
}

// humanAge writes d to the second, in the largest units that matter:
// 3d4h, 2h5m, 42s.
func humanAge(d time.Duration) string {
	d = d.Round(time.Second)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	switch {
	case days > 0:
		return fmt.Sprintf("%dd%dh", days, d/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%dm", d/time.Hour, (d%time.Hour)/time.Minute)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%ds", d/time.Minute, (d%time.Minute)/time.Second)
	}
	return d.String()
}

// checkLine is the plugin's output line: state, summary and perfdata.
func (rep *StatusReport) checkLine(cfg statusConfig) string {
	crit, warn := int64(cfg.maxAge.Seconds()), ""
	if cfg.warnAge > 0 {
		warn = fmt.Sprint(int64(cfg.warnAge.Seconds()))
	}
	critical, warning := 0, 0
	for _, f := range rep.Filesystems {
		switch f.Check {
		case "CRITICAL":
			critical++
		case "WARNING":
			warning++
		}
	}
	perf := fmt.Sprintf("filesystems=%d critical=%d warning=%d", len(rep.Filesystems), critical, warning)
	if rep.oldest != nil {
		perf = fmt.Sprintf("oldest_age=%ds;%s;%d;0 ", int64(*rep.oldest.AgeSeconds), warn, crit) + perf
	}
	return fmt.Sprintf("ZREP %s - %s | %s", rep.Check, oneLine(rep.Summary), perf)
}

func (rep *StatusReport) writeText(w io.Writer) error {
	if !rep.Exists {
		_, err := fmt.Fprintf(w, "%s does not exist\n", rep.Dataset)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FILESYSTEM\tNEWEST SNAPSHOT\tTAKEN\tAGE\tKEY\tSTATE")
	for _, f := range rep.Filesystems {
		name, taken, age := "-", "-", "-"
		if f.NewestSnapshot != nil {
			name = "@" + *f.NewestSnapshot
			taken = f.SnapshotTime.UTC().Format(time.RFC3339)
			age = humanAge(time.Duration(*f.AgeSeconds) * time.Second)
		}
		var state []string
		if f.Check != "" {
			state = append(state, f.Check)
		}
		if f.Placeholder {
			state = append(state, "placeholder")
		}
		if f.PartialReceive {
			state = append(state, "partial receive state")
		}
		if f.NewestSnapshot == nil && !f.Placeholder {
			state = append(state, "no snapshot")
		}
		if len(state) == 0 {
			state = append(state, "ok")
		}
		key := "-" // not encrypted
		if f.Encrypted {
			key = f.KeyStatus
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", f.Filesystem, name, taken, age, key, strings.Join(state, ", "))
	}
	return tw.Flush()
}

// statusOptions is status's command line.
type statusOptions struct {
	oneSide
	cfg statusConfig
}

// parseStatusOptions reads status's command line. Every error it returns
// is a usage error.
func parseStatusOptions(c *cli.Context) (o statusOptions, err error) {
	if o.oneSide, err = parseOneSide(c); err != nil {
		return o, err
	}
	o.cfg = statusConfig{prefix: c.String("prefix"), maxAge: c.Duration("max-age"), warnAge: c.Duration("warn-age")}
	switch {
	case o.cfg.maxAge < 0 || o.cfg.warnAge < 0:
		return o, usageErrorf("--max-age and --warn-age must not be negative")
	case o.cfg.warnAge > 0 && o.cfg.maxAge == 0:
		return o, usageErrorf("--warn-age needs --max-age, which makes status a check")
	case o.cfg.warnAge > o.cfg.maxAge:
		return o, usageErrorf("--warn-age %s must not be longer than --max-age %s", o.cfg.warnAge, o.cfg.maxAge)
	}
	o.cfg.snapshots, err = parseSnapshotsMatch(c)
	return o, err
}

func statusAction(c *cli.Context) error {
	o, err := parseStatusOptions(c)
	if err != nil {
		return err
	}
	check := o.cfg.maxAge > 0
	ctx, stop := signalContext(c.Context)
	defer stop()

	e := o.open("destination")
	defer e.Close()
	fss, err := e.ListFilesystems(ctx)
	if errors.Is(err, endpoints.ErrDatasetNotExist) {
		fss, err = nil, nil
	}
	if err != nil {
		if cause := context.Cause(ctx); cause != nil {
			err = cause
		}
		if check {
			fmt.Fprintf(o.out.stdout, "ZREP UNKNOWN - %s\n", oneLine(err.Error()))
			return &exitError{code: checkUnknown}
		}
		return &exitError{code: exitPlanning, err: fmt.Errorf("status: %w", err)}
	}
	rep := judgeStatus(o.side.String(), fss, time.Now(), o.cfg)

	switch {
	case o.out.json:
		if err := writeJSON(o.out.stdout, rep); err != nil {
			return &exitError{code: exitFailed, err: err}
		}
	case check:
		fmt.Fprintln(o.out.stdout, rep.checkLine(o.cfg))
	default:
		if err := rep.writeText(o.out.stdout); err != nil {
			return &exitError{code: exitFailed, err: err}
		}
	}
	switch {
	case check && rep.state != checkOK:
		return &exitError{code: rep.state}
	case !rep.Exists:
		return &exitError{code: exitFailed}
	}
	return nil
}

// statusCheckUsage reports whether args ask zrep status for a monitoring
// check (--max-age, or ZREP_MAX_AGE), so that a usage error exits UNKNOWN
// as a plugin must, and says so on stdout.
func statusCheckUsage(args []string, getenv func(string) string) bool {
	if len(args) < 2 || args[1] != "status" {
		return false
	}
	if getenv("ZREP_MAX_AGE") != "" {
		return true
	}
	for _, a := range args[2:] {
		if a == "--" {
			break
		}
		if a == "--max-age" || a == "-max-age" || strings.HasPrefix(a, "--max-age=") || strings.HasPrefix(a, "-max-age=") {
			return true
		}
	}
	return false
}
