package command

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Logger returns the logger of a program that runs and ends (from cron, a
// timer or a shell): text lines on Stderr, at info on a terminal and at
// warn elsewhere, so that a run that succeeds under cron prints no log
// line; at debug with verbose (-v). It becomes slog's default, and
// go-redis's own messages go to it at debug.
func (p *Program) Logger(verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if p.Terminal {
		level = slog.LevelInfo
	}
	return p.logger(level, verbose)
}

// ServiceLogger is Logger for a program that runs until it is stopped (a
// systemd service): at info whether or not Stderr is a terminal, since
// its start, reloads and stop belong in the journal; at debug with
// verbose.
func (p *Program) ServiceLogger(verbose bool) *slog.Logger {
	return p.logger(slog.LevelInfo, verbose)
}

func (p *Program) logger(level slog.Level, verbose bool) *slog.Logger {
	if verbose {
		level = slog.LevelDebug
	}
	l := slog.New(slog.NewTextHandler(p.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(l)
	redis.SetLogger(redisLog{l})
	return l
}

// redisLog hands go-redis's messages ("redis: connection pool: failed to
// dial after 5 attempts: ...") to slog at debug: the program reports the
// failure itself, once, in its own words.
type redisLog struct{ l *slog.Logger }

func (r redisLog) Printf(ctx context.Context, format string, v ...any) {
	r.l.DebugContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)), "from", "go-redis")
}
