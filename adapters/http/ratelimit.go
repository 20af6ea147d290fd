package httpapi

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
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

// Quota in blocks. Each instance takes an organization's quota from the
// shared counter (rate_limit_windows, one row per organization and hour) in
// blocks: one upsert adds k to the counter and the instance owns the k
// request numbers it skipped over. A request is let through when its number
// is within the limit, so the organization's requests across all instances
// never exceed it: numbers are handed out once, and a block given back is
// subtracted only for the numbers nobody used. Blocks shrink as the limit
// nears (to one request, as without blocks), and a block older than
// quotaBlockTTL is given back, in the same upsert that takes the next one;
// Server.ReturnQuota gives the rest back on shutdown. Until then an idle
// instance holds at most one block per organization, quota the others
// cannot use: the price of one round trip per block instead of per request.
// X-RateLimit-Remaining is counted from the request's number, so it is exact
// with one instance and lags other instances' unused blocks with several.
const (
	quotaBlockMax = 32
	quotaBlockTTL = 2 * time.Second
)

type quotaBlocks struct {
	mu   sync.Mutex
	orgs map[uuid.UUID]*quotaBlock
}

// quotaBlock is an organization's block on this instance: the left request
// numbers from next on, of the hour window, are this instance's to hand out;
// seen is the counter when it was taken.
type quotaBlock struct {
	mu         sync.Mutex
	window     time.Time
	next, left int
	seen       int
	taken      time.Time
}

func (q *quotaBlocks) of(org uuid.UUID) *quotaBlock {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.orgs == nil {
		q.orgs = map[uuid.UUID]*quotaBlock{}
	}
	b := q.orgs[org]
	if b == nil {
		b = &quotaBlock{}
		q.orgs[org] = b
	}
	return b
}

// unused is how many request numbers of the block are left.
func (b *quotaBlock) unused() int { return b.left }

// quotaBlockSize is how many requests to take at once when the counter
// stood at seen: a sixteenth of what is left, between 1 and quotaBlockMax.
func quotaBlockSize(limit, seen int) int {
	return min(quotaBlockMax, max(1, (limit-seen)/16))
}

// countRequest counts one request against the organization's budget for the
// current hour (from this instance's block, or taking a new block: one
// upsert, shared by every instance), sets the X-RateLimit headers, and
// answers 429 when the budget is spent. It tells whether to go on.
func (s *Server) countRequest(w http.ResponseWriter, r *http.Request, org uuid.UUID) bool {
	now := s.now().UTC()
	window := now.Truncate(time.Hour)
	reset := window.Add(time.Hour)
	limit := s.cfg.RateLimitPerHour
	b := s.quota.of(org)
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.window.Equal(window) {
		// A new hour: the old block's numbers count for nothing now.
		b.window, b.next, b.left, b.seen, b.taken = window, 0, 0, 0, time.Time{}
	}
	if b.unused() == 0 || now.Sub(b.taken) > quotaBlockTTL {
		k, back := quotaBlockSize(limit, b.seen), b.unused()
		var counter int
		err := s.deps.Pool.QueryRow(r.Context(), `
			INSERT INTO rate_limit_windows (organization_id, window_start, requests) VALUES ($1, $2, $3)
			ON CONFLICT (organization_id, window_start)
			DO UPDATE SET requests = rate_limit_windows.requests - $4 + $3
			RETURNING requests`, org, window, k, back).Scan(&counter)
		if err != nil {
			writeError(w, r, fmt.Errorf("rate limit: %w", err))
			return false
		}
		b.next, b.left, b.seen, b.taken = counter-k+1, k, counter, now
		if rand.IntN(100) == 0 {
			s.forgetOldWindows(r, window)
		}
	}
	used := b.next
	b.next++
	b.left--
	return setRateLimit(w, limit, used, now, reset, "hour")
}

// ReturnQuota gives the unused part of this instance's quota blocks back to
// the shared counters (call it on shutdown, after the last request).
func (s *Server) ReturnQuota(ctx context.Context) error {
	window := s.now().UTC().Truncate(time.Hour)
	s.quota.mu.Lock()
	defer s.quota.mu.Unlock()
	var errs []error
	for org, b := range s.quota.orgs {
		b.mu.Lock()
		back := b.unused()
		if back > 0 && b.window.Equal(window) {
			_, err := s.deps.Pool.Exec(ctx, `
				UPDATE rate_limit_windows SET requests = greatest(0, requests - $3)
				WHERE organization_id = $1 AND window_start = $2`, org, window, back)
			if err != nil {
				errs = append(errs, err)
			} else {
				b.left = 0
			}
		}
		b.mu.Unlock()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("rate limit: return quota: %w", err)
	}
	return nil
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
