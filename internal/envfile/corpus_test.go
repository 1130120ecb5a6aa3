package envfile

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// The differential test's corpus: .env.production files as admins write
// them, generated from a fixed seed. Most lines are Mastodon's settings
// written plainly; each file also holds a few lines of the kinds that
// readers take differently (the classes below), so that every rule of the
// four readers is exercised many times over.

// corpusFile is one generated file.
type corpusFile struct {
	name  string
	data  []byte
	env   map[string]string // the process environment Rails starts with
	lines []lineClass       // what each generated construct is, by first line
}

// lineClass names the construct that starts at a line.
type lineClass struct {
	line  int
	class string
	key   string // the key it assigns, if any
}

// classOf returns the class of the construct covering line, "plain" when
// the line is an ordinary setting.
func (c *corpusFile) classOf(line int) string {
	class := "file"
	for _, l := range c.lines {
		if l.line > line {
			break
		}
		class = l.class
	}
	return class
}

// classOfKey returns the class of the last construct that assigned key.
func (c *corpusFile) classOfKey(key string) string {
	class := "plain"
	for _, l := range c.lines {
		if l.key == key {
			class = l.class
		}
	}
	return class
}

const (
	corpusSeed  = 20261203
	corpusFiles = 6000
)

// genCorpus returns n files generated from seed.
func genCorpus(seed uint64, n int) []*corpusFile {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	pools := &wordPools{r: rand.New(rand.NewPCG(seed, 1)), pools: map[string][]string{}}
	files := make([]*corpusFile, n)
	for i := range files {
		g := &fileGen{r: r, words: pools, env: map[string]string{}}
		files[i] = g.file(fmt.Sprintf("%05d.env", i))
	}
	return files
}

// corpusFingerprint identifies a corpus: the golden outputs hold the
// fingerprint of the corpus the gems read.
func corpusFingerprint(files []*corpusFile) string {
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%d\x00", f.name, len(f.data))
		h.Write(f.data)
		keys := make([]string, 0, len(f.env))
		for k := range f.env {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintf(h, "\x00%s=%s", k, f.env[k])
		}
		h.Write([]byte{0xff})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// fileGen builds one file.
type fileGen struct {
	r     *rand.Rand
	words *wordPools
	b     strings.Builder
	line  int // lines written so far
	lines []lineClass
	keys  []string // keys assigned so far, in order
	env   map[string]string
}

func (g *fileGen) pick(s ...string) string { return s[g.r.IntN(len(s))] }
func (g *fileGen) chance(p float64) bool   { return g.r.Float64() < p }

// emit writes text (one or more lines, each ending in \n) as a construct
// of class that assigns key.
func (g *fileGen) emit(class, key, text string) {
	g.lines = append(g.lines, lineClass{line: g.line + 1, class: class, key: key})
	g.b.WriteString(text)
	g.line += strings.Count(text, "\n")
	if key != "" && !slices.Contains(g.keys, key) {
		g.keys = append(g.keys, key)
	}
}

// setting is one of Mastodon's settings with a plausible value.
type setting struct {
	key   string
	value func(g *fileGen) string
}

func lit(v ...string) func(*fileGen) string {
	return func(g *fileGen) string { return g.pick(v...) }
}

var domains = []string{"mastodon.example", "social.example.org", "vmst.io", "toot.cafe.example", "fedi.example.net"}

func (g *fileGen) domain() string { return g.pick(domains...) }

func (g *fileGen) hex(n int) string { return g.word("0123456789abcdef", n) }

// word returns one of a few random strings of n runes from alphabet: the
// same few for every file, so that the golden outputs compress well.
func (g *fileGen) word(alphabet string, n int) string {
	key := fmt.Sprint(alphabet, n)
	pool, ok := g.words.pools[key]
	if !ok {
		a := []rune(alphabet)
		for range 6 {
			b := make([]rune, n)
			for i := range b {
				b[i] = a[g.words.r.IntN(len(a))]
			}
			pool = append(pool, string(b))
		}
		g.words.pools[key] = pool
	}
	return pool[g.r.IntN(len(pool))]
}

// wordPools holds the strings word picks from, made in the order the
// generator first asks for them, which the seed fixes.
type wordPools struct {
	r     *rand.Rand
	pools map[string][]string
}

const (
	alnum   = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b64url  = alnum + "-_"
	pwChars = alnum + "!@%^&*-_+=.,~"
)

// password returns a password without the characters readers disagree on;
// the classes below add those.
func (g *fileGen) password() string { return g.word(pwChars, 12+g.r.IntN(20)) }

var settings = []setting{
	{"LOCAL_DOMAIN", func(g *fileGen) string { return g.domain() }},
	{"WEB_DOMAIN", func(g *fileGen) string { return "www." + g.domain() }},
	{"SINGLE_USER_MODE", lit("false", "true")},
	{"SECRET_KEY_BASE", func(g *fileGen) string { return g.hex(128) }},
	{"OTP_SECRET", func(g *fileGen) string { return g.hex(128) }},
	{"VAPID_PRIVATE_KEY", func(g *fileGen) string { return g.word(b64url, 43) + "=" }},
	{"VAPID_PUBLIC_KEY", func(g *fileGen) string { return "B" + g.word(b64url, 86) + "=" }},
	{"DB_HOST", lit("localhost", "/var/run/postgresql", "db-postgresql-nyc3-12345-do-user-1-0.b.db.ondigitalocean.com", "10.0.0.5")},
	{"DB_PORT", lit("5432", "25060", "25061")},
	{"DB_NAME", lit("mastodon_production", "mastodon-pool", "defaultdb")},
	{"DB_USER", lit("mastodon", "doadmin", "the_mastodon_user")},
	{"DB_PASS", func(g *fileGen) string { return g.password() }},
	{"DB_SSLMODE", lit("require", "prefer", "verify-full", "disable")},
	{"DB_POOL", lit("5", "25", "40")},
	{"PREPARED_STATEMENTS", lit("false", "true")},
	{"REDIS_HOST", lit("localhost", "127.0.0.1", "db-redis-nyc3-1-do-user-1-0.b.db.ondigitalocean.com")},
	{"REDIS_PORT", lit("6379", "25061")},
	{"REDIS_PASSWORD", func(g *fileGen) string { return g.word(alnum, 32) }},
	{"REDIS_URL", func(g *fileGen) string {
		return "rediss://default:" + g.word(alnum, 24) + "@redis.internal:25061"
	}},
	{"ES_ENABLED", lit("false", "true")},
	{"ES_HOST", lit("localhost", "10.0.0.9")},
	{"ES_PORT", lit("9200")},
	{"S3_ENABLED", lit("true", "false")},
	{"S3_BUCKET", lit("files.mastodon.example", "ourbucketname", "media-bucket")},
	{"S3_REGION", lit("nyc3", "ams3", "us-east-1", "fra1")},
	{"S3_PROTOCOL", lit("https")},
	{"S3_HOSTNAME", lit("nyc3.digitaloceanspaces.com", "ams3.digitaloceanspaces.com")},
	{"S3_ENDPOINT", lit("https://nyc3.digitaloceanspaces.com", "https://ams3.digitaloceanspaces.com")},
	{"S3_ALIAS_HOST", func(g *fileGen) string { return "cdn." + g.domain() }},
	{"AWS_ACCESS_KEY_ID", func(g *fileGen) string { return "DO" + strings.ToUpper(g.word(alnum, 18)) }},
	{"AWS_SECRET_ACCESS_KEY", func(g *fileGen) string { return g.word(alnum+"/+", 43) }},
	{"SMTP_SERVER", lit("smtp.mailgun.org", "smtp.sendgrid.net", "email-smtp.eu-west-1.amazonaws.com")},
	{"SMTP_PORT", lit("587", "465", "2525")},
	{"SMTP_LOGIN", func(g *fileGen) string { return "postmaster@" + g.domain() }},
	{"SMTP_PASSWORD", func(g *fileGen) string { return g.password() }},
	{"SMTP_FROM_ADDRESS", func(g *fileGen) string { return "notifications@" + g.domain() }},
	{"SMTP_AUTH_METHOD", lit("plain", "login")},
	{"SMTP_OPENSSL_VERIFY_MODE", lit("peer", "none")},
	{"SMTP_ENABLE_STARTTLS", lit("auto", "always", "never")},
	{"STREAMING_API_BASE_URL", func(g *fileGen) string { return "wss://streaming." + g.domain() }},
	{"WEB_CONCURRENCY", lit("2", "3", "4")},
	{"MAX_THREADS", lit("5", "9", "10")},
	{"RAILS_ENV", lit("production")},
	{"NODE_ENV", lit("production")},
	{"RAILS_SERVE_STATIC_FILES", lit("true", "false")},
	{"RAILS_LOG_LEVEL", lit("warn", "info")},
	{"TRUSTED_PROXY_IP", lit("10.0.0.0/8", "127.0.0.1/8,10.0.0.0/8")},
	{"DEFAULT_LOCALE", lit("en", "de", "ja")},
	{"IP_RETENTION_PERIOD", lit("31556952")},
	{"SESSION_RETENTION_PERIOD", lit("31556952")},
	{"DEEPL_API_KEY", func(g *fileGen) string { return g.word(alnum, 36) + ":fx" }},
	{"NODE_EXTRA_CA_CERTS", lit("/path/to/certs/do-internal.crt", "/etc/ssl/do-ca.crt")},
	{"ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY", func(g *fileGen) string { return g.word(alnum, 32) }},
	{"ACTIVE_RECORD_ENCRYPTION_DETERMINISTIC_KEY", func(g *fileGen) string { return g.word(alnum, 32) }},
	{"ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT", func(g *fileGen) string { return g.word(alnum, 32) }},
	{"STATSD_ADDR", lit("localhost:9125")},
	{"MALLOC_ARENA_MAX", lit("2")},
}

// writeSetting writes key=value in one of the plain styles admins use.
// Every style here is read alike by all readers for values without
// special characters.
func (g *fileGen) writeSetting(key, value string) {
	var s string
	switch n := g.r.IntN(100); {
	case n < 55:
		s = key + "=" + value
	case n < 67:
		s = key + "='" + value + "'"
	case n < 79:
		s = key + `="` + value + `"`
	case n < 84:
		s = key + " = " + value
	case n < 88:
		s = "export " + key + "=" + value
	case n < 91:
		s = key + ": " + value
	case n < 94:
		s = "  " + key + "=" + value + "  "
	default:
		s = key + "=" + value + " # " + g.pick("set by the installer", "changed", "see docs", "TODO")
	}
	g.emit("plain", key, s+"\n")
}

// The classes of lines readers take differently, each with its weight.
var classes = []struct {
	name   string
	weight int
	write  func(g *fileGen)
}{
	{"dollar-in-value", 8, (*fileGen).dollarInValue},
	{"escaped-dollar", 3, (*fileGen).escapedDollar},
	{"var-ref", 8, (*fileGen).varRef},
	{"var-ref-env", 4, (*fileGen).varRefEnv},
	{"var-braces", 3, (*fileGen).varBraces},
	{"command", 5, (*fileGen).command},
	{"command-after-var", 2, (*fileGen).commandAfterVar},
	{"var-holding-command", 3, (*fileGen).varHoldingCommand},
	{"command-output-dollar", 1, (*fileGen).commandOutputDollar},
	{"backslash", 5, (*fileGen).backslash},
	{"dq-newline-escape", 5, (*fileGen).dqNewlineEscape},
	{"dq-escaped-quote", 3, (*fileGen).dqEscapedQuote},
	{"multiline-quoted", 5, (*fileGen).multilineQuoted},
	{"unterminated-quote", 3, (*fileGen).unterminatedQuote},
	{"text-after-quote", 5, (*fileGen).textAfterQuote},
	{"hash-cut", 4, (*fileGen).hashCut},
	{"bare-key", 3, (*fileGen).bareKey},
	{"export-check", 4, (*fileGen).exportCheck},
	{"export-empty", 2, (*fileGen).exportEmpty},
	{"invalid-key", 3, (*fileGen).invalidKey},
	{"colon-no-space", 2, (*fileGen).colonNoSpace},
	{"not-an-assignment", 3, (*fileGen).garbage},
	{"backtick", 2, (*fileGen).backtick},
	{"unicode-space", 2, (*fileGen).unicodeSpace},
	{"line-separator", 1, (*fileGen).lineSeparator},
	{"invalid-utf8", 1, (*fileGen).invalidUTF8},
	{"duplicate-key", 4, (*fileGen).duplicateKey},
	{"linebreak-mode", 2, (*fileGen).linebreakMode},
	{"empty-value", 3, (*fileGen).emptyValue},
	{"value-on-next-line", 1, (*fileGen).valueOnNextLine},
	{"backslash-before-close", 2, (*fileGen).backslashBeforeClose},
	{"env-overrides-key", 4, (*fileGen).envOverridesKey},
	{"lowercase-key", 1, (*fileGen).lowercaseKey},
	{"quote-in-value", 3, (*fileGen).quoteInValue},
}

var classWeights = func() int {
	n := 0
	for _, c := range classes {
		n += c.weight
	}
	return n
}()

func (g *fileGen) quirk() {
	n := g.r.IntN(classWeights)
	for _, c := range classes {
		if n < c.weight {
			c.write(g)
			return
		}
		n -= c.weight
	}
}

// file generates one file: comments and settings in Mastodon's order, a
// few quirks among them, and sometimes CRLF line ends, a byte order mark
// or no final line break.
func (g *fileGen) file(name string) *corpusFile {
	n := 12 + g.r.IntN(30)
	quirks := g.r.IntN(4) + g.r.IntN(3)
	start := g.r.IntN(len(settings))
	for i := 0; i < n; i++ {
		if g.chance(0.12) {
			g.emit("comment", "", g.pick("# ", "#", "  # ")+g.pick("Federation", "PostgreSQL", "Redis", "Sending mail", "Object storage", "Secrets", "---------------")+"\n")
		}
		if g.chance(0.06) {
			g.emit("blank", "", "\n")
		}
		if g.chance(0.04) {
			s := settings[g.r.IntN(len(settings))]
			g.emit("commented-out", "", g.pick("# ", "#")+s.key+"="+s.value(g)+"\n")
		}
		if quirks > 0 && g.r.IntN(n-i) < quirks {
			g.quirk()
			quirks--
			continue
		}
		s := settings[(start+i)%len(settings)]
		g.writeSetting(s.key, s.value(g))
	}
	for quirks > 0 {
		g.quirk()
		quirks--
	}
	data := g.b.String()
	switch n := g.r.IntN(100); {
	case n < 6:
		data = strings.ReplaceAll(data, "\n", "\r\n")
	case n < 7:
		data = strings.ReplaceAll(data, "\n", "\r")
	}
	if g.chance(0.03) {
		data = "\uFEFF" + data
	}
	if g.chance(0.08) {
		data = strings.TrimRight(data, "\r\n")
	}
	return &corpusFile{name: name, data: []byte(data), env: g.env, lines: g.lines}
}

// earlier returns a key assigned before, or "" when there is none.
func (g *fileGen) earlier() string {
	if len(g.keys) == 0 {
		return ""
	}
	return g.keys[g.r.IntN(len(g.keys))]
}

// later returns a setting's key not assigned yet (perhaps never).
func (g *fileGen) notYet() string {
	for range 10 {
		k := settings[g.r.IntN(len(settings))].key
		if !slices.Contains(g.keys, k) {
			return k
		}
	}
	return "UNSET_" + strings.ToUpper(g.word(alnum[:26], 4))
}

// quoted writes value in a random quoting style: none, single or double.
func (g *fileGen) quoted(value string) string {
	switch g.r.IntN(3) {
	case 0:
		return "'" + value + "'"
	case 1:
		return `"` + value + `"`
	}
	return value
}

func (g *fileGen) dollarInValue() {
	key := g.pick("DB_PASS", "SMTP_PASSWORD", "REDIS_PASSWORD", "ES_PASS")
	pw := g.password()
	at := g.r.IntN(len(pw))
	pw = pw[:at] + g.pick("$", "$$", "$1", "$iness", "${x}", "$_", "$ ") + pw[at:]
	if g.chance(0.3) {
		pw = "Ourpassw0rd!sNoneofyourbu$iness"
	}
	g.emit("dollar-in-value", key, key+"="+g.quoted(pw)+"\n")
}

func (g *fileGen) escapedDollar() {
	key := g.pick("DB_PASS", "SMTP_PASSWORD", "ES_PASS")
	pw := g.password()
	at := g.r.IntN(len(pw))
	pw = pw[:at] + g.pick(`\$`, `\$\$`, `\${X}`, `\\$X`) + pw[at:]
	g.emit("escaped-dollar", key, key+"="+g.quoted(pw)+"\n")
}

func (g *fileGen) varRef() {
	ref := g.earlier()
	if ref == "" || g.chance(0.3) {
		ref = g.notYet()
	}
	var v string
	switch g.r.IntN(4) {
	case 0:
		v = "postgres://$DB_USER:$DB_PASS@$DB_HOST:$DB_PORT/$DB_NAME"
	case 1:
		v = "https://$" + ref + "/path"
	case 2:
		v = "$" + ref
	default:
		v = "${" + ref + "}-" + g.word(alnum, 4)
	}
	key := g.pick("DATABASE_URL", "CDN_HOST", "X_COPY", "STREAMING_API_BASE_URL", "ALTERNATE_DOMAINS")
	if !strings.Contains(v, "$"+key) && !strings.Contains(v, "{"+key) && g.chance(0.5) {
		key = g.notYet()
	}
	g.emit("var-ref", key, key+"="+g.quoted(v)+"\n")
}

func (g *fileGen) varRefEnv() {
	name := g.pick("HOME_DIR", "INSTANCE", "DB_POOL", "LOCAL_DOMAIN", "MASTODON_USER")
	g.env[name] = g.pick("/home/mastodon", "prod", "25", "env.example", "mastodon")
	key := g.pick("PAPERCLIP_ROOT_PATH", "X_FROM_ENV", "CDN_HOST")
	v := g.pick("$"+name+"/public/system", "${"+name+"}", "pre-$"+name)
	g.emit("var-ref-env", key, key+"="+g.quoted(v)+"\n")
}

func (g *fileGen) varBraces() {
	ref := g.earlier()
	if ref == "" {
		ref = "LOCAL_DOMAIN"
	}
	v := g.pick("${"+ref+"}x", "$"+ref+"}x", "${"+ref+" x", "${}", "$ {"+ref+"}", "$-x", "a$", "${"+strings.ToLower(ref)+"}")
	key := g.pick("BRACES", "ALIAS_X", "S3_ALIAS_HOST")
	g.emit("var-braces", key, key+"="+g.quoted(v)+"\n")
}

// safeCommands are the only commands the corpus runs: every reader that
// runs commands (Ruby dotenv, and envfile in this test) runs them.
var safeCommands = []string{
	"echo hello", "echo a b", "printf %s x", "true", "echo", "printf 'a\\nb'",
	"echo a; echo b", "printf 'x\\n\\n'", "expr 6 + 7", "echo $(echo nested)",
	"printf %s $LOCAL_DOMAIN", "echo ${DB_USER}", "printf %s%s '$' HOST",
}

func (g *fileGen) command() {
	c := g.pick(safeCommands...)
	var v string
	switch g.r.IntN(6) {
	case 0:
		v = "$(" + c + ")"
	case 1:
		v = "pre-$(" + c + ")-post"
	case 2:
		v = `\$(` + c + ")"
	case 3:
		v = "$(" + c
	case 4:
		v = "$(" + c + ") and $(" + g.pick(safeCommands...) + ")"
	default:
		v = "$()"
	}
	key := g.pick("GIT_SHA", "LOCAL_DOMAIN", "SECRET_KEY_BASE", "X_CMD")
	g.emit("command", key, key+"="+g.quoted(v)+"\n")
}

func (g *fileGen) commandAfterVar() {
	ref := g.earlier()
	if ref == "" || g.chance(0.3) {
		ref = "B"
		g.emit("command-after-var", ref, "B="+g.pick("b", "x", "HOST")+"\n")
	}
	v := g.pick("$"+ref+"$(echo a)", "${"+ref+"}$(echo a)", "$$(echo HOST)", "$(echo a)$"+ref)
	g.emit("command-after-var", "CMD", "CMD="+g.quoted(v)+"\n")
}

func (g *fileGen) varHoldingCommand() {
	x := g.pick("X", "SHA", "DB_HOST")
	g.emit("var-holding-command", x, x+"="+g.quoted("$(echo hi)")+"\n")
	y := g.pick("Y", "COPY", "DATABASE_URL")
	g.emit("var-holding-command", y, y+"="+g.quoted(g.pick("$"+x, "${"+x+"}/x", "pre $"+x))+"\n")
}

func (g *fileGen) commandOutputDollar() {
	if g.chance(0.5) {
		g.emit("command-output-dollar", "HOST", "HOST=h.example\n")
	}
	g.emit("command-output-dollar", "OUT", "OUT="+g.pick(`$(printf %s%s '$' HOST)`, `"$(printf %s '$(echo')"`, `$(echo '${HOST}')`)+"\n")
}

func (g *fileGen) backslash() {
	key := g.pick("NODE_EXTRA_CA_CERTS", "DB_PASS", "PATH_X", "SMTP_PASSWORD")
	v := g.pick(`C:\certs\do.crt`, `pass\word`, `a\\b`, `tab\there`, `end\`, `\`, `q\"uote`, `\'x`)
	g.emit("backslash", key, key+"="+g.quoted(v)+"\n")
}

func (g *fileGen) dqNewlineEscape() {
	key := g.pick("SMTP_FROM_ADDRESS", "BANNER", "VAPID_PRIVATE_KEY", "X_TEXT")
	v := g.pick(`line1\nline2`, `a\r\nb`, `-----BEGIN KEY-----\nabc\n-----END KEY-----`, `\\n`, `x\n`)
	q := `"`
	if g.chance(0.2) {
		q = ""
	}
	g.emit("dq-newline-escape", key, key+"="+q+v+q+"\n")
}

func (g *fileGen) dqEscapedQuote() {
	key := g.pick("SMTP_FROM_ADDRESS", "X_QUOTED", "DB_PASS")
	v := g.pick(`Mastodon \"Social\" <n@x.example>`, `a\"b`, `\"`, `it\'s`)
	g.emit("dq-escaped-quote", key, key+`="`+v+`"`+"\n")
}

func (g *fileGen) multilineQuoted() {
	key := g.pick("VAPID_PRIVATE_KEY", "NODE_CA", "X_MULTI")
	body := "-----BEGIN EC PRIVATE KEY-----\n" + g.word(b64url, 40) + "\n" + g.word(b64url, 24) + "\n-----END EC PRIVATE KEY-----"
	if g.chance(0.3) {
		body = "line 1\n\nline 3"
	}
	q := g.pick(`"`, "'")
	g.emit("multiline-quoted", key, key+"="+q+body+q+"\n")
}

func (g *fileGen) unterminatedQuote() {
	key := g.pick("DB_PASS", "SMTP_FROM_ADDRESS", "X_OPEN")
	q := g.pick(`"`, "'")
	g.emit("unterminated-quote", key, key+"="+q+g.password()+"\n")
	if g.chance(0.4) {
		g.emit("unterminated-quote", "LATER", "LATER="+q+"closes"+q+"\n")
	}
}

func (g *fileGen) textAfterQuote() {
	key := g.pick("SMTP_FROM_ADDRESS", "X_AFTER", "DB_PASS")
	var v string
	switch g.r.IntN(6) {
	case 0, 1:
		v = `"Mastodon" <notifications@` + g.domain() + ">"
	case 2:
		v = "'a'b"
	case 3:
		v = `"a" "b"`
	case 4:
		v = `"a"b$c`
	default:
		v = `'x' y\z`
	}
	g.emit("text-after-quote", key, key+"="+v+"\n")
}

func (g *fileGen) hashCut() {
	key := g.pick("S3_BUCKET", "DB_PASS", "X_HASH")
	v := g.pick("media#2", "pass#word", "#start", "a #b", "a\t#b")
	g.emit("hash-cut", key, key+"="+g.pick("", " ")+v+"\n")
}

func (g *fileGen) bareKey() {
	key := g.earlier()
	if key == "" || g.chance(0.4) {
		key = g.notYet()
	}
	g.emit("bare-key", key, key+g.pick("", "  ", " # set later")+"\n")
}

func (g *fileGen) exportCheck() {
	var key string
	switch g.r.IntN(4) {
	case 0:
		key = g.earlier()
	case 1:
		key = g.notYet()
		g.env[key] = "from-env"
	case 2:
		key = g.notYet()
	default:
		key = "PATH"
	}
	if key == "" {
		key = "LOCAL_DOMAIN"
	}
	g.emit("export-check", "", "export "+key+g.pick("", " ", " # checked")+"\n")
}

func (g *fileGen) exportEmpty() {
	key := g.earlier()
	if key == "" {
		key = "A"
		g.emit("export-empty", key, "A=1\n")
	}
	g.emit("export-empty", key, "export "+key+"="+g.pick("", " ")+"\n")
}

func (g *fileGen) invalidKey() {
	k := g.pick("DB-PASS", "SMTP FROM", "CLÉ", "DB_PASS[0]", "S3-BUCKET", "@KEY", "KEY-")
	g.emit("invalid-key", "", k+"="+g.quoted(g.password())+"\n")
}

func (g *fileGen) colonNoSpace() {
	k := g.pick("DB_PASS", "LOCAL_DOMAIN", "S3_REGION")
	g.emit("colon-no-space", "", k+":"+g.pick("nyc3", "x", "'a b'")+"\n")
}

func (g *fileGen) garbage() {
	g.emit("not-an-assignment", "", g.pick("[production]", "this is not a setting", "}", "-- sql comment", "DB_PASS hunter2", "=value", "; ini comment", "*")+"\n")
}

func (g *fileGen) backtick() {
	key := g.pick("X_TICK", "DB_PASS")
	g.emit("backtick", key, key+"="+g.pick("`x`", "`a b`", "`open", "a`b`")+"\n")
}

func (g *fileGen) unicodeSpace() {
	key := g.pick("LOCAL_DOMAIN", "X_SPACE")
	v := g.pick("\u00a0value", "value\u00a0", "\u3000v", "a\u00a0b")
	g.emit("unicode-space", key, key+"="+g.quoted(v)+"\n")
}

func (g *fileGen) lineSeparator() {
	key := g.pick("X_LS", "BANNER")
	var line string
	switch g.r.IntN(4) {
	case 0:
		line = key + "=" + g.quoted(g.pick("a\u2028b", "a\u2029b", "\u2028"))
	case 1: // a line break for node only, after a quoted value or a comment
		line = key + "=" + g.pick("'x'", `"x"`, "1 # note") + g.pick("\u2028", "\u2029") + "NEXT=2"
	case 2: // node's quote removal stops at it
		line = key + "=" + g.pick("'a'\u2028b", "\"a\"\u2029\"b\" c")
	default:
		line = key + "=\u2028'y'"
	}
	g.emit("line-separator", key, line+"\n")
}

func (g *fileGen) invalidUTF8() {
	g.emit("invalid-utf8", "X_BYTES", "X_BYTES="+g.pick("\xff", "caf\xe9", "\xc3")+"\n")
}

func (g *fileGen) duplicateKey() {
	key := g.earlier()
	if key == "" {
		key = "DB_POOL"
	}
	g.emit("duplicate-key", key, key+"="+g.quoted(g.pick("second", "2", ""))+"\n")
}

func (g *fileGen) linebreakMode() {
	if g.chance(0.5) {
		g.env["DOTENV_LINEBREAK_MODE"] = g.pick("legacy", "strict")
	} else {
		g.emit("linebreak-mode", "DOTENV_LINEBREAK_MODE", "DOTENV_LINEBREAK_MODE="+g.pick("legacy", "strict")+"\n")
	}
	g.emit("linebreak-mode", "X_LB", `X_LB="a\nb"`+"\n")
}

func (g *fileGen) emptyValue() {
	key := g.notYet()
	g.emit("empty-value", key, key+g.pick("=", "=''", `=""`, " = ", ":", "= # none")+"\n")
}

func (g *fileGen) valueOnNextLine() {
	key := g.notYet()
	g.emit("value-on-next-line", key, key+g.pick("=", ":")+"\n"+g.pick(`"x"`, "'y'", "z")+"\n")
}

func (g *fileGen) backslashBeforeClose() {
	key := g.pick("DB_PASS", "X_BS")
	q := g.pick(`"`, "'")
	g.emit("backslash-before-close", key, key+"="+q+"abc\\"+q+"\n")
	if g.chance(0.5) {
		g.emit("backslash-before-close", "NEXT", "NEXT="+q+"n"+q+"\n")
	}
}

func (g *fileGen) envOverridesKey() {
	s := settings[g.r.IntN(len(settings))]
	g.env[s.key] = g.pick("from-systemd", "25", "production", "")
	g.writeSetting(s.key, s.value(g))
	g.lines[len(g.lines)-1].class = "env-overrides-key"
}

func (g *fileGen) lowercaseKey() {
	k := g.pick("db_pass", "local_domain", "MixedCase")
	g.emit("lowercase-key", k, k+"="+g.quoted(g.password())+"\n")
}

func (g *fileGen) quoteInValue() {
	key := g.pick("SMTP_FROM_ADDRESS", "X_Q", "DB_PASS")
	v := g.pick(`it's`, `say "hi"`, `a'b'c`, `"`, `'`, `x"`)
	g.emit("quote-in-value", key, key+"="+v+"\n")
}
