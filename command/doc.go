// Package command is what fediops's programs share: start one with
// Main(name, run), parse each subcommand's flags with Program.Parse and a
// Help, and return a *UsageError (Usagef, Usage) for anything the user must
// fix.
//
// Every program has one shape, the one litestream's cmd/ has: one file per
// subcommand with its own flag set and -h text (what it does, its flags
// with their defaults, the environment variables it reads and its exit
// codes), every local setting checked before the first network call, and
// one exit rule, applied once by Main:
//
//	0  done; also -h
//	1  a runtime failure (a server that does not answer, a failed check)
//	2  a usage or configuration error (a bad flag or argument, a missing or
//	   malformed file, a bad CA, a port out of range, a listener that is
//	   not loopback, a plan over budget)
//	3+ a status of the program's own (a *StatusError), named in its -h:
//	   backup's 3 is "the backups were stored, a notification failed"
//
// Main prints the error once, prefixed with the program's name
// ("provision: -cluster is required"). The context it hands to run is
// cancelled by the first SIGINT or SIGTERM; a second one ends the process.
//
// Program.Logger gives the one log format: slog text lines on stderr, at
// info on a terminal and at warn elsewhere (a cron run that succeeds
// prints no log line), at debug with -v; it also routes go-redis's own
// messages into slog at debug. Program.ReadEnv reads Mastodon's
// .env.production with fediops.ReadEnv and prints each lint finding as
// "<program>: warning: <finding>". CheckListen keeps listeners on loopback
// unless a flag allows more; CheckCredentialURL keeps a URL that carries a
// token or key on https unless its host is loopback.
//
// Domain packages (pgpool, backup, ...) never import this package: flags,
// exit statuses and signals belong to the programs.
package command
