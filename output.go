package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"strings"
)

// output is where a command speaks: its result on stdout, as text or as
// JSON (--json), and its logs and progress bar on stderr.
type output struct {
	stdout, stderr io.Writer
	json           bool
	quiet          bool // -q: only errors on stderr
	logger         *slog.Logger
}

// newOutput makes a command's output: its logger writes to stderr from
// level on, or only errors when quiet.
func newOutput(stdout, stderr io.Writer, asJSON, quiet bool, level slog.Level) output {
	if quiet {
		level = slog.LevelError
	}
	return output{
		stdout: stdout, stderr: stderr, json: asJSON, quiet: quiet,
		logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})),
	}
}

// writeJSON writes v to w as indented JSON, the form of every --json result.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// oneLine keeps a monitoring plugin's output on its line: no newline, and
// no "|", which starts the perfdata.
func oneLine(s string) string {
	return strings.NewReplacer("\n", " ", "|", "/").Replace(s)
}
