package envfile

import (
	"bytes"
	"regexp"
	"strings"
)

// Redacted is what Redact and (*File).Redacted print instead of a secret.
const Redacted = "[redacted]"

var secretWords = []string{"PASS", "SECRET", "KEY", "TOKEN", "PRIVATE", "CREDENTIAL", "SALT"}

// IsSecret reports whether the value of key must not be printed: keys
// holding PASS, SECRET, KEY, TOKEN, PRIVATE, CREDENTIAL or SALT, in any
// case, such as DB_PASS, AWS_SECRET_ACCESS_KEY, OTP_SECRET,
// VAPID_PRIVATE_KEY or SECRET_KEY_BASE. It errs on the side of hiding.
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

// Redacted returns a copy of the file for printing. The value of each
// secret key (see IsSecret), with the rest of its lines, becomes Redacted;
// so do secret values in commented-out assignments such as "# DB_PASS=old"
// and URL passwords anywhere (see Redact). Keys, other values and comments
// are kept.
func (f *File) Redacted() []byte {
	var edits []edit
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
		edits = append(edits, edit{f.scan.pos[sp.valStart], f.scan.pos[end], Redacted})
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
		if m := commentAssignment.FindStringSubmatchIndex(line); m != nil && IsSecret(line[m[4]:m[5]]) && m[6] < m[7] {
			edits = append(edits, edit{f.scan.pos[start+m[6]], f.scan.pos[end], Redacted})
		}
	}
	return []byte(redactURLs(string(applyEdits(f.data, edits))))
}
