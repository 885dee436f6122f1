package main

import (
	"context"
	"fmt"
	"io"
	"os/user"

	"github.com/urfave/cli/v2"

	"github.com/zrep/zrep/endpoints"
)

// allowDescription is what allow --help says it does.
const allowDescription = "Takes run's flags and arguments and prints, for each side, the one zfs allow command\n" +
	"(to run as root there) that grants the account that side logs in as exactly the\n" +
	"permissions this job needs: --snapshot, --hold, --keep-source, --keep-dest,\n" +
	"--rollback, -r (placeholders) and --recv-set/--recv-exclude each add their own.\n" +
	"Contacts nothing, but for a remote side without USER@ asks ssh -G for the login name."

func allowAction(c *cli.Context) error {
	j, err := parseJob(c)
	if err != nil {
		return err
	}
	w := j.work()
	for _, s := range []struct {
		role string
		side endpoints.Side
	}{{"source", j.src}, {"destination", j.dst}} {
		account, err := sideAccount(c.Context, s.side, j.ssh)
		if err != nil {
			return &exitError{code: exitFailed, err: fmt.Errorf("%s %s: %w", s.role, s.side, err)}
		}
		if err := writeGrant(j.out.stdout, s.role, s.side, account, j.sudo, w); err != nil {
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
