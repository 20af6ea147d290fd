package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/companin/companin/domain/es"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Readiness is optionally implemented by the consumer runtime: whether the
// projections have caught up with the log (an instance that is far behind
// would answer reads with stale data).
type Readiness interface {
	Ready(ctx context.Context) error
}

// ParkedReporter is optionally implemented by the consumer runtime: how many
// events each consumer parked (could not apply, and went on without).
// Readiness reports them without failing: the read models are current for
// everything else, and an operator retries them (companin projections retry).
type ParkedReporter interface {
	Parked(ctx context.Context) (map[string]int, error)
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
	} else if ready && s.deps.Runtime != nil {
		if err := s.projectionsCaughtUp(ctx); err != nil {
			checks["projections"] = "behind"
			loggerFrom(r).WarnContext(ctx, "not ready", "err", err)
			ready = false
		}
	}
	if pr, ok := s.deps.Runtime.(ParkedReporter); ok {
		checks["parked_events"] = parkedDetail(ctx, pr)
	}
	if !ready {
		detail := "Not ready"
		env := envelope{Status: "error", StatusCode: http.StatusServiceUnavailable, Detail: &detail, Data: checks}
		writeJSON(w, http.StatusServiceUnavailable, env)
		return
	}
	writeData(w, r, http.StatusOK, checks)
}

// parkedDetail is "none", or the parked events per consumer and what to do.
func parkedDetail(ctx context.Context, pr ParkedReporter) string {
	counts, err := pr.Parked(ctx)
	if err != nil {
		return "unknown"
	}
	if len(counts) == 0 {
		return "none"
	}
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s: %d", n, counts[n])
	}
	return strings.Join(parts, ", ") + " (see companin projections parked)"
}

func (s *Server) metricsHandler(w http.ResponseWriter, r *http.Request) {
	promhttp.HandlerFor(s.deps.Metrics, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// logHead remembers how far readyz has read the log, so that each check reads
// only what was appended since the last one.
type logHead struct {
	mu  sync.Mutex
	pos es.Position
}

const (
	headPage     = 1000
	headMaxPages = 20
	caughtUpWait = time.Second
)

// projectionsCaughtUp finds the log's current head and asks the runtime
// whether every projection has reached it (within a second).
func (s *Server) projectionsCaughtUp(ctx context.Context) error {
	s.head.mu.Lock()
	defer s.head.mu.Unlock()
	for page := 0; ; page++ {
		if page == headMaxPages {
			return errors.New("still reading the log to find its head")
		}
		events, err := s.deps.Store.ReadAll(ctx, s.head.pos, headPage, es.Filter{})
		if err != nil {
			return err
		}
		if len(events) > 0 {
			s.head.pos = events[len(events)-1].Position
		}
		if len(events) < headPage {
			break
		}
	}
	wait, cancel := context.WithTimeout(ctx, caughtUpWait)
	defer cancel()
	return s.deps.Runtime.WaitForProjections(wait, s.head.pos)
}
