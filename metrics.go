package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/zrep/zrep/replication"
)

func metricsFileFlag() cli.Flag {
	return &cli.StringFlag{Name: "metrics-file", EnvVars: envVar("metrics-file"),
		Usage: "after the run, whatever its outcome, write Prometheus metrics to `PATH` (node_exporter textfile collector, *.prom)"}
}

// The metrics file is in the Prometheus text exposition format, for
// node_exporter's textfile collector (a *.prom file in its
// --collector.textfile.directory). Every series carries the run's source and
// destination, so that several zrep jobs can each write their own file into
// one directory without clashing.

// runStatuses and filesystemStatuses are the states a run and a filesystem
// can end in; each gets a series of the state set, 1 for the one it is in.
var (
	runStatuses = []string{
		replication.Completed.String(), replication.PlanningError.String(), replication.ContextDone.String(),
	}
	filesystemStatuses = []string{
		replication.FilesystemCompleted.String(), replication.FilesystemPermanentError.String(),
		replication.FilesystemRetryWait.String(), replication.FilesystemReady.String(),
	}
)

const (
	metricLastSuccess   = "zrep_last_success_timestamp_seconds"
	metricFSLastSuccess = "zrep_filesystem_last_success_timestamp_seconds"
)

// finishMetrics writes the metrics file, if run has one, for a run that
// ends with outcome, and returns the outcome. rep is nil for a run that
// ended before replicating (its lock, the link check, its snapshot): the
// file then has the run's exit code and times, no run state but
// ContextDone for an interrupted one, and keeps the last success times. A
// file that cannot be written makes a successful run exit 1.
func finishMetrics(c *cli.Context, j *job, start time.Time, rep *replication.Report, outcome error) error {
	path := c.String("metrics-file")
	if path == "" {
		return outcome
	}
	code := exitCode(outcome)
	if rep == nil {
		rep = &replication.Report{}
		if code == exitInterrupted || code == exitTimeout {
			rep.Status = replication.ContextDone.String()
		}
	}
	m := runMetrics{source: j.src.String(), destination: j.dst.String(), start: start, end: time.Now(), exitCode: code, report: rep}
	if err := writeMetricsFile(path, m); err != nil {
		j.logger.Error("cannot write the metrics file", "err", err)
		if outcome == nil {
			return &exitError{code: exitFailed, err: err}
		}
	}
	return outcome
}

// runMetrics is what one run tells monitoring.
type runMetrics struct {
	source, destination string // the sides as given on the command line
	start, end          time.Time
	exitCode            int
	report              *replication.Report
}

// series is one sample: a metric name, its labels in order, a value.
type series struct {
	name   string
	labels [][2]string
	value  float64
}

func (s series) key() string {
	var b strings.Builder
	b.WriteString(s.name)
	for _, l := range s.labels {
		b.WriteString("\x00" + l[0] + "\x00" + l[1])
	}
	return b.String()
}

// family is a metric with its help text and samples.
type family struct {
	name, help string
	samples    []series
}

// writeMetricsFile writes m to path atomically: into a temporary file in
// the same directory, which node_exporter ignores (it reads *.prom only),
// then renamed over path. Last success times of filesystems that did not
// complete in this run are kept from the file path held before.
func writeMetricsFile(path string, m runMetrics) error {
	old, err := readLastSuccess(path)
	if err != nil {
		return fmt.Errorf("metrics file %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("metrics file: %w (does the directory %s exist and may zrep write there?)", err, dir)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, there is nothing to remove
	w := bufio.NewWriter(tmp)
	writeFamilies(w, m.families(old))
	if err := w.Flush(); err != nil {
		tmp.Close()
		return fmt.Errorf("metrics file %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("metrics file %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("metrics file %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("metrics file %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("metrics file: %w", err)
	}
	return nil
}

// families lays out the run's metrics; old holds the last success samples
// of the previous file, by key.
func (m runMetrics) families(old map[string]series) []family {
	run := [][2]string{{"source", m.source}, {"destination", m.destination}}
	with := func(labels [][2]string, extra ...[2]string) [][2]string {
		return append(append([][2]string{}, labels...), extra...)
	}
	gauge := func(name string, labels [][2]string, v float64) series {
		return series{name: name, labels: labels, value: v}
	}
	rep := m.report
	end := float64(m.end.UnixMilli()) / 1000

	statusSet := family{name: "zrep_run_status", help: "1 for the state the last run ended in (Completed, PlanningError, ContextDone), 0 for the others; all 0 when it failed before replicating (see zrep_run_exit_code)."}
	for _, s := range runStatuses {
		statusSet.samples = append(statusSet.samples, gauge(statusSet.name, with(run, [2]string{"status", s}), boolValue(rep.Status == s)))
	}
	success := m.exitCode == exitOK
	lastSuccess := family{name: metricLastSuccess, help: "When a run last ended with every filesystem up to date (exit 0), in seconds since 1970."}
	if s := gauge(metricLastSuccess, run, end); success {
		lastSuccess.samples = append(lastSuccess.samples, s)
	} else if o, ok := old[s.key()]; ok {
		lastSuccess.samples = append(lastSuccess.samples, o)
	}

	fsLast := family{name: metricFSLastSuccess, help: "When each filesystem was last brought up to date, in seconds since 1970; kept across failed runs."}
	fsBytes := family{name: "zrep_filesystem_bytes", help: "Bytes of the filesystem's streams in the last run."}
	fsStatus := family{name: "zrep_filesystem_status", help: "1 for the state each filesystem ended the last run in, 0 for the others."}
	seen := map[string]bool{}
	for _, f := range reportFilesystems(rep) {
		labels := [][2]string{{"filesystem", f.Filesystem}, {"destination", f.Destination}}
		fsBytes.samples = append(fsBytes.samples, gauge(fsBytes.name, labels, float64(f.Bytes)))
		for _, s := range filesystemStatuses {
			fsStatus.samples = append(fsStatus.samples, gauge(fsStatus.name, with(labels, [2]string{"status", s}), boolValue(f.Status == s)))
		}
		s := gauge(fsLast.name, labels, end)
		seen[s.key()] = true
		if f.Status == replication.FilesystemCompleted.String() {
			fsLast.samples = append(fsLast.samples, s)
		} else if o, ok := old[s.key()]; ok {
			fsLast.samples = append(fsLast.samples, o)
		}
	}
	// Filesystems this run did not get to (a planning error, an
	// interruption) keep their last success time.
	var kept []series
	for k, o := range old {
		if o.name == metricFSLastSuccess && !seen[k] {
			kept = append(kept, o)
		}
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].key() < kept[j].key() })
	fsLast.samples = append(fsLast.samples, kept...)

	return []family{
		statusSet,
		{name: "zrep_run_exit_code", help: "Exit status of the last run (0 all up to date, 1 a filesystem or the snapshot failed, 2 lock directory refused, 3 planning failed, 4 locked by another run, 124 timed out, 130 interrupted).",
			samples: []series{gauge("zrep_run_exit_code", run, float64(m.exitCode))}},
		{name: "zrep_run_start_timestamp_seconds", help: "When the last run started, in seconds since 1970.",
			samples: []series{gauge("zrep_run_start_timestamp_seconds", run, float64(m.start.UnixMilli())/1000)}},
		{name: "zrep_run_end_timestamp_seconds", help: "When the last run ended, in seconds since 1970.",
			samples: []series{gauge("zrep_run_end_timestamp_seconds", run, end)}},
		{name: "zrep_run_bytes", help: "Bytes of all streams of the last run.",
			samples: []series{gauge("zrep_run_bytes", run, float64(rep.Bytes))}},
		lastSuccess,
		fsLast,
		fsBytes,
		fsStatus,
	}
}

// reportFilesystems are every filesystem of rep, whatever its progress.
func reportFilesystems(rep *replication.Report) []*replication.FilesystemReport {
	all := append([]*replication.FilesystemReport{}, rep.Completed...)
	if rep.Active != nil {
		all = append(all, rep.Active)
	}
	return append(all, rep.Pending...)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// writeFamilies writes fams in the text exposition format; a family without
// samples is left out.
func writeFamilies(w io.Writer, fams []family) {
	for _, f := range fams {
		if len(f.samples) == 0 {
			continue
		}
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n", f.name, escapeHelp(f.help), f.name)
		for _, s := range f.samples {
			io.WriteString(w, s.name)
			if len(s.labels) > 0 {
				io.WriteString(w, "{")
				for i, l := range s.labels {
					if i > 0 {
						io.WriteString(w, ",")
					}
					fmt.Fprintf(w, "%s=\"%s\"", l[0], escapeLabel(l[1]))
				}
				io.WriteString(w, "}")
			}
			fmt.Fprintf(w, " %s\n", strconv.FormatFloat(s.value, 'f', -1, 64))
		}
	}
}

// escapeLabel escapes a label value as the exposition format asks:
// backslash, double quote and newline.
func escapeLabel(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

// readLastSuccess reads the last success samples of a metrics file zrep
// wrote before. A missing file is no error; lines it does not recognise
// are skipped.
func readLastSuccess(path string) (map[string]series, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]series{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	old := map[string]series{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metricLastSuccess+"{") && !strings.HasPrefix(line, metricFSLastSuccess+"{") {
			continue
		}
		if s, ok := parseSample(line); ok {
			old[s.key()] = s
		}
	}
	return old, sc.Err()
}

// parseSample reads one sample line `name{k="v",...} value` as
// writeFamilies writes it.
func parseSample(line string) (series, bool) {
	name, rest, ok := strings.Cut(line, "{")
	if !ok {
		return series{}, false
	}
	s := series{name: name}
	for {
		if strings.HasPrefix(rest, "}") {
			rest = rest[1:]
			break
		}
		rest = strings.TrimPrefix(rest, ",")
		key, r, ok := strings.Cut(rest, `="`)
		if !ok {
			return series{}, false
		}
		var val strings.Builder
		i := 0
		for ; i < len(r) && r[i] != '"'; i++ {
			if r[i] == '\\' && i+1 < len(r) {
				i++
				switch r[i] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(r[i])
				}
				continue
			}
			val.WriteByte(r[i])
		}
		if i >= len(r) {
			return series{}, false
		}
		s.labels = append(s.labels, [2]string{key, val.String()})
		rest = r[i+1:]
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
	if err != nil {
		return series{}, false
	}
	s.value = v
	return s, true
}
