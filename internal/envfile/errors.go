package envfile

import (
	"errors"
	"fmt"
)

// ParseError reports a line for which Ruby dotenv refuses to load the
// file, or a command (see WithCommands) that failed. Its message has the
// form "file:line: reason" and never contains a value.
type ParseError struct {
	File   string // the name given to Parse, or the path given to Read
	Line   int    // 1-based
	Reason string
	Err    error // the command's error, if that is what failed
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason)
}

// Unwrap returns Err.
func (e *ParseError) Unwrap() error { return e.Err }

var (
	// ErrInvalidKey is returned by Set for a key that Ruby dotenv or node
	// dotenv cannot read: keys are made of ASCII letters, digits, '_' and '.'.
	ErrInvalidKey = errors.New("invalid key")

	// ErrNotPortable is returned by Set for a value that no quoting makes
	// Ruby dotenv and node dotenv read the same, such as a value holding a
	// single quote together with a backslash or a '$', or a carriage return.
	ErrNotPortable = errors.New("no quoting makes Ruby dotenv and node dotenv read this value the same")

	// errChangesOthers is returned by Set and Delete when the edited file
	// would read differently on lines other than the edited ones.
	errChangesOthers = errors.New("the edit would change how other lines are read; edit the file by hand")
)
