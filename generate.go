package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"
)

// generateCommand writes the man page and the shell completions from the
// command definitions themselves, so that none of them is a copy that can
// drift: `make` runs it to build what `make install` and the package ship.
// documented makes a fresh copy of the app it documents.
func generateCommand(documented func() *cli.App) *cli.Command {
	return &cli.Command{
		Name:      "generate",
		Hidden:    true,
		Usage:     "write the man page or a shell completion to stdout",
		ArgsUsage: "man|bash|zsh|fish",
		Action: func(c *cli.Context) error {
			app := documented()
			var (
				out string
				err error
			)
			switch c.Args().First() {
			case "man":
				out, err = manPage(app)
			case "bash":
				out = bashCompletion(app)
			case "zsh":
				out = zshCompletion(app)
			case "fish":
				out, err = app.ToFishCompletion()
				// urfave/cli leaves the placeholders' backquotes in.
				out = strings.ReplaceAll(out, "`", "")
			default:
				return usageErrorf("generate what? man, bash, zsh or fish")
			}
			if err != nil {
				return &exitError{code: exitFailed, err: fmt.Errorf("generate %s: %w", c.Args().First(), err)}
			}
			_, err = io.WriteString(c.App.Writer, out)
			return err
		},
	}
}
