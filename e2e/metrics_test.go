package e2e

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metricValue is the value of the sample of metrics that is series (name
// and labels, in any order, as Prometheus reads them); ok is false when
// there is none.
func metricValue(t *testing.T, metrics, series string) (v float64, ok bool) {
	t.Helper()
	got, want := parseMetrics(t, metrics), parseMetrics(t, series+" 0\n")
	for name, fam := range want {
		labels := labelSet(fam.GetMetric()[0])
		for _, m := range got[name].GetMetric() {
			if maps.Equal(labelSet(m), labels) {
				if m.GetGauge() == nil {
					t.Fatalf("%s is not a gauge:\n%s", series, metrics)
				}
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

func parseMetrics(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, text)
	}
	return fams
}

func labelSet(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

func mustMetric(t *testing.T, metrics, series string, want func(float64) bool, what string) float64 {
	t.Helper()
	v, ok := metricValue(t, metrics, series)
	if !ok || !want(v) {
		t.Errorf("%s: %v (present %v), want %s\n%s", series, v, ok, what, metrics)
	}
	return v
}

func is(want float64) func(float64) bool { return func(v float64) bool { return v == want } }

func readMetricsFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("metrics file: %v", err)
	}
	return string(b)
}

// TestMetricsFile: run --metrics-file writes the textfile collector's
// format after every run: a successful one, one that timed out and one
// interrupted by SIGINT; those two keep the filesystem's last success time.
func TestMetricsFile(t *testing.T) {
	platformIndependent(t)
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/m", dp+"/m"
	createFS(t, src, "m")
	snapshot(t, src, "s1")
	path := filepath.Join(t.TempDir(), "zrep.prom")
	run := `{source="` + side(src) + `",destination="` + side(dst) + `"}`
	fs := `{filesystem="` + src + `",destination="` + dst + `"}`

	before := float64(time.Now().Unix())
	zrep(t, "run", "--metrics-file", path, side(src), side(dst)).mustExit(t, 0)
	after := float64(time.Now().Unix()) + 1
	m := readMetricsFile(t, path)
	within := func(v float64) bool { return v >= before && v <= after }
	last := mustMetric(t, m, "zrep_filesystem_last_success_timestamp_seconds"+fs, within, "the run's end")
	mustMetric(t, m, "zrep_last_success_timestamp_seconds"+run, within, "the run's end")
	mustMetric(t, m, `zrep_run_status{source="`+side(src)+`",destination="`+side(dst)+`",status="Completed"}`, is(1), "1")
	mustMetric(t, m, `zrep_filesystem_status{filesystem="`+src+`",destination="`+dst+`",status="Completed"}`, is(1), "1")
	mustMetric(t, m, "zrep_run_exit_code"+run, is(0), "0")
	mustMetric(t, m, "zrep_run_start_timestamp_seconds"+run, within, "the run's start")
	bytes := mustMetric(t, m, "zrep_run_bytes"+run, func(v float64) bool { return v > 0 }, "the bytes sent")
	mustMetric(t, m, "zrep_filesystem_bytes"+fs, is(bytes), "the run's bytes")
	if matches, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*")); len(matches) != 1 {
		t.Errorf("files beside the metrics file: %v", matches)
	}

	// A run that times out at once still writes its metrics, and keeps the
	// last success.
	snapshot(t, src, "s2")
	zrep(t, "run", "--timeout", "1ns", "--metrics-file", path, side(src), side(dst)).mustExit(t, 124)
	m = readMetricsFile(t, path)
	mustMetric(t, m, `zrep_run_status{source="`+side(src)+`",destination="`+side(dst)+`",status="ContextDone"}`, is(1), "1")
	mustMetric(t, m, "zrep_run_exit_code"+run, is(124), "124")
	mustMetric(t, m, "zrep_filesystem_last_success_timestamp_seconds"+fs, is(last), "the earlier success")
	mustMetric(t, m, "zrep_last_success_timestamp_seconds"+run, is(last), "the earlier success")
}

// TestMetricsFileInterrupted: a run ended by SIGINT mid-stream writes its
// metrics before it exits.
func TestMetricsFileInterrupted(t *testing.T) {
	platformIndependent(t)
	path := filepath.Join(t.TempDir(), "zrep.prom")
	r, src, dst, _, resume := streaming(t, "--metrics-file", path)
	r.cmd.Process.Signal(syscall.SIGINT)
	r.wait(t, 30*time.Second).mustExit(t, 130)
	resume()
	m := readMetricsFile(t, path)
	run := `{source="` + remote(src) + `",destination="` + remote(dst) + `"}`
	mustMetric(t, m, `zrep_run_status{source="`+remote(src)+`",destination="`+remote(dst)+`",status="ContextDone"}`, is(1), "1")
	mustMetric(t, m, "zrep_run_exit_code"+run, is(130), "130")
	mustMetric(t, m, `zrep_filesystem_status{filesystem="`+src+`",destination="`+dst+`",status="Completed"}`, is(0), "0")
	if _, ok := metricValue(t, m, "zrep_last_success_timestamp_seconds"+run); ok {
		t.Errorf("a run that never succeeded has a last success time:\n%s", m)
	}
}

// TestMetricsFileEarlyFailure: a run whose snapshot fails (the source does
// not exist) ends before planning, and still writes its metrics: exit 1,
// no run state, and the last success of an earlier run kept.
func TestMetricsFileEarlyFailure(t *testing.T) {
	platformIndependent(t)
	sp, dp := newPool(t), newPool(t)
	src, dst := sp+"/none", dp+"/none"
	path := filepath.Join(t.TempDir(), "zrep.prom")
	run := `{source="` + side(src) + `",destination="` + side(dst) + `"}`
	// An earlier success of the same job, as monitoring would have it.
	earlier := "zrep_last_success_timestamp_seconds" + run + " 1800000000\n"
	if err := os.WriteFile(path, []byte(earlier), 0o644); err != nil {
		t.Fatal(err)
	}

	r := zrep(t, "run", "--snapshot", "--metrics-file", path, side(src), side(dst)).mustExit(t, 1)
	if !strings.Contains(r.stderr, "snapshot") {
		t.Errorf("stderr does not say the snapshot failed:\n%s", r.stderr)
	}
	m := readMetricsFile(t, path)
	mustMetric(t, m, "zrep_run_exit_code"+run, is(1), "1")
	for _, s := range []string{"Completed", "PlanningError", "ContextDone"} {
		mustMetric(t, m, `zrep_run_status{source="`+side(src)+`",destination="`+side(dst)+`",status="`+s+`"}`, is(0), "0")
	}
	mustMetric(t, m, "zrep_last_success_timestamp_seconds"+run, is(1800000000), "the earlier success")
	mustMetric(t, m, "zrep_run_end_timestamp_seconds"+run, func(v float64) bool { return v > 1800000000 || v > float64(time.Now().Unix()-60) }, "the run's end")
}
