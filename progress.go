package main

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/zrep/zrep/replication"
)

// progressInterval is how often the progress bar reads the Report.
const progressInterval = 200 * time.Millisecond

// progress draws a bar on stderr from the Report, read in the background
// while Drive runs. The engine knows nothing of it.
type progress struct {
	stop chan struct{}
	done chan struct{}
}

func startProgress(w io.Writer, r *replication.Replication) *progress {
	p := &progress{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		bar := progressbar.NewOptions64(-1,
			progressbar.OptionSetWriter(w),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetDescription("zrep"),
			progressbar.OptionThrottle(progressInterval),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionFullWidth(),
			progressbar.OptionSpinnerType(14),
		)
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		var max int64 = -1
		var wire wireRate
		for {
			rep := r.Report()
			if total := rep.ExpectedBytes(); total > 0 && total != max {
				max = total
				bar.ChangeMax64(max)
			}
			bar.Describe("zrep " + rep.Status + wire.describe(rep.WireBytes, time.Now()))
			_ = bar.Set64(rep.Bytes)
			select {
			case <-p.stop:
				_ = bar.Finish()
				return
			case <-t.C:
			}
		}
	}()
	return p
}

// wireRate follows the bytes on the wire, which the bar's own rate (of
// the stream's bytes) does not show when the stream is compressed.
type wireRate struct {
	last  int64
	at    time.Time
	perS  float64
	shown bool
}

// wireWindow is the span over which the wire rate is averaged.
const wireWindow = 2 * time.Second

// describe is the description's wire part for the count n read at now.
func (w *wireRate) describe(n int64, now time.Time) string {
	if w.at.IsZero() {
		w.last, w.at = n, now
		return ""
	}
	if d := now.Sub(w.at); d >= wireWindow {
		if n < w.last {
			w.last = 0 // a retry started the count again
		}
		w.perS = float64(n-w.last) / d.Seconds()
		w.last, w.at, w.shown = n, now, true
	}
	if !w.shown {
		return ""
	}
	return fmt.Sprintf(" (wire %s/s)", humanRate(w.perS))
}

// humanRate writes a byte rate with a binary unit.
func humanRate(v float64) string {
	units := []string{"B", "KiB", "MiB", "GiB"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}

// Stop removes the bar; the Report follows on stdout.
func (p *progress) Stop() {
	close(p.stop)
	<-p.done
}
