package envfile

import (
	"fmt"
	"strconv"
)

// Setting is a key and the value SetAll is to give it.
type Setting struct {
	Key, Value string
}

// Change is one key that SetAll changed. Its String and GoString methods
// redact secrets, so a Change can be printed; its fields are not redacted.
type Change struct {
	Key   string
	Value string // the new value
	Was   string // the value Rails read before, when Had
	Had   bool   // the key was set before
}

// String returns `set KEY=value (was "old")`, or `(was unset)`, with both
// values through Redact.
func (c Change) String() string {
	was := "unset"
	switch {
	case c.Had && c.Was == c.Value:
		was = "the same for Rails, but not for the streaming server"
	case c.Had:
		was = strconv.Quote(Redact(c.Key, c.Was))
	}
	return fmt.Sprintf("set %s=%s (was %s)", c.Key, Redact(c.Key, c.Value), was)
}

// GoString is like String, so that %#v does not print a secret either.
func (c Change) GoString() string { return "envfile.Change{" + c.String() + "}" }

// SetAll gives each key its value with Set, in order, skipping keys that
// Rails and the streaming server both read as that value already, and
// returns what it changed. It is all or nothing: when one Set fails, f is
// left as it was and the error names the key. Like Set, it only changes
// f: call Save or WriteFile to store it.
func (f *File) SetAll(settings ...Setting) ([]Change, error) {
	before := *f // Set replaces *f as a whole and never edits its parts in place
	var changes []Change
	for _, s := range settings {
		e, had := f.Lookup(s.Key)
		if had && e.Value == s.Value && e.NodeValue == s.Value && e.why.nodeRead {
			continue
		}
		if err := f.Set(s.Key, s.Value); err != nil {
			*f = before
			return nil, err
		}
		changes = append(changes, Change{Key: s.Key, Value: s.Value, Was: e.Value, Had: had})
	}
	return changes, nil
}
