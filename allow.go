package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/user"
	"sync"

	"github.com/urfave/cli/v2"

	"github.com/zrep/zrep/endpoints"
)

func allowCommand() *cli.Command {
	return &cli.Command{
		Name:  "allow",
		Usage: "print the zfs allow commands that let each side's account run this job without root",
		Description: "Takes run's flags and arguments and prints, for each side, the one zfs allow command\n" +
			"(to run as root there) that grants the account that side logs in as exactly the\n" +
			"permissions this job needs: --snapshot, --hold, --keep-source, --keep-dest,\n" +
			"--rollback, -r (placeholders) and --recv-set/--recv-exclude each add their own.\n" +
			"Contacts nothing, but for a remote side without USER@ asks ssh -G for the login name.",
		ArgsUsage: "SRC DST",
		Flags: append(append(append(commonFlags(), runFlags()...), metricsFileFlag()),
			retentionFlags(true)...),
		OnUsageError: onUsageError,
		Action:       allowAction,
	}
}

func allowAction(c *cli.Context) error {
	j, err := parseJob(c, c.App.ErrWriter)
	if err != nil {
		return err
	}
	if _, err := parseRetention(c); err != nil {
		return err
	}
	w := jobWork(c, j)
	for _, s := range []struct {
		role string
		side endpoints.Side
	}{{"source", j.src}, {"destination", j.dst}} {
		account, err := sideAccount(c.Context, s.side, j.ssh)
		if err != nil {
			return &exitError{code: exitFailed, err: fmt.Errorf("%s %s: %w", s.role, s.side, err)}
		}
		if err := writeGrant(c.App.Writer, s.role, s.side, account, j.sudo, w); err != nil {
			return &exitError{code: exitFailed, err: err}
		}
	}
	return nil
}

// writeGrant prints one side's grant: a comment saying where to run it,
// and the zfs allow command.
func writeGrant(out io.Writer, role string, side endpoints.Side, account string, sudo bool, w endpoints.Work) error {
	where := "this host"
	if !side.Local() {
		where = side.Host
	}
	switch {
	case account == "root":
		_, err := fmt.Fprintf(out, "# %s %s: the account root needs no delegation\n", role, side)
		return err
	case sudo && !side.Local():
		_, err := fmt.Fprintf(out, "# %s %s: --sudo runs zfs as root through sudo -n; on %s, sudoers needs:\n#   %s ALL=(root) NOPASSWD: /usr/sbin/zfs\n",
			role, side, where, account)
		return err
	}
	grant := endpoints.GrantDataset(role, side.Dataset)
	argv, err := endpoints.AllowArgv(account, endpoints.Permissions(endpoints.Needs(role, w)), grant)
	if err != nil {
		return fmt.Errorf("%s %s: %w", role, side, err)
	}
	note := ""
	if grant != side.Dataset {
		note = fmt.Sprintf("; on the parent %s, where zfs receive creates %s (the permissions reach its descendants)", grant, side.Dataset)
	}
	_, err = fmt.Fprintf(out, "# %s %s: as root on %s, for the account %s%s\n%s\n",
		role, side, where, account, note, endpoints.CommandLine(argv))
	return err
}

// jobWork is what the job of c does, as far as zfs permissions go.
func jobWork(c *cli.Context, j *job) endpoints.Work {
	w := endpoints.Work{
		Recursive:  c.Bool("recursive"),
		Snapshot:   c.Bool("snapshot"),
		Hold:       c.Bool("hold"),
		KeepSource: c.IsSet("keep-source"),
		KeepDest:   c.IsSet("keep-dest"),
		Rollback:   j.cfg.Rollback,
	}
	for _, p := range j.cfg.Receive.Set {
		w.RecvSet = append(w.RecvSet, p.Name)
	}
	w.RecvExclude = append(w.RecvExclude, j.cfg.Receive.Exclude...)
	return w
}

// sideAccount is the account zfs runs as on side: USER of USER@HOST, the
// login name ssh would use for a remote side without one, and this
// process's user for a local side.
func sideAccount(ctx context.Context, side endpoints.Side, o endpoints.SSHOptions) (string, error) {
	switch {
	case side.User != "":
		return side.User, nil
	case side.Local():
		u, err := user.Current()
		if err != nil {
			return "", fmt.Errorf("who runs zrep: %w", err)
		}
		return u.Username, nil
	}
	return endpoints.LoginName(ctx, side, o)
}

// checkDelegation checks on both sides at once, before anything is sent
// or snapshotted, that an account that is not root holds the zfs
// permissions the job of c needs; a missing one ends the command with
// exit 1, nothing changed, naming the permission and the zfs allow
// command that grants it.
func checkDelegation(ctx context.Context, c *cli.Context, j *job, src, dst *endpoints.Endpoint) error {
	w := jobWork(c, j)
	w.PruneOnly = c.Command.Name == "prune"
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, s := range []struct {
		role string
		e    *endpoints.Endpoint
	}{{"source", src}, {"destination", dst}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.e.CheckDelegation(ctx, endpoints.Needs(s.role, w))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return &exitError{code: exitFailed, err: err}
	}
	return nil
}
