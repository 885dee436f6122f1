package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/zrep/zrep/replication"
)

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

// Label names: a run's series are labelled by its sides as given on the
// command line, a filesystem's by its full name on each side.
var (
	runLabels = []string{"source", "destination"}
	fsLabels  = []string{"filesystem", "destination"}
)

// runMetrics is what one run tells monitoring.
type runMetrics struct {
	source, destination string // the sides as given on the command line
	start, end          time.Time
	exitCode            int
	report              *replication.Report
}

// lastSuccess are the last success times of a metrics file zrep wrote
// before, by label values in the order of runLabels and fsLabels.
type lastSuccess struct {
	run, fs map[[2]string]float64
}

// writeMetricsFile writes m to path atomically (prometheus.WriteToTextfile:
// into a temporary file in the same directory, whose name node_exporter
// ignores, then renamed over path). Last success times of filesystems that
// did not complete in this run are kept from the file path held before.
func writeMetricsFile(path string, m runMetrics) error {
	old, err := readLastSuccess(path)
	if err != nil {
		return fmt.Errorf("metrics file %s: %w", path, err)
	}
	reg := prometheus.NewPedanticRegistry()
	m.register(reg, old)
	if err := prometheus.WriteToTextfile(path, reg); err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("metrics file: %w (does the directory %s exist and may zrep write there?)", err, filepath.Dir(path))
		}
		return fmt.Errorf("metrics file %s: %w", path, err)
	}
	return nil
}

// register lays out the run's metrics in reg; old holds the last success
// times of the previous file. A metric without samples is left out.
func (m runMetrics) register(reg prometheus.Registerer, old lastSuccess) {
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels)
		reg.MustRegister(g)
		return g
	}
	rep := m.report
	end := float64(m.end.UnixMilli()) / 1000
	run := [2]string{m.source, m.destination}

	statusSet := gauge("zrep_run_status", "1 for the state the last run ended in (Completed, PlanningError, ContextDone), 0 for the others; all 0 when it failed before replicating (see zrep_run_exit_code).", "source", "destination", "status")
	for _, s := range runStatuses {
		statusSet.WithLabelValues(m.source, m.destination, s).Set(boolValue(rep.Status == s))
	}
	gauge("zrep_run_exit_code", "Exit status of the last run (0 all up to date, 1 a filesystem or the snapshot failed, 2 lock directory refused, 3 planning failed, 4 locked by another run, 124 timed out, 130 interrupted).", runLabels...).
		WithLabelValues(run[:]...).Set(float64(m.exitCode))
	gauge("zrep_run_start_timestamp_seconds", "When the last run started, in seconds since 1970.", runLabels...).
		WithLabelValues(run[:]...).Set(float64(m.start.UnixMilli()) / 1000)
	gauge("zrep_run_end_timestamp_seconds", "When the last run ended, in seconds since 1970.", runLabels...).
		WithLabelValues(run[:]...).Set(end)
	gauge("zrep_run_bytes", "Bytes of all streams of the last run.", runLabels...).
		WithLabelValues(run[:]...).Set(float64(rep.Bytes))

	lastRun := gauge(metricLastSuccess, "When a run last ended with every filesystem up to date (exit 0), in seconds since 1970.", runLabels...)
	if m.exitCode == exitOK {
		lastRun.WithLabelValues(run[:]...).Set(end)
	} else if v, ok := old.run[run]; ok {
		lastRun.WithLabelValues(run[:]...).Set(v)
	}

	fsLast := gauge(metricFSLastSuccess, "When each filesystem was last brought up to date, in seconds since 1970; kept across failed runs.", fsLabels...)
	fsBytes := gauge("zrep_filesystem_bytes", "Bytes of the filesystem's streams in the last run.", fsLabels...)
	fsStatus := gauge("zrep_filesystem_status", "1 for the state each filesystem ended the last run in, 0 for the others.", "filesystem", "destination", "status")
	seen := map[[2]string]bool{}
	for _, f := range reportFilesystems(rep) {
		key := [2]string{f.Filesystem, f.Destination}
		seen[key] = true
		fsBytes.WithLabelValues(key[:]...).Set(float64(f.Bytes))
		for _, s := range filesystemStatuses {
			fsStatus.WithLabelValues(f.Filesystem, f.Destination, s).Set(boolValue(f.Status == s))
		}
		if f.Status == replication.FilesystemCompleted.String() {
			fsLast.WithLabelValues(key[:]...).Set(end)
		} else if v, ok := old.fs[key]; ok {
			fsLast.WithLabelValues(key[:]...).Set(v)
		}
	}
	// Filesystems this run did not get to (a planning error, an
	// interruption) keep their last success time.
	for key, v := range old.fs {
		if !seen[key] {
			fsLast.WithLabelValues(key[:]...).Set(v)
		}
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

// readLastSuccess reads the last success times of a metrics file zrep
// wrote before. A missing file is no error, and neither is one that does
// not parse (zrep writes the file whole, so only a hand-edited one fails):
// the times read up to the fault are kept, as if the rest were not there.
func readLastSuccess(path string) (lastSuccess, error) {
	old := lastSuccess{run: map[[2]string]float64{}, fs: map[[2]string]float64{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return old, nil
	}
	if err != nil {
		return old, err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, _ := parser.TextToMetricFamilies(bytes.NewReader(b))
	for name, into := range map[string]struct {
		labels []string
		times  map[[2]string]float64
	}{
		metricLastSuccess:   {runLabels, old.run},
		metricFSLastSuccess: {fsLabels, old.fs},
	} {
		for _, s := range fams[name].GetMetric() {
			key, ok := labelValues(s, into.labels)
			switch {
			case ok && s.GetGauge() != nil:
				into.times[key] = s.GetGauge().GetValue()
			case ok && s.GetUntyped() != nil:
				into.times[key] = s.GetUntyped().GetValue()
			}
		}
	}
	return old, nil
}

// labelValues are the values of sample s's two labels names, in that
// order; ok is false unless s has exactly those labels.
func labelValues(s *dto.Metric, names []string) (key [2]string, ok bool) {
	if len(s.GetLabel()) != len(names) {
		return key, false
	}
	found := 0
	for _, l := range s.GetLabel() {
		for i, n := range names {
			if l.GetName() == n {
				key[i] = l.GetValue()
				found++
			}
		}
	}
	return key, found == len(names)
}
