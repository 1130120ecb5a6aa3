// Package envfile reads Mastodon's .env.production exactly as Rails and
// Sidekiq read it, reports every value that the streaming server reads
// differently, and changes single values without touching the rest of the
// file: Read it, run Lint, fix what it finds with Set, then Save.
//
// Mastodon reads the same file with two parsers. Rails and Sidekiq use Ruby
// dotenv (3.1/3.2); the streaming server uses node dotenv (16.5, without
// dotenv-expand). They agree only on single-quoted values:
//
//	                      Ruby dotenv (Rails, Sidekiq)   node dotenv (streaming)
//	KEY='a$b\n'           a$b\n                          a$b\n
//	KEY=a$b\n             a + value of $b + n            a$b\n
//	KEY="a$b\n"           a + value of $b + \n           a$b + line break
//	KEY=a\$b              a$b                            a\$b
//	KEY=$(date)           output of date (runs it!)      $(date)
//	KEY=a#b               a                              a
//
// In Ruby dotenv, unquoted and double-quoted values lose their backslashes
// (except in \$), expand $NAME and ${NAME} from earlier lines or the
// environment (unknown names become empty), and run $(command) through the
// shell; \n in double quotes stays the two characters \ and n unless
// DOTENV_LINEBREAK_MODE=legacy. This package follows those rules but never
// runs a command: Entry.Value keeps $(command) as written and
// Entry.Commands lists it. Both readers let a variable already set in the
// process environment win over the file; Get and Map report the file.
//
// Parse is stricter than both readers: a line they would silently skip or
// misread (an invalid key, an unterminated quote) is a *ParseError of the
// form "file:line: reason". No error and no Finding contains a secret
// value; Redact, IsSecret and (*File).Redacted help to print the rest.
package envfile
