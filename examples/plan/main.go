// Command plan prints deployment plans for a Mastodon instance, one
// subcommand per tier:
//
//	plan sidekiq                       the seed's Sidekiq layout (Scotty and Decker)
//	plan sidekiq -budget 40            the seed's nodes sized to 40 DB connections
//	plan sidekiq -node Scotty:2:4G -node Decker:2:4G -node Riker:4:8G -budget 90 -json
//
// `plan SUBCOMMAND -h` explains a subcommand's flags. Usage and
// configuration errors exit 2, runtime failures 1.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
)

// subcommand is one tier's planner; each lives in its own file and
// registers itself from init.
type subcommand struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var subcommands = map[string]subcommand{}

func register(name, summary string, run func(args []string, stdout, stderr io.Writer) int) {
	subcommands[name] = subcommand{summary, run}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: plan SUBCOMMAND [flags]\n\nPrints deployment plans for a Mastodon instance. Subcommands:")
	names := make([]string, 0, len(subcommands))
	for n := range subcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, subcommands[n].summary)
	}
	fmt.Fprintln(w, "\n`plan SUBCOMMAND -h` lists its flags.")
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return 0
	}
	sc, ok := subcommands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "plan: unknown subcommand %q\n", args[0])
		usage(stderr)
		return 2
	}
	return sc.run(args[1:], stdout, stderr)
}

// parseFlags parses a subcommand's flags; done means return code now
// (0 after -h, 2 for a bad flag or a stray argument).
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, true
		}
		return 2, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return 2, true
	}
	return 0, false
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }
