package command

import (
	"errors"
	"flag"
	"fmt"
)

// The exit statuses of every program.
const (
	ExitOK      = 0 // done, or -h
	ExitFailure = 1 // a runtime failure
	ExitUsage   = 2 // a usage or configuration error
)

// UsageError is an error the user fixes by changing a flag, an argument or
// a file: a program exits 2 for it.
type UsageError struct {
	Err error
}

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a *UsageError with the message fmt.Errorf would make
// (%w wraps as usual).
func Usagef(format string, a ...any) error {
	return &UsageError{Err: fmt.Errorf(format, a...)}
}

// Usage marks err as a usage or configuration error; nil stays nil.
func Usage(err error) error {
	var u *UsageError
	if err == nil || errors.As(err, &u) {
		return err
	}
	return &UsageError{Err: err}
}

// StatusError is a failure with an exit status of its own, 3 or more,
// which the program documents in its Help (More): backup exits 3 when
// its backups were stored but a notification failed.
type StatusError struct {
	Status int
	Err    error
}

func (e *StatusError) Error() string { return e.Err.Error() }
func (e *StatusError) Unwrap() error { return e.Err }

// ExitCode is the exit status for err: 0 for nil and flag.ErrHelp, 2 when
// err is or wraps a *UsageError, a *StatusError's own status, 1 otherwise.
func ExitCode(err error) int {
	var u *UsageError
	var s *StatusError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &u):
		return ExitUsage
	case errors.As(err, &s) && s.Status > ExitUsage:
		return s.Status
	default:
		return ExitFailure
	}
}
