package messaging

import (
	"context"
	"errors"
	"time"

	"github.com/companin/companin/domain/es"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the consumer gauges and counters; a nil *metrics records nothing.
type metrics struct {
	processed  *prometheus.CounterVec
	failures   *prometheus.CounterVec
	lagEvents  *prometheus.GaugeVec
	lagSeconds *prometheus.GaugeVec
	parked     *prometheus.CounterVec
	parkedEv   *prometheus.CounterVec
	leader     *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	m := &metrics{
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "companin", Subsystem: "consumer", Name: "processed_total",
			Help: "Events a consumer committed (projections, dispatchers) or handled (workers).",
		}, []string{"consumer"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "companin", Subsystem: "consumer", Name: "failures_total",
			Help: "Failed attempts to handle an event.",
		}, []string{"consumer"}),
		lagEvents: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "companin", Subsystem: "consumer", Name: "lag_events",
			Help: "Events in the log after the consumer's checkpoint, as far as its reader has seen.",
		}, []string{"consumer"}),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "companin", Subsystem: "consumer", Name: "lag_seconds",
			Help: "Age of the last event the consumer processed when it processed it.",
		}, []string{"consumer"}),
		parked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "companin", Subsystem: "consumer", Name: "jobs_parked_total",
			Help: "Worker jobs parked as failed after too many attempts.",
		}, []string{"consumer"}),
		parkedEv: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "companin", Subsystem: "consumer", Name: "parked_total",
			Help: "Events a projection or dispatcher could not apply and parked (companin projections parked).",
		}, []string{"consumer"}),
		leader: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "companin", Subsystem: "consumer", Name: "leader",
			Help: "1 while this process leads the consumer.",
		}, []string{"consumer"}),
	}
	m.processed = register(reg, m.processed)
	m.failures = register(reg, m.failures)
	m.lagEvents = register(reg, m.lagEvents)
	m.lagSeconds = register(reg, m.lagSeconds)
	m.parked = register(reg, m.parked)
	m.parkedEv = register(reg, m.parkedEv)
	m.leader = register(reg, m.leader)
	return m
}

// register registers c, or returns the collector already registered under its
// name (two runtimes in one process share a registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

func (m *metrics) done(consumer string, e es.Event, head int64) {
	if m == nil {
		return
	}
	m.processed.WithLabelValues(consumer).Inc()
	m.lagEvents.WithLabelValues(consumer).Set(float64(max(head-e.GlobalPosition, 0)))
	if !e.RecordedAt.IsZero() {
		m.lagSeconds.WithLabelValues(consumer).Set(time.Since(e.RecordedAt).Seconds())
	}
}

func (m *metrics) caughtUp(consumer string) {
	if m == nil {
		return
	}
	m.lagEvents.WithLabelValues(consumer).Set(0)
}

func (m *metrics) failed(consumer string) {
	if m == nil {
		return
	}
	m.failures.WithLabelValues(consumer).Inc()
}

func (m *metrics) parkedJob(consumer string) {
	if m == nil {
		return
	}
	m.parked.WithLabelValues(consumer).Inc()
}

func (m *metrics) parkedEvent(consumer string) {
	if m == nil {
		return
	}
	m.parkedEv.WithLabelValues(consumer).Inc()
}

func (m *metrics) leading(consumer string, yes bool) {
	if m == nil {
		return
	}
	v := 0.0
	if yes {
		v = 1
	}
	m.leader.WithLabelValues(consumer).Set(v)
}

// jobsCollector reports, at scrape time, how many jobs wait and how many are
// parked, per worker: the backlog the lag gauges of a log reader cannot show.
type jobsCollector struct {
	pool   *pgxpool.Pool
	desc   *prometheus.Desc
	parked *prometheus.Desc
}

func newJobsCollector(pool *pgxpool.Pool) *jobsCollector {
	return &jobsCollector{pool: pool, desc: prometheus.NewDesc("companin_consumer_jobs",
		"Worker jobs by status: pending (waiting or running) and failed (parked).", []string{"consumer", "status"}, nil),
		parked: prometheus.NewDesc("companin_consumer_parked_events",
			"Events a consumer parked that no retry has resolved yet (companin projections parked).", []string{"consumer"}, nil)}
}

func (c *jobsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc; ch <- c.parked }

func (c *jobsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if counts, err := ParkedCounts(ctx, c.pool); err != nil {
		ch <- prometheus.NewInvalidMetric(c.parked, err)
	} else {
		for name, n := range counts {
			ch <- prometheus.MustNewConstMetric(c.parked, prometheus.GaugeValue, float64(n), name)
		}
	}
	rows, err := c.pool.Query(ctx, `
		SELECT worker, 'pending', count(*) FROM consumer_jobs WHERE status = 'pending' GROUP BY worker
		UNION ALL
		SELECT worker, 'failed', count(*) FROM consumer_jobs WHERE status = 'failed' GROUP BY worker`)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var worker, status string
		var n int64
		if err := rows.Scan(&worker, &status, &n); err != nil {
			ch <- prometheus.NewInvalidMetric(c.desc, err)
			return
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), worker, status)
	}
}
