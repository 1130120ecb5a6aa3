package backup

import (
	"context"
	"time"
)

// StopBounds says how long the work that follows a cancelled run may
// take: a program stopped by SIGTERM still cancels its unfinished upload,
// removes an unlisted object and sends its notifications, but must end
// within its stop grace. Each context ends when its kind of work must
// stop; a nil one sets no bound. Attach them with WithStopBounds.
type StopBounds struct {
	Cleanup context.Context // cancelling unfinished uploads, deleting unlisted objects
	Notify  context.Context // notifications (NotifyAll)
}

type stopKey struct{}

// WithStopBounds returns ctx carrying b, for CleanupContext and
// NotifyContext.
func WithStopBounds(ctx context.Context, b StopBounds) context.Context {
	return context.WithValue(ctx, stopKey{}, b)
}

// CleanupContext is the context for cleaning up after ctx (or its work)
// ended: it survives ctx's cancellation, lasts at most limit, and ends
// when ctx's StopBounds.Cleanup does.
func CleanupContext(ctx context.Context, limit time.Duration) (context.Context, context.CancelFunc) {
	b, _ := ctx.Value(stopKey{}).(StopBounds)
	return bounded(ctx, limit, b.Cleanup)
}

// NotifyContext is CleanupContext for notifications: bounded by limit and
// by ctx's StopBounds.Notify.
func NotifyContext(ctx context.Context, limit time.Duration) (context.Context, context.CancelFunc) {
	b, _ := ctx.Value(stopKey{}).(StopBounds)
	return bounded(ctx, limit, b.Notify)
}

func bounded(ctx context.Context, limit time.Duration, bound context.Context) (context.Context, context.CancelFunc) {
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), limit)
	if bound == nil {
		return c, cancel
	}
	c2, cancel2 := context.WithCancelCause(c)
	stop := context.AfterFunc(bound, func() { cancel2(context.Cause(bound)) })
	return c2, func() { stop(); cancel2(nil); cancel() }
}
