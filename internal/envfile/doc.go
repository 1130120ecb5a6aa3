// Package envfile reads Mastodon's .env.production exactly as Rails and
// Sidekiq read it, reports every value that the streaming server reads
// differently, and changes single values without touching the rest of the
// file: Read it, run Lint, fix what it finds with Set, then Save. SetAll
// sets several keys as one unit and returns the changes, printable with
// secrets redacted.
//
// Mastodon reads the same file with two parsers. Rails and Sidekiq use Ruby
// dotenv (3.1/3.2); the streaming server uses node dotenv (16.5, without
// dotenv-expand). They agree only on single-quoted values:
//
//	written              Ruby dotenv (Rails, Sidekiq)     node dotenv (streaming)
//	KEY='a$b\n'          a$b\n                            a$b\n
//	KEY=a$b\n            a, the value of b, n             a$b\n
//	KEY="a$b\n"          a, the value of b, \n            a$b and a line break
//	KEY=a\$b             a$b                              a\$b
//	KEY=$(date)          the output of date (it runs!)    $(date)
//	KEY=a#b              a                                a
//
// In Ruby dotenv, unquoted and double-quoted values lose their backslashes
// (except in \$), expand $NAME and ${NAME} from earlier lines or the
// environment (a name that is set nowhere expands to nothing), and run
// $(command) through the shell; \n in double quotes stays the two
// characters \ and n unless DOTENV_LINEBREAK_MODE=legacy. This package
// follows those rules but never runs a command: Entry.Value keeps
// $(command) as written and Entry.Commands lists it. Both readers let a
// variable that is already set in the process environment (for example by
// a systemd Environment= line) win over the file; Get and Map report the
// file.
//
// The rules are those of Ruby dotenv 3.1.7 to 3.2.0. Older 3.1 releases
// differ in corners: 3.1.0 to 3.1.4 ignore a key
// without '=', 3.1.5 and 3.1.6 drop blank lines inside quoted values, and
// every 3.1 release expands variables before commands, so a variable
// holding $(...) runs it.
//
// Parse is stricter than both readers: a line that they would silently
// skip or misread, such as an invalid key or an unterminated quote, is a
// *ParseError of the form "file:line: reason". No error and no Finding
// contains a secret value; IsSecret, Redact and (*File).Redacted help to
// print the rest.
package envfile
