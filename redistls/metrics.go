package redistls

import "github.com/prometheus/client_golang/prometheus"

// Dial error reasons, the values of redistls_dial_errors_total{reason}.
const (
	ReasonResolve   = "resolve"    // the name did not resolve
	ReasonConnect   = "connect"    // TCP connect failed or timed out
	ReasonTLSVerify = "tls_verify" // the backend certificate was rejected
	ReasonTLS       = "tls"        // another TLS handshake failure
)

// Failover reasons, the values of redistls_failovers_total{reason}: what
// made the monitor judge a node no longer the primary.
const (
	FailoverMoved    = "moved"    // the name no longer resolves to the node
	FailoverRole     = "role"     // the node answers ROLE as a replica
	FailoverReadOnly = "readonly" // a client got -READONLY from the node
	FailoverDown     = "down"     // the node stopped answering the probe
)

// Outcomes of a connection that waited for the backend name to leave a
// node no longer the primary, the values of
// redistls_connections_held_total{outcome}.
const (
	HoldReleased     = "released"      // the name moved, or the node is the primary again
	HoldTimeout      = "timeout"       // TIMEOUTconnect passed: dialed where the name still points
	HoldClientClosed = "client_closed" // the client left while waiting
)

// Every value each reason label can take: a service's series are created
// at 0 when it starts, so rate() and increase() see the first burst.
var (
	dialErrorReasons = []string{ReasonResolve, ReasonConnect, ReasonTLSVerify, ReasonTLS}
	failoverReasons  = []string{FailoverMoved, FailoverRole, FailoverReadOnly, FailoverDown}
	holdOutcomes     = []string{HoldReleased, HoldTimeout, HoldClientClosed}
)

type metrics struct {
	active     *prometheus.GaugeVec
	dials      *prometheus.CounterVec
	dialErrors *prometheus.CounterVec
	failovers  *prometheus.CounterVec
	closed     *prometheus.CounterVec
	held       *prometheus.CounterVec
	bytes      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	svc := []string{"service"}
	m := &metrics{
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "redistls_connections_active",
			Help: "Client connections being proxied now."}, svc),
		dials: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "redistls_dials_total",
			Help: "Backend connections attempted for client connections, one fresh name resolution each (the health check's and the failover monitor's dials are not counted)."}, svc),
		dialErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "redistls_dial_errors_total",
			Help: "Backend connections attempted for client connections that failed, by reason (resolve, connect, tls_verify, tls); the health check's and the failover monitor's failures are not counted."}, []string{"service", "reason"}),
		failovers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "redistls_failovers_total",
			Help: "Failover events: a backend node judged no longer the primary (once until it is the primary again), by reason (moved, role, readonly, down)."}, []string{"service", "reason"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "redistls_failover_closed_connections_total",
			Help: "Client connections closed because their backend node was no longer the primary (every close, also of connections that reached it again after the event)."}, svc),
		held: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "redistls_connections_held_total",
			Help: "Client connections that waited because the backend name still resolved to a node no longer the primary, by outcome (released: the name moved or the node is the primary again; timeout: dialed it after TIMEOUTconnect; client_closed)."}, []string{"service", "outcome"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "redistls_bytes_total",
			Help: "Plaintext bytes proxied, by direction (to_backend, to_client)."}, []string{"service", "direction"}),
	}
	for _, c := range []prometheus.Collector{m.active, m.dials, m.dialErrors, m.failovers, m.closed, m.held, m.bytes} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// serviceMetrics are one service's children, looked up once: a service
// that was removed and drained has its series deleted (forget), and a late
// update to these children cannot bring them back.
type serviceMetrics struct {
	active            prometheus.Gauge
	dials             prometheus.Counter
	toBackend, toClnt prometheus.Counter
	dialErrors        map[string]prometheus.Counter // by reason
	failovers         map[string]prometheus.Counter // by reason
	closed            prometheus.Counter
	held              map[string]prometheus.Counter // by outcome
}

// service looks up name's children, creating every known label
// combination at 0.
func (m *metrics) service(name string) *serviceMetrics {
	s := &serviceMetrics{
		active:     m.active.WithLabelValues(name),
		dials:      m.dials.WithLabelValues(name),
		toBackend:  m.bytes.WithLabelValues(name, "to_backend"),
		toClnt:     m.bytes.WithLabelValues(name, "to_client"),
		dialErrors: map[string]prometheus.Counter{},
		failovers:  map[string]prometheus.Counter{},
		closed:     m.closed.WithLabelValues(name),
		held:       map[string]prometheus.Counter{},
	}
	for _, r := range dialErrorReasons {
		s.dialErrors[r] = m.dialErrors.WithLabelValues(name, r)
	}
	for _, r := range failoverReasons {
		s.failovers[r] = m.failovers.WithLabelValues(name, r)
	}
	for _, o := range holdOutcomes {
		s.held[o] = m.held.WithLabelValues(name, o)
	}
	return s
}

// forget deletes every series of service name, once it is removed from the
// configuration and its connections are gone.
func (m *metrics) forget(name string) {
	for _, v := range []*prometheus.MetricVec{m.active.MetricVec, m.dials.MetricVec, m.dialErrors.MetricVec,
		m.failovers.MetricVec, m.closed.MetricVec, m.held.MetricVec, m.bytes.MetricVec} {
		v.DeletePartialMatch(prometheus.Labels{"service": name})
	}
}

func (s *serviceMetrics) dialError(reason string) {
	s.dialErrors[reason].Inc()
}

// failover counts closed connections, and the event when it is one.
func (s *serviceMetrics) failover(reason string, closed int, event bool) {
	if event {
		s.failovers[reason].Inc()
	}
	s.closed.Add(float64(closed))
}
