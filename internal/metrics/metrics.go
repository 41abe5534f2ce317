// Package metrics is keymint's Prometheus instrumentation. A nil *Metrics
// records nothing and costs a nil check: metrics are off unless keymint
// serve is given --metrics-addr.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keymint/terraform-provider-keymint/internal/wire"
)

// Metrics holds keymint's collectors in a registry of its own.
type Metrics struct {
	registry      *prometheus.Registry
	verifications *prometheus.CounterVec
	requests      *prometheus.HistogramVec
	cache         *prometheus.CounterVec
	storeOps      *prometheus.HistogramVec
	replays       *prometheus.CounterVec
	authFailures  prometheus.Counter
	cacheHit      prometheus.Counter
	cacheMiss     prometheus.Counter
	resyncs       prometheus.Counter
	// The children of requests and storeOps, by label values: their label
	// sets are fixed (route patterns, statuses, store methods), and
	// WithLabelValues hashes the values and takes a lock on every call.
	requestObs sync.Map // requestLabels -> prometheus.Observer
	storeObs   sync.Map // op -> prometheus.Observer
}

type requestLabels struct {
	route  string
	status int
}

// New registers keymint's collectors, with Go's and the process's.
func New() *Metrics {
	m := &Metrics{registry: prometheus.NewRegistry()}
	m.verifications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keymint_verifications_total", Help: "Verifies answered, by the key's app (empty when unknown) and verdict code.",
	}, []string{"app", "code"})
	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "keymint_http_request_duration_seconds", Help: "HTTP requests, by route pattern and status.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route", "status"})
	m.cache = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keymint_verify_cache_lookups_total", Help: "Secret lookups (verified keys and authenticating tokens), by whether the verify cache answered (hit) or the store did (miss).",
	}, []string{"result"})
	m.cacheHit, m.cacheMiss = m.cache.WithLabelValues("hit"), m.cache.WithLabelValues("miss")
	m.storeOps = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "keymint_store_operation_duration_seconds", Help: "Store operations, by operation.",
		Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
	}, []string{"op"})
	m.replays = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keymint_idempotent_replays_total", Help: "Requests answered as the replay of an earlier one with the same Idempotency-Key, by kind (app, key, rotate).",
	}, []string{"kind"})
	m.authFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "keymint_authentication_failures_total", Help: "Requests refused for a missing, unknown, revoked, expired or disabled token.",
	})
	m.resyncs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "keymint_replica_resyncs_total", Help: "Times this replica found its invalidation stream incomplete (a gap, an unreadable notification) and emptied its verify cache.",
	})
	// Series known in advance exist from the start, at 0: a dashboard or alert
	// sees 0 rather than no data.
	for _, kind := range []string{"app", "key", "rotate"} {
		m.replays.WithLabelValues(kind)
	}
	for _, code := range wire.Codes {
		m.verifications.WithLabelValues("", code)
	}
	m.registry.MustRegister(m.verifications, m.requests, m.cache, m.storeOps, m.replays, m.authFailures, m.resyncs,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Verified counts one verify verdict.
func (m *Metrics) Verified(app, code string) {
	if m != nil {
		m.verifications.WithLabelValues(app, code).Inc()
	}
}

// AppDeleted removes a deleted app's series (its verifications by code), so
// that the series do not outlive the app until a restart.
func (m *Metrics) AppDeleted(app string) {
	if m != nil && app != "" {
		m.verifications.DeletePartialMatch(prometheus.Labels{"app": app})
	}
}

// Request observes one HTTP request.
func (m *Metrics) Request(route string, status int, d time.Duration) {
	if m != nil {
		key := requestLabels{route, status}
		o, ok := m.requestObs.Load(key)
		if !ok {
			o, _ = m.requestObs.LoadOrStore(key, m.requests.WithLabelValues(route, strconv.Itoa(status)))
		}
		o.(prometheus.Observer).Observe(d.Seconds())
	}
}

// CacheLookup counts a verify-cache hit or miss.
func (m *Metrics) CacheLookup(hit bool) {
	if m == nil {
		return
	}
	if hit {
		m.cacheHit.Inc()
	} else {
		m.cacheMiss.Inc()
	}
}

// StoreOp observes one store operation that started at start.
func (m *Metrics) StoreOp(op string, start time.Time) {
	if m != nil {
		o, ok := m.storeObs.Load(op)
		if !ok {
			o, _ = m.storeObs.LoadOrStore(op, m.storeOps.WithLabelValues(op))
		}
		o.(prometheus.Observer).Observe(time.Since(start).Seconds())
	}
}

// Replayed counts an idempotent replay.
func (m *Metrics) Replayed(kind string) {
	if m != nil {
		m.replays.WithLabelValues(kind).Inc()
	}
}

// AuthFailed counts a refused token.
func (m *Metrics) AuthFailed() {
	if m != nil {
		m.authFailures.Inc()
	}
}

// ReplicaResync counts one resynchronisation of this replica's cache.
func (m *Metrics) ReplicaResync() {
	if m != nil {
		m.resyncs.Inc()
	}
}

// WatchLogDrops exports the count of log lines the log's output refused.
func (m *Metrics) WatchLogDrops(dropped func() uint64) {
	if m == nil || dropped == nil {
		return
	}
	m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "keymint_log_lines_dropped_total",
		Help: "Log lines lost because the log's output (standard error) refused them."}, func() float64 { return float64(dropped()) }))
}

// WatchReplica exports whether this replica holds its lease (its cache may
// answer) and whether its invalidation connection turned out to be pooled.
func (m *Metrics) WatchReplica(leased, pooled func() bool) {
	if m == nil {
		return
	}
	gauge := func(f func() bool) func() float64 {
		return func() float64 {
			if f() {
				return 1
			}
			return 0
		}
	}
	m.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keymint_replica_lease_held",
			Help: "1 while this replica holds its lease and its verify cache may answer; 0 while every verify reads the database."}, gauge(leased)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "keymint_replica_invalidations_pooled",
			Help: "1 if this replica's invalidation connection is not one PostgreSQL session (a transaction pooler): it then holds no lease; set --listen-db."}, gauge(pooled)))
}
