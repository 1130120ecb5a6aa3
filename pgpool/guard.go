package pgpool

import (
	"context"
	"log/slog"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
)

// sessionState matches statements whose effect outlives a transaction:
// through a transaction pool they leak to whichever client gets the server
// connection next, or vanish for this one.
var sessionState = regexp.MustCompile(`(?is)^\s*(?:` +
	`(SET)\s+(?:SESSION\s+)?(?:[a-z_."]+\s*(?:=|TO)|TIME\s+ZONE|ROLE|SESSION\s+AUTHORIZATION|SCHEMA|NAMES)` +
	`|(RESET)\b|(LISTEN)\b|(PREPARE)\b|(DECLARE)\b.*\bWITH\s+HOLD\b` +
	`|(CREATE)\s+(?:GLOBAL\s+|LOCAL\s+)?TEMP(?:ORARY)?\b` +
	`|SELECT\b.*\b(pg_advisory_lock|pg_try_advisory_lock|set_config)\s*\()`)

var localConfig = regexp.MustCompile(`(?i),\s*true\s*\)`)

// SessionGuard is a pgx QueryTracer for the pooled config that logs a
// warning for each statement run outside a transaction whose effect would
// outlive it (SET without LOCAL, RESET, LISTEN, PREPARE, temporary tables,
// WITH HOLD cursors, session advisory locks, set_config). It logs the
// statement's kind only, never its text or arguments. ConfigFromEnv installs it
// on Config.Pooled with Options.Logger.
type SessionGuard struct{ Logger *slog.Logger }

// TraceQueryStart implements pgx.QueryTracer.
func (g SessionGuard) TraceQueryStart(ctx context.Context, conn *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if conn == nil || conn.PgConn().TxStatus() != 'I' {
		return ctx
	}
	if kind := SessionStatement(d.SQL); kind != "" {
		l := g.Logger
		if l == nil {
			l = slog.Default()
		}
		l.Warn("session state outside a transaction through a transaction pool; use SET LOCAL inside a transaction or the direct config",
			"statement", kind)
	}
	return ctx
}

// TraceQueryEnd implements pgx.QueryTracer.
func (SessionGuard) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// SessionStatement returns the kind of session-state statement sql is
// ("SET", "LISTEN", "pg_advisory_lock", ...), or "" when it is none.
// set_config(..., true) and SET LOCAL are transaction-scoped and pass.
func SessionStatement(sql string) string {
	if !mayHoldSessionState(sql) {
		return ""
	}
	m := sessionState.FindStringSubmatch(sql)
	if m == nil {
		return ""
	}
	for _, k := range m[1:] {
		if k == "" {
			continue
		}
		if strings.Contains(k, "_") { // a function
			k = strings.ToLower(k)
			if k == "set_config" && localConfig.MatchString(sql) {
				return ""
			}
			return k
		}
		return strings.ToUpper(k)
	}
	return ""
}

// mayHoldSessionState is a cheap test that lets almost every query skip
// the regular expression: it looks at the first word only, and for SELECT
// at whether a session function is named at all.
func mayHoldSessionState(sql string) bool {
	s := strings.TrimLeft(sql, " \t\r\n(")
	i := strings.IndexAny(s, " \t\r\n(")
	if i < 0 {
		i = len(s)
	}
	switch strings.ToUpper(s[:i]) {
	case "SET", "RESET", "LISTEN", "PREPARE", "DECLARE", "CREATE":
		return true
	case "SELECT":
		return namesFold(s, "advisory_lock", 8) || namesFold(s, "set_config", 3)
	}
	return false
}

// namesFold reports whether s holds word, matched without regard to case,
// where word has its '_' at index under. It allocates nothing.
func namesFold(s, word string, under int) bool {
	for off := 0; ; {
		j := strings.IndexByte(s[off:], '_')
		if j < 0 {
			return false
		}
		j += off
		if st := j - under; st >= 0 && st+len(word) <= len(s) && strings.EqualFold(s[st:st+len(word)], word) {
			return true
		}
		off = j + 1
	}
}
