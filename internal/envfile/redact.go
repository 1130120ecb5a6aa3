package envfile

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
)

// Redacted is what Redact and (*File).Redacted print instead of a secret.
const Redacted = "[redacted]"

var secretWords = []string{"PASS", "SECRET", "KEY", "TOKEN", "PRIVATE", "CREDENTIAL", "SALT", "WEBHOOK"}

// IsSecret reports whether the value of key must not be printed: keys
// holding PASS, SECRET, KEY, TOKEN, PRIVATE, CREDENTIAL, SALT or WEBHOOK,
// in any case, such as DB_PASS, AWS_SECRET_ACCESS_KEY, OTP_SECRET,
// VAPID_PRIVATE_KEY, SECRET_KEY_BASE or SLACK_WEBHOOK_URL (a webhook's URL
// is its credential). It errs on the side of hiding.
func IsSecret(key string) bool {
	k := strings.ToUpper(key)
	for _, w := range secretWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

var (
	// urlUserinfo finds the password of scheme://user:password@host.
	urlUserinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^/?#@\s:]*:)([^/?#\s]*)(@)`)
	// urlSecretParam finds ?password=... and the like.
	urlSecretParam = regexp.MustCompile(`(?i)([?&][^=&#\s]*(?:pass|secret|token|key)[^=&#\s]*=)([^&#\s]*)`)
)

// Redact returns value ready to print: Redacted for a secret key (see
// IsSecret) and a non-empty value; otherwise value with the password of
// any URL in it (postgres://user:password@host, ?password=...) replaced
// by Redacted.
func Redact(key, value string) string {
	if IsSecret(key) {
		if value == "" {
			return ""
		}
		return Redacted
	}
	return redactURLs(value)
}

func redactURLs(s string) string {
	s = urlUserinfo.ReplaceAllString(s, "${1}"+Redacted+"${3}")
	return urlSecretParam.ReplaceAllString(s, "${1}"+Redacted)
}

// sensitive reports whether any of values must not be printed under key.
func sensitive(key string, values ...string) bool {
	for _, v := range values {
		if Redact(key, v) != v {
			return true
		}
	}
	return false
}

// commentAssignment finds "# KEY=value" in a comment line.
var commentAssignment = regexp.MustCompile(`^([\t\v\f ]*#+[\t\v\f ]*(?:export[\t\v\f ]+)?([\w.]+)[\t\v\f ]*(?:=|:[\t\v\f ]))(.*)$`)

// skippedAssignment finds the key and value of a line that Ruby dotenv
// skips, such as "DB-PASS=x", "DB_PASS:x" or "DB_PASS x".
var skippedAssignment = regexp.MustCompile(`^([\t\v\f ]*(?:export[\t\v\f ]+)?([^\s=:#]+)[\t\v\f ]*[=:\t\v\f ][\t\v\f ]*)(.*)$`)

// Redacted returns a copy of the file for printing. The value of each
// secret key (see IsSecret), with the rest of its lines, becomes Redacted,
// as node dotenv reads the value too; so do secret values in
// commented-out assignments such as "# DB_PASS=old", the rest of a
// skipped line that names a secret ("DB-PASS=x", or the whole line when
// it names one elsewhere) and URL passwords anywhere (see Redact). Keys,
// other values and comments are kept.
func (f *File) Redacted() []byte {
	type hide struct{ from, to int } // normalized offsets
	var hides []hide
	covered := map[int]bool{} // normalized line starts that hold entries
	for _, e := range f.entries {
		sp := e.span
		for l := f.scan.lineOf(sp.start); l <= f.scan.lineOf(max(sp.end-1, sp.start)); l++ {
			covered[f.scan.lines[l-1]] = true
		}
		if !IsSecret(e.Key) || e.Raw == "" {
			continue
		}
		end := sp.end // a comment after a secret may hold an old one
		if end > sp.valStart && f.scan.norm[end-1] == '\n' {
			end--
		}
		hides = append(hides, hide{sp.valStart, end})
	}
	for _, m := range f.nodeSpans {
		if IsSecret(m.key) && m.valEnd > m.valStart {
			hides = append(hides, hide{m.valStart, m.valEnd})
		}
	}
	for _, start := range f.scan.lines {
		if covered[start] || start >= len(f.scan.norm) {
			continue
		}
		end := len(f.scan.norm)
		if i := bytes.IndexByte(f.scan.norm[start:], '\n'); i >= 0 {
			end = start + i
		}
		line := string(f.scan.norm[start:end])
		if m := commentAssignment.FindStringSubmatchIndex(line); m != nil {
			if IsSecret(line[m[4]:m[5]]) && m[6] < m[7] {
				hides = append(hides, hide{start + m[6], end})
			}
			continue
		}
		if strings.HasPrefix(strings.TrimLeft(line, "\t\v\f "), "#") || !IsSecret(line) {
			continue
		}
		if m := skippedAssignment.FindStringSubmatchIndex(line); m != nil && IsSecret(line[m[4]:m[5]]) {
			if m[6] < m[7] {
				hides = append(hides, hide{start + m[6], end})
			}
			continue
		}
		lead := len(line) - len(strings.TrimLeft(line, "\t\v\f "))
		hides = append(hides, hide{start + lead, end})
	}
	slices.SortFunc(hides, func(a, b hide) int { return a.from - b.from })
	var edits []edit
	for _, h := range hides {
		if n := len(edits); n > 0 && f.scan.pos[h.from] <= edits[n-1].to {
			edits[n-1].to = max(edits[n-1].to, f.scan.pos[h.to])
			continue
		}
		edits = append(edits, edit{f.scan.pos[h.from], f.scan.pos[h.to], Redacted})
	}
	return []byte(redactURLs(string(applyEdits(f.data, edits))))
}
