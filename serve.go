package main

import (
	"fmt"
	"io"
	"log/syslog"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/zrep/zrep/endpoints"
)

// serveDescription is zrep serve's help.
const serveDescription = "zrep serve is an ssh forced command, in authorized_keys:\n\n" +
	"  command=\"zrep serve --receive-only backup/web1\",restrict ssh-ed25519 AAAA... web1\n\n" +
	"It reads SSH_ORIGINAL_COMMAND, which must be one of zrep's requests, and runs it only\n" +
	"if a zrep run of that role needs it under that dataset: --receive-only (the\n" +
	"destination of a push) lists, receives unmounted and resumable, discards partial\n" +
	"state and makes placeholders; --send-only (the source of a pull) lists, estimates,\n" +
	"sends, and keeps zrep's cursor bookmarks and holds. Anything else (another dataset,\n" +
	"a destroy, a rollback, receive -F over a backup, a release, a shell command) is\n" +
	"refused with a message on stderr and exit status 126. Every request and its\n" +
	"verdict go to syslog (facility auth), or to --log-file. The zrep that connects\n" +
	"needs no flag."

func serveAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageErrorf("serve takes no arguments, only flags: zrep serve --receive-only DATASET")
	}
	policy := endpoints.ServePolicy{
		AllowPrune:    c.Bool("allow-prune"),
		AllowRollback: c.Bool("allow-rollback"),
		AllowSnapshot: c.Bool("allow-snapshot"),
	}
	recv, send := c.String("receive-only"), c.String("send-only")
	switch {
	case recv != "" && send != "":
		return usageErrorf("serve: --receive-only and --send-only exclude each other; give each role its own key")
	case recv != "":
		policy.Role, policy.Dataset = endpoints.ReceiveOnly, recv
	case send != "":
		policy.Role, policy.Dataset = endpoints.SendOnly, send
	default:
		return usageErrorf("serve needs --receive-only DATASET or --send-only DATASET")
	}
	if err := endpoints.CheckDatasetName(policy.Dataset); err != nil {
		return usageErrorf("serve %s: %v", policy.Role, err)
	}
	if policy.AllowSnapshot && policy.Role != endpoints.SendOnly {
		return usageErrorf("serve: --allow-snapshot goes with --send-only; a destination takes no snapshots")
	}
	log, err := serveLog(c.String("log-file"), c.App.ErrWriter, policy)
	if err != nil {
		return err
	}
	s := &endpoints.Server{Policy: policy, Log: log, Stderr: c.App.ErrWriter}
	return &exitError{code: s.Serve(os.Getenv("SSH_ORIGINAL_COMMAND"))}
}

// serveLog is where serve records requests and verdicts: file if given,
// else syslog. Without syslog the refusals still reach stderr (the client
// reads them there); accepted requests are then not recorded, since a
// line on stderr would reach the client in front of the request's own
// output.
func serveLog(file string, stderr io.Writer, policy endpoints.ServePolicy) (func(string), error) {
	prefix := fmt.Sprintf("zrep serve %s: ", policy)
	if file != "" {
		return func(line string) {
			f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			if err != nil {
				fmt.Fprintf(stderr, "zrep serve: cannot write the log %s: %v\n", file, err)
				return
			}
			defer f.Close()
			fmt.Fprintf(f, "%s %s%s\n", time.Now().UTC().Format(time.RFC3339), prefix, line)
		}, nil
	}
	w, err := syslog.New(syslog.LOG_AUTH|syslog.LOG_INFO, "zrep")
	if err != nil {
		return func(string) {}, nil
	}
	return func(line string) {
		w.Info(prefix + line)
	}, nil
}
