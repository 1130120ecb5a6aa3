package mastofake

import (
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// StreamingChannels are the channels Mastodon's streaming server primes its
// gauges with (CHANNEL_NAMES in streaming/index.js).
var StreamingChannels = []string{"system", "user", "user:notification", "list", "direct", "public", "public:media",
	"public:local", "public:local:media", "public:remote", "public:remote:media", "hashtag", "hashtag:local"}

// Streaming is Mastodon's streaming server as Prometheus sees it: /metrics
// with the names of streaming/metrics.js (prom-client) and the default
// process and Node.js metrics prom-client adds, and /api/v1/streaming/health.
// Clients connect and messages flow as Step models them.
type Streaming struct {
	Clients        float64 // connected clients to aim at
	MessagesPerSec float64 // per connected client
	reg            *prometheus.Registry
	mu             sync.Mutex
	rng            *rand.Rand
	ws             float64 // websocket clients now
	clients        *prometheus.GaugeVec
	channels       *prometheus.GaugeVec
	subscriptions  prometheus.Gauge
	received       prometheus.Counter
	sent           *prometheus.CounterVec
	pgTotal        prometheus.Gauge
	pgIdle         prometheus.Gauge
	pgWaiting      prometheus.Gauge
	rss, lag, heap prometheus.Gauge
	cpu            prometheus.Counter
}

// NewStreaming returns a streaming server with its gauges primed at 0, as
// setupMetrics does.
func NewStreaming(seed uint64) *Streaming {
	s := &Streaming{reg: prometheus.NewRegistry(), rng: rand.New(rand.NewPCG(seed, 3))}
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
		s.reg.MustRegister(g)
		return g
	}
	s.pgTotal = gauge("pg_pool_total_connections", "The total number of clients existing within the pool")
	s.pgIdle = gauge("pg_pool_idle_connections", "The number of clients which are not checked out but are currently idle in the pool")
	s.pgWaiting = gauge("pg_pool_waiting_queries", "The number of queued requests waiting on a client when all clients are checked out")
	s.clients = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "connected_clients", Help: "The number of clients connected to the streaming server"}, []string{"type"})
	s.channels = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "connected_channels", Help: "The number of channels the streaming server is streaming to"}, []string{"type", "channel"})
	s.subscriptions = gauge("redis_subscriptions", "The number of Redis channels the streaming server is subscribed to")
	s.received = prometheus.NewCounter(prometheus.CounterOpts{Name: "redis_messages_received_total", Help: "The total number of messages the streaming server has received from redis subscriptions"})
	s.sent = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "messages_sent_total", Help: "The total number of messages the streaming server sent to clients per connection type"}, []string{"type"})
	s.reg.MustRegister(s.clients, s.channels, s.received, s.sent)
	// prom-client's collectDefaultMetrics (lib/metrics/*.js), the ones the dashboard reads.
	s.rss = gauge("process_resident_memory_bytes", "Resident memory size in bytes.")
	s.lag = gauge("nodejs_eventloop_lag_p99_seconds", "The 99th percentile of the recorded event loop delays.")
	s.heap = gauge("nodejs_heap_size_used_bytes", "Process heap size used from Node.js in bytes.")
	s.cpu = prometheus.NewCounter(prometheus.CounterOpts{Name: "process_cpu_seconds_total", Help: "Total user and system CPU time spent in seconds."})
	s.reg.MustRegister(s.cpu)
	for _, t := range []string{"websocket", "eventsource"} {
		s.clients.WithLabelValues(t).Set(0)
		s.sent.WithLabelValues(t).Add(0)
		for _, c := range StreamingChannels {
			s.channels.WithLabelValues(t, c).Set(0)
		}
	}
	s.pgTotal.Set(0)
	s.rss.Set(95e6)
	return s
}

// Step moves the model dt forward: clients drift towards Clients, each
// gets MessagesPerSec, and the pool and process gauges follow.
func (s *Streaming) Step(dt time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rng
	ws := s.ws
	target := s.Clients * 0.85
	ws += (target - ws) * 0.3
	ws = math.Max(0, math.Round(ws+r.NormFloat64()*math.Sqrt(math.Max(ws, 1))*0.3))
	es := math.Round(s.Clients * 0.15)
	s.ws = ws
	s.clients.WithLabelValues("websocket").Set(ws)
	s.clients.WithLabelValues("eventsource").Set(es)
	s.channels.WithLabelValues("websocket", "user").Set(ws)
	s.channels.WithLabelValues("websocket", "public:local").Set(math.Round(ws * 0.2))
	s.channels.WithLabelValues("eventsource", "user").Set(es)
	s.subscriptions.Set(ws + es + 3)
	msgs := (ws + es) * s.MessagesPerSec * dt.Seconds()
	s.sent.WithLabelValues("websocket").Add(math.Round(msgs * ws / math.Max(ws+es, 1)))
	s.sent.WithLabelValues("eventsource").Add(math.Round(msgs * es / math.Max(ws+es, 1)))
	s.received.Add(math.Round(msgs * 0.7))
	total := math.Min(10, 2+math.Round((ws+es)/200)) // streaming's DB_POOL default 10
	s.pgTotal.Set(total)
	s.pgIdle.Set(math.Max(0, total-1-math.Round((ws+es)/600))) // a query per connect, most clients idle
	s.pgWaiting.Set(0)
	s.rss.Set(95e6 + 40e3*(ws+es))
	s.heap.Set(40e6 + 25e3*(ws+es))
	s.lag.Set(0.011 + 0.00002*(ws+es)*(1+0.2*r.Float64()))
	s.cpu.Add(dt.Seconds() * (0.05 + 0.0004*(ws+es)))
}

// ServeHTTP answers /metrics and /api/v1/streaming/health as the streaming
// server does.
func (s *Streaming) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/metrics":
		promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	case "/api/v1/streaming/health":
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "OK")
	default:
		http.NotFound(w, r)
	}
}
