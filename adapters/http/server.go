// Package httpapi is Companin's REST API: the /api/v1 routes, their envelopes
// and errors, authentication, tenancy, rate limits, idempotency and CORS. Writes
// go through commands, reads through queries; this package only translates
// HTTP to use cases and back.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/companin/companin/adapters/postgres/secrets"
	"github.com/companin/companin/adapters/replies"
	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/queries"
	"github.com/gorilla/mux"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// Projections is what the API needs of the consumer runtime
// (*messaging.Runtime): waiting until read models reflect a write, so that a
// client reading right after a 2xx sees what it wrote.
type Projections interface {
	WaitForProjections(ctx context.Context, pos es.Position, types ...string) error
}

// Config holds the settings of the API, parsed once by the command line.
type Config struct {
	// RateLimitPerHour is the number of requests one organization may make
	// per hour, over all instances (COMPANIN_RATE_LIMIT_PER_HOUR). 0 means 1000.
	RateLimitPerHour int
	// JWTSecret signs widget tokens (COMPANIN_JWT_SECRET). Empty: a key kept
	// in the database, created on first start and shared by every instance.
	JWTSecret string
	// MaxBodyBytes bounds JSON request bodies. 0 means 1 MiB.
	MaxBodyBytes int64
	// MaxUploadBytes bounds file uploads (routes registered with handleUpload). 0 means 20 MiB.
	MaxUploadBytes int64
	// ReplyWait is how long POST .../messages waits for the answer (COMPANIN_REPLY_WAIT). 0 means 30 s.
	ReplyWait time.Duration
	// WidgetTokenTTL is how long a widget token is valid. 0 means 1 h.
	WidgetTokenTTL time.Duration
	// WidgetTokenPerClient and WidgetTokenPerAddress bound the widget tokens
	// issued per minute for one client id and to one client address
	// (COMPANIN_WIDGET_TOKEN_PER_CLIENT, COMPANIN_WIDGET_TOKEN_PER_ADDRESS),
	// apart from the organization's API budget. 0 means 3000 and 60.
	WidgetTokenPerClient, WidgetTokenPerAddress int
	// ReadYourWritesWait bounds how long a write waits for the read models
	// to catch up before answering anyway, with the header
	// Companin-Read-Models: behind (COMPANIN_RYW_WAIT). 0 means 2 s.
	ReadYourWritesWait time.Duration
	// MaxStreamsPerOrg bounds the event streams (GET /events/stream and
	// NDJSON exports of GET /events) one organization keeps open on this
	// instance (COMPANIN_MAX_STREAMS_PER_ORG); past it, 429. 0 means 10.
	MaxStreamsPerOrg int
	// CredentialCacheTTL is how long an instance trusts a client it looked
	// up (its secret's hash, its organization's origins) when no
	// announcement on CredentialsChannel tells it to forget it sooner: the
	// bound on how long a revoked secret keeps working. 0 means 3 s.
	CredentialCacheTTL time.Duration
}

func (c Config) withDefaults() Config {
	if c.RateLimitPerHour <= 0 {
		c.RateLimitPerHour = 1000
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.MaxUploadBytes <= 0 {
		c.MaxUploadBytes = 20 << 20
	}
	if c.ReplyWait <= 0 {
		c.ReplyWait = 30 * time.Second
	}
	if c.WidgetTokenTTL <= 0 {
		c.WidgetTokenTTL = time.Hour
	}
	if c.WidgetTokenPerClient <= 0 {
		c.WidgetTokenPerClient = 3000
	}
	if c.WidgetTokenPerAddress <= 0 {
		c.WidgetTokenPerAddress = 60
	}
	if c.ReadYourWritesWait <= 0 {
		c.ReadYourWritesWait = 2 * time.Second
	}
	if c.CredentialCacheTTL <= 0 {
		c.CredentialCacheTTL = lookupTTL
	}
	if c.MaxStreamsPerOrg <= 0 {
		c.MaxStreamsPerOrg = 10
	}
	return c
}

// Deps are the collaborators of the API, wired by cmd/companin.
type Deps struct {
	Store es.Store
	Pool  *pgxpool.Pool
	// Runtime is the consumer runtime (*messaging.Runtime). Nil: writes do
	// not wait for read models (tests of pure HTTP behaviour only).
	Runtime Projections
	Config  Config
	// Metrics is the registry served on /metrics; nil: a fresh one.
	Metrics *prometheus.Registry
	// Logger; nil: slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Eraser, when App is nil, is the default App's: it destroys a data
	// subject's key on DELETE /contexts/{ref} (the
	// crypto-shredding store, *shred.Store). Nil: nothing is encrypted, so
	// erasure wipes read models but personal fields stay in the log.
	Eraser commands.Eraser
	// App holds the use cases, built once by cmd/companin (NewApp). Nil:
	// New builds them over Store and Pool (tests).
	App *App
	// Replies is the process's reply hub (subscribed to its notification
	// listener), given when the reply worker runs in this process or
	// another: POST .../messages then waits for the answer (Config.ReplyWait).
	// Nil: it answers 202 pending at once.
	Replies *replies.Hub
}

// App is what the API does: the write and the read use cases.
type App struct {
	Commands commands.Commands
	Queries  queries.Queries
}

// NewApp builds the use cases over the event store and the read models'
// database; eraser destroys an erased person's key (nil: none).
func NewApp(store es.Store, pool *pgxpool.Pool, eraser commands.Eraser, now func() time.Time) App {
	d := commands.Deps{Store: store, References: secrets.NewReferenceKeys(pool), Eraser: eraser, Now: now}
	if pool != nil {
		d.Responses = idempotencyRecords{pool: pool}
	}
	return App{Commands: commands.New(d), Queries: queries.New(pool)}
}

// Server holds the router and what every handler shares. Build it with New.
type Server struct {
	deps    Deps
	app     App
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	router  *mux.Router
	table   []route
	metrics *httpMetrics
	keys    *signingKeys
	clients ttlCache[queries.Client]
	// configOrigins caches widget configurations' origins for widget calls.
	configOrigins ttlCache[configEntry]
	head          logHead
	streams       streamSlots
	// quota is this instance's blocks of the organizations' request budgets.
	quota quotaBlocks
}

// route is a registered endpoint, kept to answer 405 with Allow and to
// describe the API in /api/v1/openapi.json.
type route struct {
	Method string
	Path   string // full path, e.g. /api/v1/assistants/{id}
	Scope  Scope
}

// Scope says who may call a route.
type Scope int

const (
	// ScopePublic routes need no credentials (health, widget-token, openapi).
	ScopePublic Scope = iota
	// ScopeAPI routes take an API key only; a widget token gets 403.
	ScopeAPI
	// ScopeWidget routes take an API key or a widget token.
	ScopeWidget
)

// APIPrefix is the base path of every versioned route.
const APIPrefix = "/api/v1"

// New builds the API. It does no I/O: the JWT signing key is loaded on first use.
func New(d Deps) *Server {
	s := &Server{deps: d, cfg: d.Config.withDefaults(), log: d.Logger, now: d.Now}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.deps.Metrics == nil {
		s.deps.Metrics = prometheus.NewRegistry()
	}
	s.metrics = newHTTPMetrics(s.deps.Metrics)
	s.keys = &signingKeys{configured: s.cfg.JWTSecret}
	s.clients.ttl = s.cfg.CredentialCacheTTL
	if d.App != nil {
		s.app = *d.App
	} else {
		s.app = NewApp(d.Store, d.Pool, d.Eraser, s.now)
	}
	s.router = mux.NewRouter()
	// No path cleaning: it answers with redirects, and we never redirect.
	s.router.SkipClean(true)
	s.router.NotFoundHandler = http.HandlerFunc(s.notFound)
	s.router.MethodNotAllowedHandler = http.HandlerFunc(s.methodNotAllowed)
	s.routes()
	return s
}

// Handler returns the whole API with its middleware: request id, panic
// recovery, header text checks, CORS, trailing-slash folding, then the router.
func (s *Server) Handler() http.Handler {
	var h http.Handler = s.router
	h = foldTrailingSlash(h)
	h = s.cors(h)
	h = checkHeaders(h)
	h = s.recoverer(h)
	h = s.requestID(h)
	return h
}

// handle registers an /api/v1 route (path without the prefix, e.g.
// "/assistants/{id}"). It answers with and without a trailing slash. The
// handler runs after authentication for scope, the rate limit and, for POST,
// idempotency; es.MetadataFrom(r.Context()) names the caller.
func (s *Server) handle(method, path string, scope Scope, h http.HandlerFunc) {
	s.register(method, APIPrefix+path, scope, s.cfg.MaxBodyBytes, h)
}

// handleUpload is handle with the upload body limit instead of the JSON one.
func (s *Server) handleUpload(method, path string, scope Scope, h http.HandlerFunc) {
	s.register(method, APIPrefix+path, scope, s.cfg.MaxUploadBytes, h)
}

func (s *Server) register(method, fullPath string, scope Scope, maxBody int64, h http.HandlerFunc) {
	s.table = append(s.table, route{Method: method, Path: fullPath, Scope: scope})
	methods := []string{method}
	if method == http.MethodGet {
		// HEAD is GET without the body (net/http drops it), as clients expect.
		methods = append(methods, http.MethodHead)
	}
	s.router.Handle(fullPath, s.wrap(method, fullPath, scope, maxBody, h)).Methods(methods...)
}

// wrap puts the per-route middleware around h, innermost last.
func (s *Server) wrap(method, path string, scope Scope, maxBody int64, h http.HandlerFunc) http.Handler {
	var next http.Handler = withResponseHeader(h)
	if method == http.MethodPost && scope != ScopePublic {
		next = s.idempotent(next)
	}
	next = limitBody(maxBody, next)
	next = checkParams(next)
	if scope != ScopePublic {
		// After authentication and the rate limit, so that a 413 or a
		// refused parameter carries the rate-limit headers too.
		next = s.rateLimited(next)
		next = s.authenticated(scope, next)
	}
	return s.metrics.instrument(method, path, next)
}

// HeaderReadModels says, on a write's answer, that the read models did not
// reflect the write within the bound (COMPANIN_RYW_WAIT): the write stands,
// the answer comes from the command's result, and a read right after it may
// not show it yet.
const HeaderReadModels = "Companin-Read-Models"

// responseHeaderKey carries the response's header map in the request context,
// so that waitForProjections can set HeaderReadModels.
type responseHeaderKey struct{}

// withResponseHeader gives waitForProjections the response header of the request.
func withResponseHeader(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), responseHeaderKey{}, w.Header())))
	})
}

// waitForProjections gives read-your-writes: it returns once the read models
// reflect the log up to pos, or after the configured bound; then the write
// still succeeded, the answer says Companin-Read-Models: behind, and the
// read models catch up soon after.
//
// types, when given, are the types of the events written: only the read
// models that show such events are waited for.
func (s *Server) waitForProjections(r *http.Request, pos es.Position, types ...string) {
	if s.deps.Runtime == nil || pos == es.Start {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadYourWritesWait)
	defer cancel()
	if err := s.deps.Runtime.WaitForProjections(ctx, pos, types...); err != nil {
		if h, ok := r.Context().Value(responseHeaderKey{}).(http.Header); ok {
			h.Set(HeaderReadModels, "behind")
		}
		s.log.WarnContext(ctx, "read models behind after write", "position", pos, "err", err)
	}
}
