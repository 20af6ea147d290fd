package httpapi

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// rateLimited counts the request against its organization's hourly budget.
func (s *Server) rateLimited(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.countRequest(w, r, principalOf(r).OrganizationID) {
			next.ServeHTTP(w, r)
		}
	})
}

// countRequest adds one request to the organization's counter for the current
// hour (one upsert, shared by every instance), sets the X-RateLimit headers,
// and answers 429 when the budget is spent. It tells whether to go on.
func (s *Server) countRequest(w http.ResponseWriter, r *http.Request, org uuid.UUID) bool {
	now := s.now().UTC()
	window := now.Truncate(time.Hour)
	reset := window.Add(time.Hour)
	limit := s.cfg.RateLimitPerHour
	var used int
	err := s.deps.Pool.QueryRow(r.Context(), `
		INSERT INTO rate_limit_windows (organization_id, window_start, requests) VALUES ($1, $2, 1)
		ON CONFLICT (organization_id, window_start)
		DO UPDATE SET requests = rate_limit_windows.requests + 1
		RETURNING requests`, org, window).Scan(&used)
	if err != nil {
		writeError(w, r, fmt.Errorf("rate limit: %w", err))
		return false
	}
	if rand.IntN(1000) == 0 {
		s.forgetOldWindows(r, window)
	}
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(0, limit-used)))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	if used > limit {
		retry := int(reset.Sub(now).Seconds()) + 1
		h.Set("Retry-After", strconv.Itoa(retry))
		writeProblem(w, http.StatusTooManyRequests,
			fmt.Sprintf("Rate limit exceeded - %d requests per hour; retry after %d seconds", limit, retry), "rate_limited", nil)
		return false
	}
	return true
}

// forgetOldWindows deletes counters of past hours now and then.
func (s *Server) forgetOldWindows(r *http.Request, current time.Time) {
	if _, err := s.deps.Pool.Exec(r.Context(), `DELETE FROM rate_limit_windows WHERE window_start < $1`, current.Add(-time.Hour)); err != nil {
		loggerFrom(r).WarnContext(r.Context(), "rate limit cleanup", "err", err)
	}
}
