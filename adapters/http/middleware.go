package httpapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
	"github.com/gorilla/mux"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	loggerKey
	principalKey
)

// requestID gives every request an id: the client's X-Request-ID when it is
// sane, else a new UUID. It is answered on every response and logged.
func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-ID")
		if !saneRequestID(id) {
			id = uuid.NewString()
		}
		w.Header().Set("X-Request-ID", id)
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		ctx = context.WithValue(ctx, loggerKey, s.log.With("request_id", id))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

func requestIDOf(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey).(string)
	return id
}

func loggerFrom(r *http.Request) *slog.Logger {
	if l, ok := r.Context().Value(loggerKey).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

// recoverer turns a panic in a handler into a logged 500 envelope, never a
// stack trace on the wire.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			loggerFrom(r).ErrorContext(r.Context(), "panic in handler", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p))
			if !sw.wroteHeader {
				writeProblem(sw, http.StatusInternalServerError, "Internal server error", "internal_error", nil)
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// CORS: what browsers may send and read.
var (
	corsAllowHeaders  = "Authorization, X-API-Key, X-API-Secret, Content-Type, Idempotency-Key, X-Request-ID, Last-Event-ID, Accept"
	corsExposeHeaders = "X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, X-Request-ID, Retry-After, Idempotent-Replayed"
	corsAllowMethods  = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
)

// cors lets browsers call every endpoint with credentials: the Origin is
// echoed (never "*"), and preflights are answered here for every path.
// Whether an origin may use a widget token is decided by authentication.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		// "null" is the Origin of sandboxed frames, file: pages and
		// redirects across origins: any page can send it, so echoing it
		// with credentials would let every page read the answers.
		if origin == "" || origin == "null" {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Add("Vary", "Origin")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		next.ServeHTTP(w, r)
	})
}

// foldTrailingSlash routes /x/ like /x, for every method, without a redirect.
func foldTrailingSlash(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") {
			r2 := r.Clone(r.Context())
			r2.URL.Path = strings.TrimRight(p, "/")
			if r2.URL.Path == "" {
				r2.URL.Path = "/"
			}
			if r2.URL.RawPath != "" {
				r2.URL.RawPath = strings.TrimRight(r2.URL.RawPath, "/")
			}
			r = r2
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody caps what a handler can read; reading past it fails with
// *http.MaxBytesError, which decodeJSON answers with 413.
func limitBody(max int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			writeProblem(w, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("Request body too large: at most %d bytes", max), "body_too_large", nil)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, max)
		next.ServeHTTP(w, r)
	})
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodOptions {
		w.Header().Set("Allow", strings.Join(s.allowedMethods(r), ", "))
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.limitHeadersIfAuthenticated(w, r)
	writeProblem(w, http.StatusNotFound, "Not found: no route "+r.URL.Path, "route_not_found", nil)
}

// limitHeadersIfAuthenticated gives an answer outside every route (404,
// 405) the rate-limit headers when the caller is identified, without
// spending a request (as auth.go does for a refused scope or origin); a
// caller without valid credentials gets the answer alone.
func (s *Server) limitHeadersIfAuthenticated(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-API-Key") == "" && r.Header.Get("Authorization") == "" {
		return
	}
	if p, _ := s.authenticate(r, ScopeWidget); p.OrganizationID != uuid.Nil {
		s.rateLimitHeaders(w, r, p.OrganizationID)
	}
}

func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	allowed := s.allowedMethods(r)
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	if r.Method == http.MethodOptions {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	s.limitHeadersIfAuthenticated(w, r)
	writeProblem(w, http.StatusMethodNotAllowed,
		fmt.Sprintf("Method %s not allowed here; allowed: %s", r.Method, strings.Join(allowed, ", ")), "method_not_allowed", nil)
}

// allowedMethods lists the methods some route answers for r's path.
func (s *Server) allowedMethods(r *http.Request) []string {
	var methods []string
	for _, rt := range s.table {
		if slices.Contains(methods, rt.Method) {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = rt.Method
		var m mux.RouteMatch
		if s.router.Match(probe, &m) && m.MatchErr == nil {
			methods = append(methods, rt.Method)
		}
	}
	if len(methods) > 0 {
		methods = append(methods, http.MethodOptions)
	}
	slices.Sort(methods)
	return methods
}

// statusWriter remembers the status, and passes Flush, Hijack and Unwrap on
// so that streaming handlers work behind it.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if h, ok := w.ResponseWriter.(http.Hijacker); ok {
		return h.Hijack()
	}
	return nil, nil, errors.New("hijack not supported")
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// textHeaders are the request headers whose values are looked up in the
// database or stored: invalid UTF-8 in them (net/http already refuses NUL)
// would fail there, as a 500.
var textHeaders = []string{"X-API-Key", "X-API-Secret", "Authorization", "Idempotency-Key", "Last-Event-ID"}

// checkHeaders answers 422 naming the header when one of textHeaders is not
// valid text.
func checkHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, name := range textHeaders {
			for _, v := range r.Header.Values(name) {
				if p := es.CheckText(v); p != "" {
					writeError(w, r, invalid(FieldError{Field: name, Message: "(a header) " + p}))
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}
