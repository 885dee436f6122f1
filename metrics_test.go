package main

import (
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/zrep/zrep/endpoints"
	"github.com/zrep/zrep/replication"
)

func fsReport(fs, status string, bytes int64) *replication.FilesystemReport {
	return &replication.FilesystemReport{Filesystem: fs, Destination: "backup/" + fs, Status: status, Bytes: bytes}
}

// A failed run keeps each filesystem's last success time from the file the
// previous run wrote; what it did complete gets the new time.
func TestMetricsFileKeepsLastSuccess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zrep.prom")
	t0 := time.Unix(1_800_000_000, 0)
	odd := "tank/a \"quoted\" \\ and\nnewline"
	ok := runMetrics{source: "tank", destination: "nas:backup", start: t0, end: t0.Add(90 * time.Second), exitCode: 0,
		report: &replication.Report{Status: "Completed", Bytes: 300, Completed: []*replication.FilesystemReport{
			fsReport("tank/a", "Completed", 100), fsReport(odd, "Completed", 200)}}}
	if err := writeMetricsFile(path, ok); err != nil {
		t.Fatal(err)
	}
	first := readMetrics(t, path)
	for _, want := range []string{
		`zrep_run_status{source="tank",destination="nas:backup",status="Completed"} 1`,
		`zrep_run_status{source="tank",destination="nas:backup",status="PlanningError"} 0`,
		`zrep_run_exit_code{source="tank",destination="nas:backup"} 0`,
		`zrep_run_start_timestamp_seconds{source="tank",destination="nas:backup"} 1800000000`,
		`zrep_run_end_timestamp_seconds{source="tank",destination="nas:backup"} 1800000090`,
		`zrep_run_bytes{source="tank",destination="nas:backup"} 300`,
		`zrep_last_success_timestamp_seconds{source="tank",destination="nas:backup"} 1800000090`,
		`zrep_filesystem_last_success_timestamp_seconds{filesystem="tank/a",destination="backup/tank/a"} 1800000090`,
		`zrep_filesystem_bytes{filesystem="tank/a \"quoted\" \\ and\nnewline",destination="backup/tank/a \"quoted\" \\ and\nnewline"} 200`,
		`zrep_filesystem_status{filesystem="tank/a",destination="backup/tank/a",status="Completed"} 1`,
		"# TYPE zrep_run_bytes gauge",
	} {
		if !hasSample(t, first, want) {
			t.Errorf("metrics lack %s\n%s", want, first)
		}
	}

	// Next: a failed planning round (no filesystems at all), then a run
	// where one filesystem fails.
	t1 := t0.Add(time.Hour)
	failed := runMetrics{source: "tank", destination: "nas:backup", start: t1, end: t1.Add(time.Second), exitCode: 3,
		report: &replication.Report{Status: "PlanningError"}}
	if err := writeMetricsFile(path, failed); err != nil {
		t.Fatal(err)
	}
	second := readMetrics(t, path)
	for _, want := range []string{
		`zrep_run_status{source="tank",destination="nas:backup",status="PlanningError"} 1`,
		`zrep_run_exit_code{source="tank",destination="nas:backup"} 3`,
		`zrep_last_success_timestamp_seconds{source="tank",destination="nas:backup"} 1800000090`,
		`zrep_filesystem_last_success_timestamp_seconds{filesystem="tank/a",destination="backup/tank/a"} 1800000090`,
		`zrep_filesystem_last_success_timestamp_seconds{filesystem="tank/a \"quoted\" \\ and\nnewline",destination="backup/tank/a \"quoted\" \\ and\nnewline"} 1800000090`,
	} {
		if !hasSample(t, second, want) {
			t.Errorf("after a failed run the metrics lack %s\n%s", want, second)
		}
	}

	t2 := t1.Add(time.Hour)
	partly := runMetrics{source: "tank", destination: "nas:backup", start: t2, end: t2.Add(time.Second), exitCode: 1,
		report: &replication.Report{Status: "Completed", Completed: []*replication.FilesystemReport{
			fsReport("tank/a", "PermanentError", 0), fsReport(odd, "Completed", 5)}}}
	if err := writeMetricsFile(path, partly); err != nil {
		t.Fatal(err)
	}
	third := readMetrics(t, path)
	for _, want := range []string{
		`zrep_filesystem_last_success_timestamp_seconds{filesystem="tank/a",destination="backup/tank/a"} 1800000090`,
		`zrep_filesystem_last_success_timestamp_seconds{filesystem="tank/a \"quoted\" \\ and\nnewline",destination="backup/tank/a \"quoted\" \\ and\nnewline"} 1800007201`,
		`zrep_filesystem_status{filesystem="tank/a",destination="backup/tank/a",status="PermanentError"} 1`,
		`zrep_last_success_timestamp_seconds{source="tank",destination="nas:backup"} 1800000090`,
	} {
		if !hasSample(t, third, want) {
			t.Errorf("after a partly failed run the metrics lack %s\n%s", want, third)
		}
	}
	if n := strings.Count(third, "zrep_filesystem_last_success_timestamp_seconds{"); n != 2 {
		t.Errorf("%d last success samples, want 2:\n%s", n, third)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("the temporary file was left behind: %v", entries)
	}
}

// A previous file that does not parse to the end (edited by hand) keeps
// the times read before the fault, and the run writes a whole file.
func TestMetricsFileAfterAFileThatDoesNotParse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zrep.prom")
	old := "# TYPE zrep_filesystem_last_success_timestamp_seconds gauge\n" +
		`zrep_filesystem_last_success_timestamp_seconds{filesystem="tank/a",destination="backup/tank/a"} 1800000090` + "\n" +
		"this is not a sample\n"
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_800_003_600, 0)
	failed := runMetrics{source: "tank", destination: "nas:backup", start: t0, end: t0, exitCode: 3,
		report: &replication.Report{Status: "PlanningError"}}
	if err := writeMetricsFile(path, failed); err != nil {
		t.Fatal(err)
	}
	got := readMetrics(t, path)
	for _, want := range []string{
		`zrep_filesystem_last_success_timestamp_seconds{filesystem="tank/a",destination="backup/tank/a"} 1800000090`,
		`zrep_run_exit_code{source="tank",destination="nas:backup"} 3`,
	} {
		if !hasSample(t, got, want) {
			t.Errorf("metrics lack %s\n%s", want, got)
		}
	}
}

func TestMetricsFileUnwritable(t *testing.T) {
	err := writeMetricsFile(filepath.Join(t.TempDir(), "no", "such", "dir.prom"),
		runMetrics{report: &replication.Report{Status: "Completed"}})
	if err == nil || !strings.Contains(err.Error(), "does the directory") {
		t.Errorf("err = %v", err)
	}
}

func readMetrics(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644 so that node_exporter can read it", fi.Mode())
	}
	return string(b)
}

// hasSample reports whether the exposition text holds want: a comment line
// as written, or a sample `name{labels} value` as Prometheus reads it, its
// labels in any order and its value a number however it is written.
func hasSample(t *testing.T, text, want string) bool {
	t.Helper()
	if strings.HasPrefix(want, "#") {
		return strings.Contains(text, want+"\n")
	}
	got, wanted := parseExposition(t, text), parseExposition(t, want+"\n")
	for name, fam := range wanted {
		w := fam.GetMetric()[0]
		for _, m := range got[name].GetMetric() {
			if maps.Equal(labelMap(m), labelMap(w)) && sampleValue(m) == sampleValue(w) {
				return true
			}
		}
	}
	return false
}

func parseExposition(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("%v in\n%s", err, text)
	}
	return fams
}

func labelMap(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func sampleValue(m *dto.Metric) float64 {
	if m.GetGauge() != nil {
		return m.GetGauge().GetValue()
	}
	return m.GetUntyped().GetValue()
}

// A run that ends before replicating still writes its metrics file: here
// the lock is held by another run (exit 4). Nothing is contacted: neither
// dataset exists.
func TestMetricsFileWhenLocked(t *testing.T) {
	dir := t.TempDir()
	held, err := lockDestination(dir, endpoints.Side{Dataset: "nopool/b"})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	path := filepath.Join(t.TempDir(), "zrep.prom")
	var stdout, stderr bytes.Buffer
	code := runApp(context.Background(), []string{"zrep", "run", "--lock-dir", dir, "--metrics-file", path, "nopool/a", "nopool/b"}, &stdout, &stderr)
	if code != exitLocked {
		t.Fatalf("exit %d, want %d; stderr %q", code, exitLocked, stderr.String())
	}
	m := readMetrics(t, path)
	for _, want := range []string{
		`zrep_run_exit_code{source="nopool/a",destination="nopool/b"} 4`,
		`zrep_run_status{source="nopool/a",destination="nopool/b",status="Completed"} 0`,
		`zrep_run_status{source="nopool/a",destination="nopool/b",status="ContextDone"} 0`,
	} {
		if !hasSample(t, m, want) {
			t.Errorf("metrics lack %s\n%s", want, m)
		}
	}
	if strings.Contains(m, "zrep_last_success_timestamp_seconds{") {
		t.Errorf("a locked-out run has a last success time:\n%s", m)
	}
}
