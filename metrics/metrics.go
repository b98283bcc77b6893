// Package metrics exposes a worker's Prometheus metrics: the Temporal SDK's
// own (task latencies, polls, failures) and Bulwark's, which say whether the
// data is safe — when each database last had a good backup, verification,
// copy and drill, how big and how slow they were, and how old the newest
// verified backup is (the recovery point actually reached).
package metrics

import (
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"
)

// Bulwark holds the registry of one worker. Its methods are safe on a nil
// receiver, so activities can record unconditionally.
type Bulwark struct {
	reg *prometheus.Registry

	lastSuccess *prometheus.GaugeVec
	failures    *prometheus.CounterVec
	duration    *prometheus.GaugeVec
	stored      *prometheus.GaugeVec
	image       *prometheus.GaugeVec
	ok          *prometheus.GaugeVec
	rpoAge      *prometheus.GaugeVec

	sdk *sdkHandler
}

// New creates the registry with Bulwark's series and the SDK adapter.
func New() *Bulwark {
	reg := prometheus.NewRegistry()
	b := &Bulwark{
		reg: reg,
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bulwark_last_success_timestamp_seconds",
			Help: "Unix time of the last successful operation (backup, verify, replicate, restore, drill) per database and destination.",
		}, []string{"database", "operation", "destination"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulwark_operation_failures_total",
			Help: "Operations that failed or found problems, per database.",
		}, []string{"database", "operation"}),
		duration: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bulwark_last_duration_seconds",
			Help: "How long the last successful operation took.",
		}, []string{"database", "operation"}),
		stored: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bulwark_backup_stored_bytes",
			Help: "Bytes the last backup stored (compressed, encrypted), by type.",
		}, []string{"database", "type"}),
		image: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bulwark_backup_image_bytes",
			Help: "Size of the database image in the last backup.",
		}, []string{"database"}),
		ok: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bulwark_check_ok",
			Help: "1 when the last verification or drill passed, 0 when it failed.",
		}, []string{"database", "check"}),
		rpoAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bulwark_rpo_age_seconds",
			Help: "Age of the newest verified backup when it was last measured: the data a restore now would lose.",
		}, []string{"database"}),
	}
	reg.MustRegister(b.lastSuccess, b.failures, b.duration, b.stored, b.image, b.ok, b.rpoAge,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	b.sdk = &sdkHandler{reg: reg, mu: &sync.Mutex{}, labels: map[string][]string{},
		counters: map[string]*prometheus.CounterVec{}, gauges: map[string]*prometheus.GaugeVec{}, timers: map[string]*prometheus.HistogramVec{}}
	return b
}

// Succeeded records a successful operation that took d.
func (b *Bulwark) Succeeded(database, operation, destination string, at time.Time, d time.Duration) {
	if b == nil {
		return
	}
	b.lastSuccess.WithLabelValues(database, operation, destination).Set(float64(at.UnixNano()) / 1e9)
	b.duration.WithLabelValues(database, operation).Set(d.Seconds())
}

// Failed counts a failed operation.
func (b *Bulwark) Failed(database, operation string) {
	if b == nil {
		return
	}
	b.failures.WithLabelValues(database, operation).Inc()
}

// Backup records the sizes of a finished backup.
func (b *Bulwark) Backup(database, typ string, stored, image int64) {
	if b == nil {
		return
	}
	b.stored.WithLabelValues(database, typ).Set(float64(stored))
	b.image.WithLabelValues(database).Set(float64(image))
}

// Check records whether a verification or drill passed.
func (b *Bulwark) Check(database, check string, passed bool) {
	if b == nil {
		return
	}
	v := 0.0
	if passed {
		v = 1
	}
	b.ok.WithLabelValues(database, check).Set(v)
}

// RPOAge records the age of the newest verified backup.
func (b *Bulwark) RPOAge(database string, age time.Duration) {
	if b == nil {
		return
	}
	b.rpoAge.WithLabelValues(database).Set(age.Seconds())
}

// SDKHandler is the Temporal SDK's metrics handler, reporting into the
// same registry (client.Options.MetricsHandler).
func (b *Bulwark) SDKHandler() client.MetricsHandler { return b.sdk }

// Serve listens on addr and serves /metrics until the listener fails. It
// returns the bound address (useful with port 0) once listening.
func (b *Bulwark) Serve(addr string) (string, func() error, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(b.reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	return l.Addr().String(), srv.Close, nil
}

// sdkHandler adapts the SDK's metrics to Prometheus. The SDK names a
// metric and attaches tags as it goes; Prometheus wants a fixed label set
// per name, so each name gets its label set from its first use, and a later
// use with other tags fills missing labels with "" and drops extra ones.
type sdkHandler struct {
	reg  *prometheus.Registry
	tags map[string]string
	// mu guards the maps, which every handler derived by WithTags shares.
	mu       *sync.Mutex
	counters map[string]*prometheus.CounterVec
	gauges   map[string]*prometheus.GaugeVec
	timers   map[string]*prometheus.HistogramVec
	labels   map[string][]string
}

func (h *sdkHandler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := make(map[string]string, len(h.tags)+len(tags))
	for k, v := range h.tags {
		merged[k] = v
	}
	for k, v := range tags {
		merged[k] = v
	}
	c := *h
	c.tags = merged
	return &c
}

// labelValues returns the label names fixed for metric name and this
// handler's values for them.
func (h *sdkHandler) labelValues(name string) ([]string, []string) {
	names, ok := h.labels[name]
	if !ok {
		for k := range h.tags {
			names = append(names, sanitize(k))
		}
		sort.Strings(names)
		names = slices.Compact(names)
		h.labels[name] = names
	}
	values := make([]string, len(names))
	for k, v := range h.tags {
		if i := slices.Index(names, sanitize(k)); i >= 0 {
			values[i] = v
		}
	}
	return names, values
}

// vecFor returns the vector of metric name (created and registered on
// first use with the label set of this handler's tags) and this handler's
// label values; ok is false when the name clashes with another metric.
func vecFor[V prometheus.Collector](h *sdkHandler, vecs map[string]V, name string, build func(labels []string) V) (vec V, values []string, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	labels, values := h.labelValues(name)
	vec, ok = vecs[name]
	if !ok {
		vec = build(labels)
		if h.reg.Register(vec) != nil {
			return vec, nil, false
		}
		vecs[name] = vec
	}
	return vec, values, true
}

func (h *sdkHandler) Counter(name string) client.MetricsCounter {
	n := sanitize(name)
	vec, values, ok := vecFor(h, h.counters, n, func(labels []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: n, Help: "Temporal SDK counter " + name}, labels)
	})
	if !ok {
		return nopCounter{}
	}
	c := vec.WithLabelValues(values...)
	return counterFunc(func(d int64) { c.Add(float64(d)) })
}

func (h *sdkHandler) Gauge(name string) client.MetricsGauge {
	n := sanitize(name)
	vec, values, ok := vecFor(h, h.gauges, n, func(labels []string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: n, Help: "Temporal SDK gauge " + name}, labels)
	})
	if !ok {
		return nopGauge{}
	}
	return gaugeFunc(vec.WithLabelValues(values...).Set)
}

func (h *sdkHandler) Timer(name string) client.MetricsTimer {
	n := sanitize(name) + "_seconds"
	vec, values, ok := vecFor(h, h.timers, n, func(labels []string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: n, Help: "Temporal SDK timer " + name, Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, labels)
	})
	if !ok {
		return nopTimer{}
	}
	o := vec.WithLabelValues(values...)
	return timerFunc(func(d time.Duration) { o.Observe(d.Seconds()) })
}

// sanitize turns an SDK metric or tag name into a Prometheus one.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

type counterFunc func(int64)

func (f counterFunc) Inc(d int64) { f(d) }

type gaugeFunc func(float64)

func (f gaugeFunc) Update(v float64) { f(v) }

type timerFunc func(time.Duration)

func (f timerFunc) Record(d time.Duration) { f(d) }

type nopCounter struct{}

func (nopCounter) Inc(int64) {}

type nopGauge struct{}

func (nopGauge) Update(float64) {}

type nopTimer struct{}

func (nopTimer) Record(time.Duration) {}
