package mastofake

import (
	"context"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
)

// StatsD sends what Mastodon 4.2 and earlier send with STATSD_ADDR set: the
// nsa gem's collectors (config/initializers/statsd.rb: action_controller
// as "web", active_record as "db", active_support_cache as "cache",
// sidekiq as "sidekiq" when STATSD_SIDEKIQ=true) through the statsd-ruby
// client, one UDP datagram per value, keys as those two gems build them.
type StatsD struct {
	Conn      net.Conn // UDP to the statsd_exporter
	Namespace string   // STATSD_NAMESPACE; "" means Mastodon's default "Mastodon.production"
	// NSAGsub makes Sidekiq worker names as nsa 0.3 writes them
	// ("ActivityPub.DeliveryWorker"); the nsa Mastodon 4.2 pinned
	// (jhawthorn/nsa e020fcc) used tr("::", "."), which gives
	// "ActivityPub..DeliveryWorker".
	NSAGsub bool
}

// DialStatsD returns a StatsD sender to addr over UDP.
func DialStatsD(addr string) (*StatsD, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("statsd %s: %w", addr, err)
	}
	return &StatsD{Conn: c}, nil
}

// Close closes the connection.
func (s *StatsD) Close() error { return s.Conn.Close() }

// send is Statsd#send_stats (statsd-ruby lib/statsd.rb): "::" becomes ".",
// ':', '|' and '@' become '_', the namespace and a dot go first.
func (s *StatsD) send(stat string, value float64, typ string) error {
	ns := s.Namespace
	if ns == "" {
		ns = "Mastodon.production"
	}
	stat = strings.NewReplacer(":", "_", "|", "_", "@", "_").Replace(strings.ReplaceAll(stat, "::", "."))
	_, err := fmt.Fprintf(s.Conn, "%s.%s:%s|%s", ns, stat, rubyFloat(value), typ)
	return err
}

// rubyFloat formats as Ruby's Float#to_s and Integer#to_s do for the
// values sent here.
func rubyFloat(v float64) string {
	if v == float64(int64(v)) {
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// Request is one process_action.action_controller event through
// NSA::Collectors::ActionController: controller is the class name
// ("Api::V1::StatusesController"), format "all" for nil or */*, times in
// milliseconds.
func (s *StatsD) Request(controller, action, format string, status int, totalMS, dbMS, viewMS float64) error {
	if format == "" || format == "*/*" {
		format = "all"
	}
	key := "web." + controller + "." + action + "." + format
	for _, e := range []struct {
		k string
		v float64
	}{{".total_duration", totalMS}, {".db_time", dbMS}, {".view_time", viewMS}} {
		if err := s.send(key+e.k, e.v, "ms"); err != nil {
			return err
		}
	}
	return s.send(key+".status."+strconv.Itoa(status), 1, "c")
}

// Query is one sql.active_record event through NSA::Collectors::ActiveRecord
// (kind select, insert, update or delete).
func (s *StatsD) Query(table, kind string, ms float64) error {
	return s.send("db.tables."+table+".queries."+kind+".duration", ms, "ms")
}

// Cache is one cache_*.active_support event through
// NSA::Collectors::ActiveSupportCache (kind read_hit, read_miss, write ...).
func (s *StatsD) Cache(kind string, ms float64) error {
	return s.send("cache."+kind+".duration", ms, "ms")
}

// SidekiqStats is Sidekiq::Stats as NSA reads it after each job.
type SidekiqStats struct {
	DeadSize, Enqueued, Failed, Processed, ProcessesSize, RetrySize, ScheduledSize, WorkersSize float64
}

// Job is one job through NSA::Collectors::Sidekiq's middleware: its
// processing time (only when it succeeded: statsd_time does not time a
// block that raises), success or failure, then the overall statistics and
// the queue's size and latency (seconds).
func (s *StatsD) Job(ctx context.Context, class, queue string, ok bool, ms float64, st SidekiqStats, queueSize, latency float64) error {
	name := strings.ReplaceAll(class, ":", ".") // String#tr("::", ".") maps each ':'
	if s.NSAGsub {
		name = strings.ReplaceAll(class, "::", ".")
	}
	var err error
	step := func(stat string, v float64, typ string) {
		if err == nil {
			err = ctx.Err()
		}
		if err == nil {
			err = s.send(stat, v, typ)
		}
	}
	if ok {
		step("sidekiq."+name+".processing_time", ms, "ms")
		step("sidekiq."+name+".success", 1, "c")
	} else {
		step("sidekiq."+name+".failure", 1, "c")
	}
	for _, g := range []struct {
		k string
		v float64
	}{{"dead_size", st.DeadSize}, {"enqueued", st.Enqueued}, {"failed", st.Failed}, {"processed", st.Processed},
		{"processes_size", st.ProcessesSize}, {"retry_size", st.RetrySize}, {"scheduled_size", st.ScheduledSize}, {"workers_size", st.WorkersSize}} {
		step("sidekiq."+g.k, g.v, "g")
	}
	step("sidekiq.queues."+queue+".enqueued", queueSize, "g")
	step("sidekiq.queues."+queue+".latency", latency, "g")
	return err
}

// WebStep sends the requests w's model draws for dt as a 4.2 web node
// sends them (with one query and one cache read each).
func (s *StatsD) WebStep(ctx context.Context, w *Web, dt time.Duration) error {
	for _, q := range w.draw(dt) {
		if err := ctx.Err(); err != nil {
			return err
		}
		format := "json"
		if !strings.HasPrefix(q.route.Controller, "api/") && q.route.Controller != "activitypub/inboxes" {
			format = "html"
		}
		total := q.total * 1000
		if err := s.Request(ControllerClass(q.route.Controller), q.route.Action, format, q.status, total, q.sql*1000, total*0.1); err != nil {
			return err
		}
		if err := s.Query("statuses", "select", q.sql*1000); err != nil {
			return err
		}
		if err := s.Cache("read_hit", q.redis*1000); err != nil {
			return err
		}
	}
	return nil
}

// SidekiqStep runs sk's model for dt and sends its jobs as a 4.2 Sidekiq
// process with STATSD_SIDEKIQ=true sends them.
func (s *StatsD) SidekiqStep(ctx context.Context, sk *Sidekiq, dt time.Duration) error {
	jobs, _ := sk.run(dt)
	busy := 0.0
	for _, j := range jobs {
		busy += j.seconds
	}
	st := sk.stats(min(sk.Concurrency, int(busy/dt.Seconds())))
	for _, j := range jobs {
		if err := s.Job(ctx, j.job.Class, j.job.Queue, j.ok, math.Round(j.seconds*1000), st, sk.backlog[j.job.Queue], sk.oldest[j.job.Queue]); err != nil {
			return err
		}
	}
	return nil
}

// ControllerClass is the controller class Rails names for a controller
// path, with Mastodon's ActivityPub acronym (config/initializers/
// inflections.rb): "api/v1/timelines/home" -> "Api::V1::Timelines::HomeController".
func ControllerClass(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		var b strings.Builder
		for _, w := range strings.Split(p, "_") {
			if w == "activitypub" {
				b.WriteString("ActivityPub")
				continue
			}
			if w != "" {
				b.WriteString(strings.ToUpper(w[:1]) + w[1:])
			}
		}
		parts[i] = b.String()
	}
	return strings.Join(parts, "::") + "Controller"
}
