// Package envfile reads Mastodon's .env.production exactly as Rails and
// Sidekiq read it, reports every value that the streaming server reads
// differently, and changes single values without touching the rest of the
// file: Read it, run Lint, fix what it finds with Set, then Save. SetAll
// sets several keys as one unit and returns the changes, printable with
// secrets redacted.
//
// Mastodon reads the same file with two parsers. Rails and Sidekiq use Ruby
// dotenv (3.x since Mastodon 4.3, 2.8 before); the streaming server uses
// node dotenv (16.5, without dotenv-expand). They agree only on
// single-quoted values:
//
//	written              Ruby dotenv 3 (Rails, Sidekiq)     node dotenv (streaming)
//	KEY='a$b\n'          a$b\n                              a$b\n
//	KEY=a$b\n            a, then the value of bn            a$b\n
//	KEY="a$b\n"          a, the value of b, \n              a$b and a line break
//	KEY=a\$b             a$b                                a\$b
//	KEY=$(date)          the output of date (it runs!)      $(date)
//	KEY=a#b              a                                  a
//
// In Ruby dotenv, unquoted and double-quoted values first lose their
// backslashes (except in \$): a$b\n becomes a$bn, which names the variable
// bn. Then $NAME and ${NAME} expand from earlier lines or the environment
// (a name that is set nowhere expands to nothing), and $(command) runs
// through the shell; \n in double quotes stays the two characters \ and n
// unless DOTENV_LINEBREAK_MODE=legacy. This package follows those rules
// but runs no command unless WithCommands says how: Entry.Value then keeps
// $(command) as written and Entry.Commands lists it. Both readers let a
// variable that is already set in the process environment (for example by
// a systemd Environment= line) win over the file, in $NAME too; Get and
// Map report the file.
//
// The rules are those of the Ruby dotenv release in use: Read takes it from
// the Gemfile.lock beside the file, WithDotenv sets it otherwise, and 3.2
// is the default. The releases read these lines differently (each checked
// against the real gem):
//
//	written                                  3.2          3.1          2.8          2.4
//	A=1, then a line A                       A=""         A=""         A=1          A=1
//	K="a\nb"                                 a\nb         a\nb         a, line break, b (both)
//	K=1, then export K=                      K=1          K=1          K=""         K=""
//	export K, then K=1                       refused      refused      read         refused
//	export K, K set only in the environment  read         read         refused      refused
//	export A # note (A set)                  read         read         refused      refused
//	B=b, then CMD=$B$(echo a)                CMD=""       CMD=ba       CMD=ba       CMD=ba
//	X='$(echo a)', then Y=$X                 Y=$(echo a)  Y=a          Y=a          Y=a
//	K=a\b                                    ab           ab           ab           a\b
//	K="a<line break>b"                       a, line break, b (3.x and 2.8)         K="a
//	$DOTENV_LINEBREAK_MODE, set in the file and the environment: the file's value
//	in 3.x, the environment's in 2.x
//
// Dotenv 3.2 runs a line's commands before it expands its variables, so
// that in $B$(echo a) the variable's name runs into the command's output
// (it reads Ba); 3.1 and 2.x expand first, so a $( that a variable brings
// in runs too. Dotenv 3 does not read the line of a key that the
// environment sets (nor run its commands); 2.x reads every line.
//
// Parse refuses a file only where Ruby dotenv refuses to load it: invalid
// UTF-8, and an "export KEY" check that fails (the rows above). Every line
// that Ruby dotenv reads, Parse reads the same way, however odd:
// SMTP_FROM_ADDRESS="Mastodon" <notifications@example.com> is the whole
// text, quotes included, for Ruby and node alike. Lint reports the lines
// Ruby skips (not KEY=value, an invalid key) and the values node reads
// differently. No error and no Finding contains a secret value; IsSecret,
// Redact and (*File).Redacted help to print the rest.
package envfile
