// Command measure runs one command and reports, as one JSON line, what the
// benchmarks need and GNU time cannot separate: the CPU time of the command's
// own process (not of its children), its own peak RSS, and the CPU the whole
// machine and the zfs-fuse daemon spent meanwhile.
//
//	measure [-daemon PID] [-label L] -- CMD ARGS...
//
// Method. The command's own CPU time is read from /proc/PID/stat (utime and
// stime, all threads) after it has exited but before it is reaped: waitid
// with WNOWAIT leaves it a zombie whose counters are final. Its own peak RSS
// is VmHWM from /proc/PID/status, polled every few milliseconds while it
// runs (a zombie has no memory map any more; VmHWM only grows, so the last
// sample is the peak up to a few milliseconds before exit). The children's
// CPU (zfs send/receive, ssh) is cutime+cstime from the same zombie stat.
// The machine's busy CPU (user+nice+system+irq+softirq of /proc/stat) and the
// zfs-fuse daemon's utime+stime are sampled before and after: on zfs-fuse the
// daemon, not the zfs command, does the work of send and receive, and an ssh
// ControlMaster runs detached, so only the machine-wide figure covers the
// whole pipeline.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

const clkTck = 100 // USER_HZ on Linux

type result struct {
	Label        string  `json:"label,omitempty"`
	Exit         int     `json:"exit"`
	Wall         float64 `json:"wall_s"`
	SelfUser     float64 `json:"self_user_s"`
	SelfSys      float64 `json:"self_sys_s"`
	ChildUser    float64 `json:"children_user_s"`
	ChildSys     float64 `json:"children_sys_s"`
	SelfHWMKiB   int64   `json:"self_hwm_kib"`
	RusageMaxKiB int64   `json:"rusage_maxrss_kib"`
	MachineBusy  float64 `json:"machine_busy_s"`
	Daemon       float64 `json:"daemon_s"`
}

func main() {
	daemon := flag.Int("daemon", 0, "pid of the zfs-fuse daemon (0: none)")
	label := flag.String("label", "", "label copied into the JSON")
	interval := flag.Duration("interval", 5*time.Millisecond, "VmHWM poll interval")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: measure [-daemon PID] [-label L] -- CMD ARGS...")
		os.Exit(2)
	}
	busy0 := machineBusy()
	d0 := procCPU(*daemon)
	start := time.Now()
	cmd := exec.Command(flag.Arg(0), flag.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "measure:", err)
		os.Exit(127)
	}
	pid := cmd.Process.Pid
	var hwm atomic.Int64
	stop := make(chan struct{})
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		t := time.NewTicker(*interval)
		defer t.Stop()
		for {
			if v := vmHWM(pid); v > hwm.Load() {
				hwm.Store(v)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	// Wait for exit without reaping, so /proc/PID/stat still has the totals.
	var info [128]byte
	for {
		_, _, e := syscall.Syscall6(syscall.SYS_WAITID, 1 /* P_PID */, uintptr(pid),
			uintptr(unsafe.Pointer(&info[0])), syscall.WEXITED|0x1000000 /* WNOWAIT */, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			fmt.Fprintln(os.Stderr, "measure: waitid:", e)
		}
		break
	}
	wall := time.Since(start)
	close(stop)
	<-polled
	st := statFields(pid)
	err := cmd.Wait()
	busy1 := machineBusy()
	d1 := procCPU(*daemon)
	r := result{Label: *label, Wall: wall.Seconds(), SelfHWMKiB: hwm.Load(),
		MachineBusy: float64(busy1-busy0) / clkTck, Daemon: float64(d1-d0) / clkTck}
	if len(st) > 14 {
		r.SelfUser = ticks(st[11])
		r.SelfSys = ticks(st[12])
		r.ChildUser = ticks(st[13])
		r.ChildSys = ticks(st[14])
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.RusageMaxKiB = ru.Maxrss
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.Exit = ee.ExitCode()
	} else if err != nil {
		r.Exit = 127
	}
	b, _ := json.Marshal(r)
	fmt.Fprintln(os.Stderr, string(b))
	if out := os.Getenv("MEASURE_OUT"); out != "" {
		f, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err == nil {
			f.Write(append(b, '\n'))
			f.Close()
		}
	}
	os.Exit(r.Exit)
}

func ticks(s string) float64 {
	v, _ := strconv.ParseFloat(s, 64)
	return v / clkTck
}

// statFields are the fields of /proc/PID/stat after the command name, so
// index 0 is field 3 (state) and utime (field 14) is index 11.
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// procCPU is utime+stime of pid in ticks.
func procCPU(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	f := statFields(pid)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

func vmHWM(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// machineBusy is the machine's non-idle CPU time in ticks, all cores.
func machineBusy() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal
	var sum int64
	for i, s := range f[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait, guest (already in user)
			continue
		}
		v, _ := strconv.ParseInt(s, 10, 64)
		sum += v
	}
	return sum
}
