package command

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/term"
)

// Program is one run of a program: its name, which prefixes its errors and
// warnings, and its output streams.
type Program struct {
	Name   string
	Stdout io.Writer
	Stderr io.Writer
	// Terminal says Stderr is a terminal: logs at info, progress shown.
	Terminal bool
}

// Main runs a program: run gets a context that the first SIGINT or SIGTERM
// cancels (a second one ends the process) and the arguments after the
// program's name. Main then prints run's error once as "<name>: <error>"
// on stderr and exits with ExitCode's status.
func Main(name string, run func(ctx context.Context, p *Program, args []string) error) {
	p := &Program{Name: name, Stdout: os.Stdout, Stderr: os.Stderr, Terminal: term.IsTerminal(int(os.Stderr.Fd()))}
	ctx, stop := SignalContext(context.Background())
	err := run(ctx, p, os.Args[1:])
	stop()
	os.Exit(p.Exit(err))
}

// SignalContext returns a context that the first SIGINT or SIGTERM
// cancels. The handler is then removed, so that a second signal ends the
// process the default way while the program is still shutting down.
func SignalContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop)
	return ctx, stop
}

// Exit prints err, unless it is nil or flag.ErrHelp, as "<name>: <err>" on
// Stderr and returns the exit status for it.
func (p *Program) Exit(err error) int {
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(p.Stderr, "%s: %v\n", p.Name, err)
	}
	return ExitCode(err)
}

// Help is a command's -h text. Parse prints it with the flags between
// About and Env, each flag with its default:
//
//	usage: <Usage>
//
//	<About>
//
//	Flags:
//	  ...
//	Environment:
//	  NAME  what it is
//	Exit status:
//	  0  <Exit[0], else "done">
//	  1  <Exit[1], else "a runtime failure">
//	  2  <Exit[2], else "a usage or configuration error">
type Help struct {
	Usage string    // the usage line(s), without "usage: "
	About string    // what the command does
	Env   []Var     // the environment variables it reads; none: "none"
	Exit  [3]string // what exit statuses 0, 1 and 2 mean; "" for the default
	More  []string  // what exit statuses 3, 4, ... mean (a *StatusError's)
}

// Var is an environment variable a command reads.
type Var struct {
	Name  string
	About string
}

var defaultExit = [3]string{
	"done",
	"a runtime failure (a server or API that fails or does not answer)",
	"a usage or configuration error, found before any network call where it can be",
}

// Write prints the help text with fs's flags (nil: none) to w.
func (h Help) Write(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: %s\n\n%s\n", strings.TrimSpace(h.Usage), strings.TrimSpace(h.About))
	if fs != nil {
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprint(w, "\nFlags:\n")
			out := fs.Output()
			fs.SetOutput(w)
			fs.PrintDefaults()
			fs.SetOutput(out)
		}
	}
	fmt.Fprint(w, "\nEnvironment:\n")
	if len(h.Env) == 0 {
		fmt.Fprint(w, "  none\n")
	}
	width := 0
	for _, v := range h.Env {
		width = max(width, len(v.Name))
	}
	for _, v := range h.Env {
		fmt.Fprintf(w, "  %-*s  %s\n", width, v.Name, v.About)
	}
	fmt.Fprint(w, "\nExit status:\n")
	for code, text := range h.Exit {
		if text == "" {
			text = defaultExit[code]
		}
		fmt.Fprintf(w, "  %d  %s\n", code, text)
	}
	for i, text := range h.More {
		fmt.Fprintf(w, "  %d  %s\n", len(h.Exit)+i, text)
	}
}

// Parse parses args into fs. -h or -help prints h with fs's flags on
// Stdout and returns flag.ErrHelp (exit status 0). A flag that is not
// defined, a value its flag refuses and an argument left after the flags
// are each a *UsageError.
func (p *Program) Parse(fs *flag.FlagSet, args []string, h Help) error {
	fs.SetOutput(io.Discard) // errors are returned, help goes to Stdout
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		h.Write(p.Stdout, fs)
		return flag.ErrHelp
	case err != nil:
		return Usagef("%v (%s -h lists the flags)", err, fs.Name())
	case fs.NArg() > 0:
		return Usagef("unexpected argument %q (%s takes flags only)", fs.Arg(0), fs.Name())
	}
	return nil
}

// Command is one subcommand of a program.
type Command struct {
	Name    string // as typed after the program's name; "" for the default
	Summary string // one line for the program's -h
	Run     func(ctx context.Context, p *Program, args []string) error
}

// Dispatch runs the command args[0] names with the arguments after it.
// The command named "", if any, runs when args is empty or starts with a
// flag (-h included: its help names the others). Otherwise -h, -help,
// --help and help print about and the list of commands on Stdout and
// return flag.ErrHelp; no command or an unknown one is a *UsageError
// naming the commands.
func (p *Program) Dispatch(ctx context.Context, about string, cmds []Command, args []string) error {
	byName := map[string]Command{}
	var names []string
	for _, c := range cmds {
		byName[c.Name] = c
		if c.Name != "" {
			names = append(names, c.Name)
		}
	}
	sort.Strings(names)
	first := ""
	if len(args) > 0 {
		first = args[0]
	}
	if c, ok := byName[""]; ok && (first == "" || strings.HasPrefix(first, "-")) {
		return c.Run(ctx, p, args)
	}
	if isHelp(first) {
		fmt.Fprintf(p.Stdout, "%s\n\nCommands:\n", strings.TrimSpace(about))
		for _, c := range cmds {
			name := c.Name
			if name == "" {
				name = "(none)"
			}
			fmt.Fprintf(p.Stdout, "  %-12s %s\n", name, c.Summary)
		}
		fmt.Fprintf(p.Stdout, "\n`%s COMMAND -h` explains a command: its flags, environment and exit statuses.\n", p.Name)
		return flag.ErrHelp
	}
	if c, ok := byName[first]; ok && first != "" {
		return c.Run(ctx, p, args[1:])
	}
	if first == "" {
		return Usagef("no command: want one of %s (%s -h)", strings.Join(names, ", "), p.Name)
	}
	return Usagef("unknown command %q: want one of %s (%s -h)", first, strings.Join(names, ", "), p.Name)
}

func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}
