package main

import (
	"os"

	"github.com/mattn/go-isatty"
	"github.com/urfave/cli/v2"
)

func runAction(c *cli.Context) error {
	j, err := parseRunOptions(c)
	if err != nil {
		return err
	}
	return j.run(c.Context)
}

// parseRunOptions reads run's command line into the job it runs. Every
// error it returns is a usage error.
func parseRunOptions(c *cli.Context) (*job, error) {
	j, err := parseJob(c)
	if err != nil {
		return nil, err
	}
	j.cfg.Retries = c.Int("retries")
	if j.cfg.Retries < 0 {
		return nil, usageErrorf("--retries must be 0 or more, got %d", j.cfg.Retries)
	}
	j.cfg.RetryWait = c.Duration("retry-wait")
	if j.cfg.RetryWait < 0 {
		return nil, usageErrorf("--retry-wait must not be negative, got %s", j.cfg.RetryWait)
	}
	j.timeout = c.Duration("timeout")
	if j.timeout < 0 {
		return nil, usageErrorf("--timeout must not be negative, got %s", j.timeout)
	}
	if j.progress, err = wantProgress(c.String("progress"), j.out.quiet); err != nil {
		return nil, err
	}
	if j.hooks, err = parseSnapshotHooks(c); err != nil {
		return nil, err
	}
	if j.hooks.any() && !j.ret.snapshot {
		return nil, usageErrorf("--pre-snapshot and --post-snapshot run around --snapshot's set: add --snapshot")
	}
	j.postRun = c.String("post-run")
	j.lockDir = c.String("lock-dir")
	j.metricsFile = c.String("metrics-file")
	return j, nil
}

func wantProgress(mode string, quiet bool) (bool, error) {
	switch mode {
	case "always":
		return true, nil
	case "never":
		return false, nil
	case "auto":
		fd := os.Stderr.Fd()
		return !quiet && (isatty.IsTerminal(fd) || isatty.IsCygwinTerminal(fd)), nil
	}
	return false, usageErrorf("--progress must be auto, always or never, not %q", mode)
}
