package bff

import "github.com/prometheus/client_golang/prometheus"

// metrics are the server's Prometheus series. They are registered on the registry given to New, never on
// the global default, so tests can build many servers.
type metrics struct {
	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	beadCalls       *prometheus.CounterVec
	beadDuration    *prometheus.HistogramVec
	refreshes       *prometheus.CounterVec
	incidents       *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "beadbff_http_requests_total", Help: "Requests served, by method, route and status.",
		}, []string{"method", "route", "status"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "beadbff_http_request_duration_seconds", Help: "Time to serve a request, by method and route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}, []string{"method", "route"}),
		beadCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "beadbff_bead_calls_total", Help: "Calls to Bead's payments API, by operation and outcome (HTTP status, ok, transport_error).",
		}, []string{"op", "status"}),
		beadDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "beadbff_bead_call_duration_seconds", Help: "Latency of calls to Bead's payments API, by operation.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"op"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "beadbff_token_refreshes_total", Help: "Token refreshes, by outcome (ok_ahead, ok_after_401, reused_newer, invalid_grant, ...).",
		}, []string{"outcome"}),
		incidents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "beadbff_incidents_total", Help: "Diagnosed failures of calls to Bead, by cause.",
		}, []string{"cause"}),
	}
	reg.MustRegister(m.requests, m.requestDuration, m.beadCalls, m.beadDuration, m.refreshes, m.incidents)
	return m
}
