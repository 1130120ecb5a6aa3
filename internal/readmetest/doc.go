// Package readmetest keeps README.md true: run `go test ./internal/readmetest`
// and every `$ command` line of the README's code blocks is run, with the
// programs as `go build` makes them, against the stack `demo -serve` keeps
// up (the DigitalOcean, Spaces and B2 stand-ins included), and the shape of
// what each prints is compared with the lines the README shows under it.
//
// The shape is the line structure and the words: timings, sizes, numbers,
// ports, hexadecimal ids and the directories of paths are not compared,
// a line "..." in the README stands for any number of lines, and a line
// ending in "..." for any line that begins so. A command must exit 0 (show
// a failure with `; echo $?`). Updating an excerpt is all a changed output
// needs; the test's failure message shows what the program printed.
//
// Each section (heading) runs in a directory of its own holding copies of
// the stack's files under the names the text uses: .env.production (the
// stack's; the seed document's under "### provision"), seed.env.production,
// broken.conf (a stunnel file naming a CA file that does not exist on
// line 5 and an option stunnel does not have on line 6),
// and /etc/... re-rooted there (/etc/stunnel/redis.conf is the stack's
// stunnel file). Its environment is what `. stack.env` exports (the
// DigitalOcean stand-in's DIGITALOCEAN_TOKEN and DIGITALOCEAN_API_URL, the
// STACK_* addresses); `cd`, `.` and `export` carry over to the next
// command of the section, as in one shell.
package readmetest
