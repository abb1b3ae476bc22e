package cliconf

import (
	"errors"
	"flag"
)

// UsageError is a command line the program does not understand: an unknown
// command or flag, a missing argument. Programs exit 2 for it, as POSIX
// utilities and Go's flag package do, and 1 for failures while running.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usage marks err as a usage error (nil stays nil).
func Usage(err error) error {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return &UsageError{Err: err}
}

// ExitCode is the process exit status for the error run returned: 0 for
// none or -h, 2 for a usage error, 1 for anything else.
func ExitCode(err error) int {
	var u *UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &u):
		return 2
	}
	return 1
}
