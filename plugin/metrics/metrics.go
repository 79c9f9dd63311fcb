// Package metrics defines every Prometheus metric l402d exports, on a
// registry of its own (no global state), so each Plugin, and each test,
// has an independent set. The README's metrics table lists them.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds l402d's collectors.
type Metrics struct {
	Registry *prometheus.Registry

	// Producer.
	ChallengesCreated   *prometheus.CounterVec   // source: api|gate|mcp; replayed: true|false
	CreateErrors        *prometheus.CounterVec   // reason
	CreateLatency       prometheus.Histogram     // seconds, including LND AddInvoice
	Verifications       *prometheus.CounterVec   // result: valid|wrong_preimage|expired|…
	VerifyLatency       prometheus.Histogram     // seconds, verify path only
	Settlements         prometheus.Counter       // challenges settled
	RevenueSats         prometheus.Counter       // sats received for challenges
	SettlementLag       prometheus.Histogram     // seconds between LND settling and l402d recording
	WatcherUp           prometheus.Gauge         // 1 while the settlement stream is open
	WatcherReconnects   prometheus.Counter       // settlement stream reconnects
	LNDUp               prometheus.Gauge         // 1 when the last LND call succeeded
	DBUp                prometheus.Gauge         // on Postgres: 1 when the last check of the database succeeded
	SettlementLeader    prometheus.Gauge         // 1 while this process runs the settlement watcher
	HTTPRequests        *prometheus.CounterVec   // surface, route, code
	HTTPLatency         *prometheus.HistogramVec // surface, route
	GateRequests        *prometheus.CounterVec   // service, outcome: paid|challenged|rejected|free|rate_limited|upstream_error
	GateUpstreamLatency *prometheus.HistogramVec // service
	PaymentsSent        *prometheus.CounterVec   // outcome: succeeded|failed|refused
	SpentSats           prometheus.Counter       // amount paid, excluding fees
	FeesSats            prometheus.Counter       // routing fees paid
}

// latencyBuckets spans 10 µs to 10 s: verify lives at the bottom, LND at
// the top.
var latencyBuckets = []float64{1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, .1, .25, .5, 1, 2.5, 5, 10}

// New creates and registers every metric, plus the Go runtime and process
// collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	f := factory{r}
	m := &Metrics{
		Registry:            r,
		ChallengesCreated:   f.counterVec("l402d_challenges_created_total", "L402 challenges issued, by source and whether an idempotent replay answered.", "source", "replayed"),
		CreateErrors:        f.counterVec("l402d_challenge_errors_total", "Challenge creations that failed, by reason.", "reason"),
		CreateLatency:       f.histogram("l402d_challenge_create_seconds", "Time to create a challenge, LND AddInvoice included."),
		Verifications:       f.counterVec("l402d_verifications_total", "Token verifications, by result.", "result"),
		VerifyLatency:       f.histogram("l402d_verify_seconds", "Time to verify a token (never calls LND)."),
		Settlements:         f.counter("l402d_settlements_total", "Challenges whose invoice settled."),
		RevenueSats:         f.counter("l402d_revenue_sats_total", "Satoshis received for settled challenges."),
		SettlementLag:       f.histogram("l402d_settlement_lag_seconds", "Delay between LND settling an invoice and l402d recording it."),
		WatcherUp:           f.gauge("l402d_watcher_up", "1 while the settlement stream from LND is open."),
		WatcherReconnects:   f.counter("l402d_watcher_reconnects_total", "Times the settlement stream was reopened."),
		LNDUp:               f.gauge("l402d_lnd_up", "1 when the last call to LND succeeded."),
		DBUp:                f.gauge("l402d_db_up", "On --db.backend=postgres: 1 when the last check of the database succeeded."),
		SettlementLeader:    f.gauge("l402d_settlement_leader", "1 while this l402d runs the settlement watcher (on Postgres, one replica at a time)."),
		HTTPRequests:        f.counterVec("l402d_http_requests_total", "HTTP requests served, by surface, route and status code.", "surface", "route", "code"),
		HTTPLatency:         f.histogramVec("l402d_http_request_seconds", "HTTP request latency, by surface and route.", "surface", "route"),
		GateRequests:        f.counterVec("l402d_gate_requests_total", "Requests through the gate, by service and outcome.", "service", "outcome"),
		GateUpstreamLatency: f.histogramVec("l402d_gate_upstream_seconds", "Upstream latency through the gate, by service.", "service"),
		PaymentsSent:        f.counterVec("l402d_payments_total", "Outgoing payments, by outcome.", "outcome"),
		SpentSats:           f.counter("l402d_spent_sats_total", "Satoshis paid out, fees excluded."),
		FeesSats:            f.counter("l402d_fees_sats_total", "Routing fees paid, in satoshis."),
	}
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// CountConflicts exports f, the store's count of transactions run again
// after a conflict, as l402d_storage_conflicts_total.
func (m *Metrics) CountConflicts(f func() float64) {
	m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "l402d_storage_conflicts_total",
		Help: "Store transactions run again because a concurrent one changed what they read."}, f))
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// Since observes the seconds elapsed since start on h.
func Since(h prometheus.Observer, start time.Time) {
	h.Observe(time.Since(start).Seconds())
}

type factory struct{ r *prometheus.Registry }

func (f factory) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	f.r.MustRegister(c)
	return c
}

func (f factory) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	f.r.MustRegister(c)
	return c
}

func (f factory) gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	f.r.MustRegister(g)
	return g
}

func (f factory) histogram(name, help string) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: latencyBuckets})
	f.r.MustRegister(h)
	return h
}

func (f factory) histogramVec(name, help string, labels ...string) *prometheus.HistogramVec {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: latencyBuckets}, labels)
	f.r.MustRegister(h)
	return h
}
