package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"
)

// Exit statuses, SPEC section 5.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitPlanning    = 3
	exitLocked      = 4
	exitTimeout     = 124
	exitInterrupted = 130
)

// usageError is a mistake in the command line: nothing was contacted.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// onUsageError makes urfave/cli's complaints about the command line
// usage errors (exit 2), as every command's OnUsageError.
func onUsageError(c *cli.Context, err error, isSubcommand bool) error {
	return &usageError{err: err}
}

func usageErrorf(format string, a ...any) error {
	return &usageError{err: fmt.Errorf(format, a...)}
}

// lockedError says another run holds the destination's lock.
type lockedError struct {
	path string
	pid  string
}

func (e *lockedError) Error() string {
	holder := "another zrep run"
	if e.pid != "" {
		holder = "zrep pid " + e.pid
	}
	return fmt.Sprintf("%s holds the lock %s for this destination; wait for it to finish", holder, e.path)
}

// exitError ends zrep with a given status. With a nil err the outcome was
// already printed (the Plan or the Report).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// Causes of a cancelled run, told apart for the exit status.
var (
	errInterrupted = errors.New("interrupted by signal")
	errTimeout     = errors.New("--timeout expired")
)

// exitCode maps an action's error to the exit status of SPEC section 5.
func exitCode(err error) int {
	var (
		ue *usageError
		le *lockedError
		ee *exitError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &le):
		return exitLocked
	case errors.Is(err, errInterrupted):
		return exitInterrupted
	case errors.Is(err, errTimeout):
		return exitTimeout
	}
	// Errors from flag parsing that urfave/cli does not route through
	// OnUsageError (a malformed environment variable, say) come before any
	// action ran.
	return exitUsage
}

// cancelledOr is the exit of a run whose context a signal (130) or
// --timeout (124) ended, and err otherwise.
func cancelledOr(ctx context.Context, err error) error {
	switch context.Cause(ctx) {
	case errTimeout:
		return &exitError{code: exitTimeout, err: err}
	case errInterrupted:
		return &exitError{code: exitInterrupted, err: err}
	}
	return err
}

// cancelledAs is the error of a command that failed with err on the way:
// the cause of its context (130, 124) if a signal or --timeout ended it,
// else code with err, both said to be what failed.
func cancelledAs(ctx context.Context, what string, code int, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		return &exitError{code: exitCode(cause), err: fmt.Errorf("%s: %w", what, cause)}
	}
	return &exitError{code: code, err: err}
}
