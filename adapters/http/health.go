package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Readiness is optionally implemented by the consumer runtime: whether the
// projections have caught up with the log (an instance that is far behind
// would answer reads with stale data).
type Readiness interface {
	Ready(ctx context.Context) error
}

// healthz says the process is alive; it touches nothing.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeData(w, r, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz says whether this instance should get traffic: the database answers
// and the projections are caught up.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{"database": "ok", "projections": "ok"}
	ready := true
	if err := s.deps.Pool.Ping(ctx); err != nil {
		checks["database"] = "unreachable"
		ready = false
	}
	if rd, ok := s.deps.Runtime.(Readiness); ok {
		if err := rd.Ready(ctx); err != nil {
			checks["projections"] = "behind: " + err.Error()
			ready = false
		}
	}
	if !ready {
		detail := "Not ready"
		env := envelope{Status: "error", StatusCode: http.StatusServiceUnavailable, Detail: &detail, Data: checks}
		writeJSON(w, http.StatusServiceUnavailable, env)
		return
	}
	writeData(w, r, http.StatusOK, checks)
}

func (s *Server) metricsHandler(w http.ResponseWriter, r *http.Request) {
	promhttp.HandlerFor(s.deps.Metrics, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}
