package main

import (
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
		for {
			rep := r.Report()
			if total := rep.ExpectedBytes(); total > 0 && total != max {
				max = total
				bar.ChangeMax64(max)
			}
			bar.Describe("zrep " + rep.Status)
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

// Stop removes the bar; the Report follows on stdout.
func (p *progress) Stop() {
	close(p.stop)
	<-p.done
}
