package main

import "github.com/urfave/cli/v2"

// plainDefaults makes every flag of app show at most one default in its
// help, in words: a switch shows none (it is off unless given), and a
// string its value without quotes. A flag whose zero value means something
// (no timeout, ssh's own port) says so in its own DefaultText.
func plainDefaults(app *cli.App) {
	eachFlag(app, func(f cli.Flag) {
		switch f := f.(type) {
		case *cli.BoolFlag:
			f.DisableDefaultText = true
		case *cli.StringFlag:
			if f.DefaultText == "" && f.Value != "" {
				f.DefaultText = f.Value
			}
		}
	})
}
