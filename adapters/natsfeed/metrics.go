package natsfeed

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the feed's counters; a nil *metrics records nothing.
type metrics struct {
	parkedTotal  *prometheus.CounterVec
	omittedTotal *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	return &metrics{
		parkedTotal: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "companin", Subsystem: "feed", Name: "parked_total",
			Help: "Events the NATS feed parked instead of publishing (see table feed_parked).",
		}, []string{"stream"})),
		omittedTotal: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "companin", Subsystem: "feed", Name: "data_omitted_total",
			Help: "Events the NATS feed published without their data, being too large for the server.",
		}, []string{"stream"})),
	}
}

func register(reg prometheus.Registerer, c *prometheus.CounterVec) *prometheus.CounterVec {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
		panic(err)
	}
	return c
}

func (m *metrics) parked(stream string) {
	if m != nil {
		m.parkedTotal.WithLabelValues(stream).Inc()
	}
}

func (m *metrics) omitted(stream string) {
	if m != nil {
		m.omittedTotal.WithLabelValues(stream).Inc()
	}
}
