// Package bench holds zrep's benchmarks. run.sh drives the ones on real ZFS;
// this file is target 4 of issue #5, the planning cost: a synthetic listing
// of BENCH_PLAN_FS filesystems x BENCH_PLAN_SNAPS snapshots (default
// 10,000 x 100) fed through zrep's parser and planner.
//
//	go test -run '^$' -bench . -benchtime 1x ./bench/
//
// BenchmarkParseGet feeds the listing files to endpoints.ParseGet directly.
// The others go through the exported endpoints.Endpoint, as zrep does: a
// fake `zfs` first on PATH prints the listing from a file, exactly as
// OpenZFS prints
//
//	zfs get -H -p -o name,property,value,source -t filesystem,volume,snapshot,bookmark \
//	    type,guid,createtxg,creation,origin,receive_resume_token ROOT
//
// (the argv zrep builds for OpenZFS), and zrep's own properties as the
// listings of where they are set and of their values. The fake is `cat`, a child process, so
// its CPU is not counted: cpu-s/op is the benchmark process's own user+sys
// (getrusage RUSAGE_SELF, all threads, the garbage collector included) and
// peak-RSS-MiB its VmHWM, reset before each operation through
// /proc/self/clear_refs. The two exec's per side (probe and listing) are in
// the figures; they cost milliseconds.
package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zrep/zrep/endpoints"
	"github.com/zrep/zrep/pdu"
	"github.com/zrep/zrep/replication"
)

const (
	srcRoot = "tank/data/src"
	dstRoot = "backup/data/src"
)

type scale struct{ fs, snaps int }

func (s scale) String() string { return fmt.Sprintf("fs=%d/snaps=%d", s.fs, s.snaps) }

// scales are the sizes benchmarked: a tenth of the target for the trend,
// then the target (or BENCH_PLAN_FS x BENCH_PLAN_SNAPS).
func scales() []scale {
	fs, snaps := envInt("BENCH_PLAN_FS", 10000), envInt("BENCH_PLAN_SNAPS", 100)
	if fs >= 10 {
		return []scale{{fs / 10, snaps}, {fs, snaps}}
	}
	return []scale{{fs, snaps}}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// writeListing writes what `zfs get -r` prints for root with fs child
// filesystems (in groups of 100, so the tree has some depth) of snaps
// snapshots each; skip leaves out each filesystem's newest snapshots.
// Guids are derived from the source names, so both sides agree.
func writeListing(path, root string, sc scale, skip int) error {
	if st, err := os.Stat(path); err == nil && st.Size() > 0 {
		return nil // made by an earlier benchmark in this run or before
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	txg := uint64(1000)
	creation := int64(1700000000)
	// zrep's own properties are listed apart: where they are set (the
	// placeholders' zrep:placeholder, and what their children inherit),
	// then the values of those set.
	sf, err := os.Create(path + ".sources")
	if err != nil {
		return err
	}
	defer sf.Close()
	vf, err := os.Create(path + ".values")
	if err != nil {
		return err
	}
	defer vf.Close()
	sw, vw := bufio.NewWriter(sf), bufio.NewWriter(vf)
	ds := func(name, typ string, guid uint64, placeholder string) {
		switch {
		case typ != "filesystem" || root != dstRoot:
		case placeholder != "-\t-":
			fmt.Fprintf(sw, "%s\tzrep:placeholder\tlocal\n", name)
			fmt.Fprintf(vw, "%s\tzrep:placeholder\ton\n", name)
		default:
			fmt.Fprintf(sw, "%s\tzrep:placeholder\tinherited from %s\n", name, name[:strings.LastIndexByte(name, '/')])
		}
		txg++
		creation += 60
		fmt.Fprintf(w, "%s\ttype\t%s\t-\n", name, typ)
		fmt.Fprintf(w, "%s\tguid\t%d\t-\n", name, guid)
		fmt.Fprintf(w, "%s\tcreatetxg\t%d\t-\n", name, txg)
		fmt.Fprintf(w, "%s\tcreation\t%d\t-\n", name, creation)
		fmt.Fprintf(w, "%s\torigin\t-\t-\n", name)
		fmt.Fprintf(w, "%s\treceive_resume_token\t-\t-\n", name)
	}
	guid := func(i, j int) uint64 { return 0x9e3779b97f4a7c15*uint64(i+1) ^ uint64(j+1)*0xbf58476d1ce4e5b9 }
	// The root and the groups have no snapshots: on the destination they
	// are placeholders, as zrep makes them.
	ph := "-\t-"
	if root == dstRoot {
		ph = "on\tlocal"
	}
	ds(root, "filesystem", guid(-1, -1), ph)
	groups := (sc.fs + 99) / 100
	n := 0
	for g := 0; g < groups && n < sc.fs; g++ {
		group := fmt.Sprintf("%s/g%03d", root, g)
		ds(group, "filesystem", guid(-2, g), ph)
		for k := 0; k < 100 && n < sc.fs; k++ {
			fs := fmt.Sprintf("%s/fs%05d", group, n)
			ds(fs, "filesystem", guid(n, -1), "-\t-")
			for j := 0; j < sc.snaps-skip; j++ {
				ds(fmt.Sprintf("%s@zrep-auto-%04d", fs, j), "snapshot", guid(n, j), "-\t-")
			}
			n++
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := sw.Flush(); err != nil {
		return err
	}
	if err := vw.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// listingTag names the listing files of sc; the version changes with
// their format (v2: with origin; v3: zrep's properties apart), so that
// files of an older format left in the temporary directory are not reused.
func listingTag(sc scale) string { return fmt.Sprintf("v3-%dx%d", sc.fs, sc.snaps) }

var (
	fakeOnce sync.Once
	fakeDir  string
	fakeErr  error
)

// fakeZFS makes the fake zfs and the listings for sc and returns PATH.
// The destination listing lacks each filesystem's newest snapshot when
// incremental is set.
func fakeZFS(b *testing.B, sc scale, incremental bool) string {
	b.Helper()
	fakeOnce.Do(func() {
		fakeDir = filepath.Join(os.TempDir(), "zrep-bench-plan")
		fakeErr = os.MkdirAll(fakeDir, 0o755)
	})
	if fakeErr != nil {
		b.Fatal(fakeErr)
	}
	tag := listingTag(sc)
	src := filepath.Join(fakeDir, "src-"+tag+".txt")
	dst := filepath.Join(fakeDir, "dst-"+tag+".txt")
	skip := 0
	if incremental {
		dst = filepath.Join(fakeDir, "dst-inc-"+tag+".txt")
		skip = 1
	}
	if err := writeListing(src, srcRoot, sc, 0); err != nil {
		b.Fatal(err)
	}
	if err := writeListing(dst, dstRoot, sc, skip); err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(fakeDir, fmt.Sprintf("bin-%s-skip%d", tag, skip))
	if err := os.MkdirAll(bin, 0o755); err != nil {
		b.Fatal(err)
	}
	script := fmt.Sprintf(`#!/bin/sh
# fake zfs for the planning benchmark: OpenZFS's answers, from files
case "$1" in
version) echo zfs-2.2.7-1; echo zfs-kmod-2.2.7-1; exit 0 ;;
get) for a; do last=$a; done
	case "$*" in
	*name,property,value,source*) ext= ;;
	*name,property,source*) ext=.sources ;;
	*"name,property,value -s local"*) ext=.values ;;
	*name,property,value*) exit 0 ;;
	esac
	case "$last" in
	%s) exec cat %s$ext ;;
	%s) exec cat %s$ext ;;
	esac ;;
esac
echo "fake zfs: unexpected: $*" >&2
exit 1
`, srcRoot, src, dstRoot, dst)
	if err := os.WriteFile(filepath.Join(bin, "zfs"), []byte(script), 0o755); err != nil {
		b.Fatal(err)
	}
	return bin + string(os.PathListSeparator) + os.Getenv("PATH")
}

// noEstimate keeps the planner's size estimates (one `zfs send -nvP` per
// step, zfs's cost, not zrep's) out of the figures.
type noEstimate struct{ *endpoints.Endpoint }

func (noEstimate) EstimateSize(context.Context, *pdu.SendReq) (pdu.SizeEstimate, error) {
	return pdu.SizeEstimate{}, nil
}

func newEndpoints(b *testing.B) (src, dst *endpoints.Endpoint) {
	s, err := endpoints.ParseSide(srcRoot)
	if err != nil {
		b.Fatal(err)
	}
	d, err := endpoints.ParseSide(dstRoot)
	if err != nil {
		b.Fatal(err)
	}
	return endpoints.New(s, endpoints.Options{Role: "source", Recursive: true}),
		endpoints.New(d, endpoints.Options{Role: "destination", Recursive: true})
}

// meter measures the process's own CPU and peak RSS over each operation.
type meter struct {
	cpu     time.Duration
	peakKiB int64
}

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func resetPeak() {
	runtime.GC()
	debug.FreeOSMemory()
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // resets VmHWM (Linux >= 4.0)
}

func vmHWM() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func (m *meter) op(b *testing.B, f func()) {
	b.StopTimer()
	resetPeak()
	c0 := cpuNow()
	b.StartTimer()
	f()
	b.StopTimer()
	m.cpu += cpuNow() - c0
	m.peakKiB = max(m.peakKiB, vmHWM())
	b.StartTimer()
}

func (m *meter) report(b *testing.B) {
	b.ReportMetric(m.cpu.Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(m.peakKiB)/1024, "peak-RSS-MiB")
}

// BenchmarkParseGet is the parser alone on both sides' listings, read from
// the files (no process, no pipe).
// TestMain runs the benchmarks with the garbage collector set as zrep's
// main sets it (gcPercent in gc.go): GOGC=300 unless the environment sets
// GOGC.
func TestMain(m *testing.M) {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(300)
	}
	os.Exit(m.Run())
}

func BenchmarkParseGet(b *testing.B) {
	for _, sc := range scales() {
		b.Run(sc.String(), func(b *testing.B) {
			fakeZFS(b, sc, false)
			tag := listingTag(sc)
			var m meter
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				m.op(b, func() {
					for _, side := range []string{"src-", "dst-"} {
						f, err := os.Open(filepath.Join(fakeDir, side+tag+".txt"))
						if err != nil {
							b.Fatal(err)
						}
						root := srcRoot
						if side == "dst-" {
							root = dstRoot
						}
						fss, err := endpoints.ParseGet(f, root)
						f.Close()
						if err != nil {
							b.Fatal(err)
						}
						if len(fss) < sc.fs {
							b.Fatalf("%d filesystems", len(fss))
						}
					}
				})
			}
			m.report(b)
		})
	}
}

// BenchmarkListing is the parsing alone: both sides' listings through
// Endpoint.ListFilesystems.
func BenchmarkListing(b *testing.B) {
	for _, sc := range scales() {
		b.Run(sc.String(), func(b *testing.B) {
			b.Setenv("PATH", fakeZFS(b, sc, false))
			ctx := context.Background()
			var m meter
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				src, dst := newEndpoints(b)
				m.op(b, func() {
					s, err := src.ListFilesystems(ctx)
					if err != nil {
						b.Fatal(err)
					}
					d, err := dst.ListFilesystems(ctx)
					if err != nil {
						b.Fatal(err)
					}
					if len(s) != len(d) {
						b.Fatalf("source lists %d filesystems, destination %d", len(s), len(d))
					}
				})
			}
			m.report(b)
		})
	}
}

// BenchmarkPlan is listing, parsing and planning: replication.Plan on the
// two endpoints. noop: the destination has every snapshot (issue #5's
// no-op at scale); incremental: each destination filesystem lacks the
// newest snapshot, so every filesystem gets one step.
func BenchmarkPlan(b *testing.B) {
	for _, sc := range scales() {
		for _, mode := range []string{"noop", "incremental"} {
			b.Run(sc.String()+"/"+mode, func(b *testing.B) {
				b.Setenv("PATH", fakeZFS(b, sc, mode == "incremental"))
				ctx := context.Background()
				cfg := replication.Config{SourceRoot: srcRoot, DestRoot: dstRoot}
				var m meter
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					src, dst := newEndpoints(b)
					var rep *replication.PlanReport
					m.op(b, func() {
						var err error
						rep, err = replication.Plan(ctx, cfg, noEstimate{src}, dst)
						if err != nil {
							b.Fatal(err)
						}
					})
					b.StopTimer()
					check(b, rep, sc, mode)
					b.StartTimer()
				}
				m.report(b)
			})
		}
	}
}

func check(b *testing.B, rep *replication.PlanReport, sc scale, mode string) {
	steps, problems := 0, 0
	for _, fp := range rep.Filesystems {
		steps += len(fp.Steps)
		if fp.Problem != "" {
			problems++
			if problems == 1 {
				b.Logf("first problem: %s: %s", fp.Filesystem, fp.Problem)
			}
		}
	}
	want := 0
	if mode == "incremental" {
		want = sc.fs
	}
	if steps != want || problems != 0 {
		b.Fatalf("%s: %d steps and %d problems, want %d steps and none", mode, steps, problems, want)
	}
}
