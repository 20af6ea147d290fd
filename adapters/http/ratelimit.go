package httpapi

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
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
	return setRateLimit(w, limit, used, now, reset, "hour")
}

// setRateLimit sets the X-RateLimit headers of a window with limit requests
// of which used are spent, and answers 429 when it is over. It tells whether
// to go on.
func setRateLimit(w http.ResponseWriter, limit, used int, now, reset time.Time, per string) bool {
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(0, limit-used)))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	if used > limit {
		retry := int(reset.Sub(now).Seconds()) + 1
		h.Set("Retry-After", strconv.Itoa(retry))
		writeProblem(w, http.StatusTooManyRequests,
			fmt.Sprintf("Rate limit exceeded - %d requests per %s; retry after %d seconds", limit, per, retry), "rate_limited", nil)
		return false
	}
	return true
}

// rateLimitHeaders sets the X-RateLimit headers of the organization's
// current window without spending a request: for answers refused after the
// caller was identified (scope, origin), which still say where it stands.
func (s *Server) rateLimitHeaders(w http.ResponseWriter, r *http.Request, org uuid.UUID) {
	now := s.now().UTC()
	window := now.Truncate(time.Hour)
	var used int
	err := s.deps.Pool.QueryRow(r.Context(), `
		SELECT coalesce((SELECT requests FROM rate_limit_windows WHERE organization_id = $1 AND window_start = $2), 0)`,
		org, window).Scan(&used)
	if err != nil {
		loggerFrom(r).WarnContext(r.Context(), "rate limit headers", "err", err)
		return
	}
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(s.cfg.RateLimitPerHour))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(0, s.cfg.RateLimitPerHour-used)))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(window.Add(time.Hour).Unix(), 10))
}

// widgetTokenWindow is the widget-token limits' window.
const widgetTokenWindow = time.Minute

// widgetTokenLimited counts a widget-token request against the limits of its
// client address and, when the body named one, its client id (known or not:
// unknown ids are limited too), one upsert for both, shared by every
// instance. The headers show the tighter of the two; over either it answers
// 429. It tells whether to go on.
func (s *Server) widgetTokenLimited(w http.ResponseWriter, r *http.Request, clientID string) bool {
	now := s.now().UTC()
	window := now.Truncate(widgetTokenWindow)
	reset := window.Add(widgetTokenWindow)
	buckets := []string{"addr:" + clientAddress(r)}
	limits := []int{s.cfg.WidgetTokenPerAddress}
	if clientID != "" {
		// Client first, address second in every statement: concurrent
		// upserts lock rows in one order and cannot deadlock.
		buckets = []string{"client:" + clientID, buckets[0]}
		limits = []int{s.cfg.WidgetTokenPerClient, limits[0]}
	}
	rows, err := s.deps.Pool.Query(r.Context(), `
		INSERT INTO widget_token_windows (bucket, window_start, requests)
		SELECT b, $2, 1 FROM unnest($1::text[]) WITH ORDINALITY AS t(b, i) ORDER BY i
		ON CONFLICT (bucket, window_start) DO UPDATE SET requests = widget_token_windows.requests + 1
		RETURNING bucket, requests`, buckets, window)
	if err != nil {
		writeError(w, r, fmt.Errorf("widget token limit: %w", err))
		return false
	}
	used := map[string]int{}
	for rows.Next() {
		var b string
		var n int
		if err := rows.Scan(&b, &n); err != nil {
			rows.Close()
			writeError(w, r, fmt.Errorf("widget token limit: %w", err))
			return false
		}
		used[b] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		writeError(w, r, fmt.Errorf("widget token limit: %w", err))
		return false
	}
	if rand.IntN(1000) == 0 {
		if _, err := s.deps.Pool.Exec(r.Context(), `DELETE FROM widget_token_windows WHERE window_start < $1`, window); err != nil {
			loggerFrom(r).WarnContext(r.Context(), "widget token limit cleanup", "err", err)
		}
	}
	// The bucket with the fewest requests left decides the headers.
	tight := 0
	for i := range buckets {
		if limits[i]-used[buckets[i]] < limits[tight]-used[buckets[tight]] {
			tight = i
		}
	}
	return setRateLimit(w, limits[tight], used[buckets[tight]], now, reset, "minute")
}

// clientAddress is the address a request came from, as the widget-token
// limits count it: an IPv6 client by its /64, which one subscriber usually
// holds whole.
func clientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// forgetOldWindows deletes counters of past hours now and then.
func (s *Server) forgetOldWindows(r *http.Request, current time.Time) {
	if _, err := s.deps.Pool.Exec(r.Context(), `DELETE FROM rate_limit_windows WHERE window_start < $1`, current.Add(-time.Hour)); err != nil {
		loggerFrom(r).WarnContext(r.Context(), "rate limit cleanup", "err", err)
	}
}
