package command

import (
	"fmt"

	"github.com/fediops/fediops"
)

// ReadEnv reads Mastodon's settings from path with fediops.ReadEnv (the
// process environment wins, as in Rails; "" reads the environment alone)
// and prints each of its lint findings on Stderr as
// "<name>: warning: <finding>": a value that Rails and the streaming server
// read differently, named with its fix and never with its value. A file
// that is missing or that Ruby dotenv would misread is a *UsageError.
func (p *Program) ReadEnv(path string, opts ...fediops.EnvOption) (*fediops.Env, []fediops.Finding, error) {
	env, err := fediops.ReadEnv(path, opts...)
	if err != nil {
		return nil, nil, Usage(err)
	}
	findings := env.Lint()
	for _, f := range findings {
		p.Warnf("%s", f)
	}
	return env, findings, nil
}

// Warnf prints "<name>: warning: <message>" on Stderr: something the user
// should fix that does not stop the program.
func (p *Program) Warnf(format string, a ...any) {
	fmt.Fprintf(p.Stderr, "%s: warning: %s\n", p.Name, fmt.Sprintf(format, a...))
}
