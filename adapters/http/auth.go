package httpapi

import (
	"context"
	"errors"
	"fmt"
	"github.com/companin/companin/adapters/postgres/secrets"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/companin/companin/adapters/postgres/notify"
	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/organization"
	"github.com/companin/companin/queries"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Principal is who is calling: an organization, through one of its API
// clients, with its secret (Widget false) or with a widget token.
type Principal struct {
	OrganizationID uuid.UUID
	ClientID       string
	Widget         bool
	// TokenID is the widget token's id (jti): one visitor's browser.
	TokenID string
}

// Actor is how events name this caller in their metadata.
func (p Principal) Actor() string {
	if p.Widget {
		return "widget:" + p.ClientID
	}
	return "api_key:" + p.ClientID
}

// principalOf returns the authenticated caller of a route with a scope other
// than ScopePublic.
func principalOf(r *http.Request) Principal {
	p, _ := r.Context().Value(principalKey).(Principal)
	return p
}

const (
	widgetScope = "widget"
	tokenIssuer = "companin"
)

// widgetClaims are the claims of a widget token. The organization is in the
// token, but every call still looks the client up, so that revoking a client
// or changing allowed origins takes effect within seconds.
type widgetClaims struct {
	OrganizationID string `json:"org"`
	Scope          string `json:"scope"`
	// ConfigID is the widget configuration the token was issued for, when
	// the widget named one: every call with the token must then come from an
	// origin that configuration allows, as well as the organization.
	ConfigID string `json:"cfg,omitempty"`
	jwt.RegisteredClaims
}

var (
	errAuthRequired   = httpError(http.StatusUnauthorized, "authentication_required", "Authentication required - send X-API-Key and X-API-Secret, or Authorization: Bearer <widget token>")
	errBadCredentials = httpError(http.StatusUnauthorized, "invalid_credentials", "Authentication required - invalid API key or secret")
	errBadToken       = httpError(http.StatusUnauthorized, "invalid_token", "Authentication required - invalid or expired token")
	errWidgetScope    = httpError(http.StatusForbidden, "insufficient_scope", "Forbidden - a widget token cannot call this endpoint; use an API key and secret")
	errOrigin         = httpError(http.StatusForbidden, "origin_not_allowed", "Forbidden - this Origin is not in the organization's allowed origins")
)

// authenticated admits callers of scope: an API key pair, or for ScopeWidget
// also a widget token from an allowed origin. It puts the Principal and the
// es.Metadata for events into the request context.
func (s *Server) authenticated(scope Scope, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r, scope)
		if err != nil {
			if errors.Is(err, errAuthRequired) || errors.Is(err, errBadCredentials) || errors.Is(err, errBadToken) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="companin"`)
			}
			if p.OrganizationID != uuid.Nil {
				// The caller is known but may not do this (scope, origin):
				// the answer still says where its budget stands.
				s.rateLimitHeaders(w, r, p.OrganizationID)
			}
			writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(s.withPrincipal(r, p)))
	})
}

func (s *Server) withPrincipal(r *http.Request, p Principal) context.Context {
	ctx := context.WithValue(r.Context(), principalKey, p)
	id := requestIDOf(r)
	ctx = es.WithMetadata(ctx, es.Metadata{
		OrganizationID: p.OrganizationID.String(),
		Actor:          p.Actor(),
		RequestID:      id,
		CorrelationID:  id,
	})
	return context.WithValue(ctx, loggerKey, loggerFrom(r).With("organization_id", p.OrganizationID.String()))
}

func (s *Server) authenticate(r *http.Request, scope Scope) (Principal, error) {
	key, secret := r.Header.Get("X-API-Key"), r.Header.Get("X-API-Secret")
	if key != "" || secret != "" {
		if key == "" || secret == "" || len(key) > 200 || len(secret) > 200 {
			return Principal{}, errBadCredentials
		}
		c, err := s.findClient(r.Context(), key)
		if errors.Is(err, queries.ErrClientNotFound) {
			return Principal{}, errBadCredentials
		}
		if err != nil {
			return Principal{}, err
		}
		if !organization.SecretMatches(secret, c.SecretHash) {
			return Principal{}, errBadCredentials
		}
		return Principal{OrganizationID: c.OrganizationID, ClientID: c.ClientID}, nil
	}
	authz := r.Header.Get("Authorization")
	if authz == "" {
		return Principal{}, errAuthRequired
	}
	scheme, token, ok := strings.Cut(authz, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return Principal{}, errAuthRequired
	}
	claims, err := s.parseWidgetToken(r.Context(), strings.TrimSpace(token))
	if err != nil {
		return Principal{}, err
	}
	c, err := s.findClient(r.Context(), claims.Subject)
	if errors.Is(err, queries.ErrClientNotFound) {
		return Principal{}, errBadToken
	}
	if err != nil {
		return Principal{}, err
	}
	if c.OrganizationID.String() != claims.OrganizationID {
		return Principal{}, errBadToken
	}
	p := Principal{OrganizationID: c.OrganizationID, ClientID: c.ClientID, Widget: true, TokenID: claims.ID}
	if scope != ScopeWidget {
		return p, errWidgetScope
	}
	if !originAllowed(r, c.AllowedOrigins) {
		return p, errOrigin
	}
	if claims.ConfigID != "" {
		ok, err := s.configAllows(r, c.OrganizationID, claims.ConfigID)
		if err != nil {
			return Principal{}, err
		}
		if !ok {
			return p, errConfigOrigin
		}
	}
	return p, nil
}

// lookupTTL is how long an instance trusts a client or a configuration's
// origins it looked up: every request needs one, and they change rarely. It
// bounds how long a revoked client or a removed origin keeps working on an
// instance once the read model shows the change, should the announcement of
// the change (CredentialsChannel) not reach it; a new client is found at
// once, since misses are not cached. Config.CredentialCacheTTL sets it for
// clients.
const (
	lookupTTL        = 3 * time.Second
	lookupCacheLimit = 10000
)

// ttlCache remembers lookups for ttl (zero: lookupTTL).
type ttlCache[V any] struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]cached[V]
	// gen counts forgets: a lookup that began before one is not kept,
	// since it may have read what was forgotten.
	gen uint64
}

type cached[V any] struct {
	v     V
	until time.Time
}

// get returns the value kept for key, or load's (remembered on success).
func (c *ttlCache[V]) get(key string, load func() (V, error)) (V, error) {
	now := time.Now()
	c.mu.Lock()
	e, ok := c.m[key]
	gen := c.gen
	c.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.v, nil
	}
	v, err := load()
	if err != nil {
		return v, err
	}
	ttl := c.ttl
	if ttl <= 0 {
		ttl = lookupTTL
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= lookupCacheLimit {
		c.m = map[string]cached[V]{}
	}
	if c.gen == gen {
		c.m[key] = cached[V]{v: v, until: now.Add(ttl)}
	}
	c.mu.Unlock()
	return v, nil
}

// forget drops the entries for which drop is true (all when drop is nil).
func (c *ttlCache[V]) forget(drop func(key string, v V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, e := range c.m {
		if drop == nil || drop(k, e.v) {
			delete(c.m, k)
		}
	}
}

func (s *Server) findClient(ctx context.Context, clientID string) (queries.Client, error) {
	return s.clients.get(clientID, func() (queries.Client, error) {
		return s.app.Queries.FindClient.Handle(ctx, clientID)
	})
}

// CredentialsChannel is the NOTIFY channel on which a change of credentials
// (a revoked client, an organization's allowed origins) is announced once the
// read model shows it, so that every instance stops trusting its cached copy
// at once instead of after lookupTTL. The payload is a client id or an
// organization id; empty means every cached client. `companin org
// credentials revoke` and `companin org update` announce
// (AnnounceCredentials); each server hears it through the process's
// notification listener (CredentialNews). Announcements are best effort: a
// lost one leaves the cache's lifetime as the bound.
const CredentialsChannel = "companin_credentials"

// AnnounceCredentials tells every instance to forget what it cached of ref
// (a client id or an organization id). Call it after the read model shows
// the change.
func AnnounceCredentials(ctx context.Context, db *pgxpool.Pool, ref string) error {
	if _, err := db.Exec(ctx, "SELECT pg_notify($1, $2)", CredentialsChannel, ref); err != nil {
		return fmt.Errorf("announce changed credentials: %w", err)
	}
	return nil
}

// CredentialNews is the handler to subscribe to CredentialsChannel on the
// process's notification listener: it empties the credential cache of what
// an announcement names, and all of it when notifications may have been lost.
func (s *Server) CredentialNews() notify.Handler { return credentialNews{s} }

type credentialNews struct{ s *Server }

func (n credentialNews) Notify(_, ref string) {
	if ref == "" {
		n.s.clients.forget(nil)
		return
	}
	n.s.clients.forget(func(clientID string, c queries.Client) bool {
		return clientID == ref || c.OrganizationID.String() == ref
	})
}

func (n credentialNews) Reset(bool) { n.s.clients.forget(nil) }

// widgetConfigOrigins returns whether organization org has widget
// configuration id and the origins it allows (none listed: any).
func (s *Server) widgetConfigOrigins(ctx context.Context, org uuid.UUID, id uuid.UUID) (found bool, origins []string, err error) {
	e, err := s.configOrigins.get(org.String()+"/"+id.String(), func() (configEntry, error) {
		c, err := s.app.Queries.GetWidgetConfig.Handle(ctx, org.String(), id)
		if errors.Is(err, domain.ErrNotFound) {
			return configEntry{}, nil
		}
		if err != nil {
			return configEntry{}, err
		}
		return configEntry{found: true, origins: c.AllowedOrigins}, nil
	})
	return e.found, e.origins, err
}

type configEntry struct {
	found   bool
	origins []string
}

// configAllows tells whether the request may use widget configuration id of
// org: its origin is one the configuration allows.
func (s *Server) configAllows(r *http.Request, org uuid.UUID, id string) (bool, error) {
	cfgID, err := uuid.Parse(id)
	if err != nil {
		return false, nil
	}
	_, origins, err := s.widgetConfigOrigins(r.Context(), org, cfgID)
	if err != nil {
		return false, err
	}
	return originAllowed(r, origins), nil
}

// originAllowed: with allowed origins listed, a browser's request must come
// from one of them. A request without Origin is not a browser's cross-origin
// call but a server's (curl, a backend) or a page of the server's own origin,
// which browsers send GETs from without Origin; a server can put any Origin
// it likes, so the check could not stop it anyway. Origin "null" (sandboxed
// frames, file: pages) is never allowed.
func originAllowed(r *http.Request, allowed []string) bool {
	if len(allowed) == 0 {
		return true
	}
	h, sent := r.Header["Origin"]
	if !sent || len(h) == 0 || h[0] == "" {
		return true
	}
	origin, err := organization.ParseOrigin(h[0])
	return err == nil && slices.Contains(allowed, origin)
}

type widgetTokenRequest struct {
	ClientID string `json:"client_id"`
	// ConfigID is the widget's data-config-id, if any: the token then
	// carries it, and works only on origins the configuration allows.
	ConfigID string `json:"config_id"`
}

type widgetTokenResponse struct {
	Token     string `json:"token"`
	ExpiresIn int    `json:"expires_in"`
	TokenType string `json:"token_type"`
}

// widgetToken issues a short-lived token for browsers, which must not hold the
// client secret. It answers flat, like an OAuth2 token endpoint. It needs no
// secret, so it does not spend the organization's API budget: it has limits
// of its own per client id and per client address (widgetTokenLimited),
// counted before the client is looked up, so unknown client ids are limited too.
func (s *Server) widgetToken(w http.ResponseWriter, r *http.Request) {
	var req widgetTokenRequest
	if err := decodeJSON(w, r, &req); err != nil {
		if s.widgetTokenLimited(w, r, "") {
			writeError(w, r, err)
		}
		return
	}
	clientID := strings.TrimSpace(req.ClientID)
	var v validation
	v.required("client_id", clientID)
	v.maxLen("client_id", clientID, 200)
	configID := strings.TrimSpace(req.ConfigID)
	if _, err := uuid.Parse(configID); configID != "" && err != nil {
		v.add("config_id", "must be a widget configuration id (a UUID)")
	}
	if err := v.err(); err != nil {
		if s.widgetTokenLimited(w, r, "") {
			writeError(w, r, err)
		}
		return
	}
	if !s.widgetTokenLimited(w, r, clientID) {
		return
	}
	c, err := s.findClient(r.Context(), clientID)
	if errors.Is(err, queries.ErrClientNotFound) {
		writeError(w, r, httpError(http.StatusUnauthorized, "invalid_client", "Authentication required - unknown client_id"))
		return
	}
	if err != nil {
		writeError(w, r, err)
		return
	}
	if !originAllowed(r, c.AllowedOrigins) {
		writeError(w, r, errOrigin)
		return
	}
	if configID != "" {
		found, origins, err := s.widgetConfigOrigins(r.Context(), c.OrganizationID, uuid.MustParse(configID))
		switch {
		case err != nil:
			writeError(w, r, err)
			return
		case !found:
			configID = "" // an unknown configuration: the widget shows its defaults
		case !originAllowed(r, origins):
			writeError(w, r, errConfigOrigin)
			return
		}
	}
	key, err := s.signingKey(r.Context())
	if err != nil {
		writeError(w, r, err)
		return
	}
	now := s.now()
	claims := widgetClaims{
		OrganizationID: c.OrganizationID.String(),
		Scope:          widgetScope,
		ConfigID:       configID,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    tokenIssuer,
			Subject:   c.ClientID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.WidgetTokenTTL)),
			ID:        uuid.NewString(),
		},
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
	if err != nil {
		writeError(w, r, fmt.Errorf("sign widget token: %w", err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, widgetTokenResponse{Token: token, ExpiresIn: int(s.cfg.WidgetTokenTTL / time.Second), TokenType: "Bearer"})
}

func (s *Server) parseWidgetToken(ctx context.Context, token string) (*widgetClaims, error) {
	key, err := s.signingKey(ctx)
	if err != nil {
		return nil, err
	}
	var claims widgetClaims
	_, err = jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(tokenIssuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(s.now),
	)
	if err != nil || claims.Scope != widgetScope || claims.Subject == "" {
		return nil, errBadToken
	}
	return &claims, nil
}

// signingKeys holds the widget token key: the configured one, or the one kept
// in the database so that every instance signs and verifies alike.
type signingKeys struct {
	configured string
	mu         sync.Mutex
	key        []byte
}

const signingKeyName = "jwt_signing_key"

func (s *Server) signingKey(ctx context.Context) ([]byte, error) {
	k := s.keys
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.key != nil {
		return k.key, nil
	}
	if k.configured != "" {
		k.key = []byte(k.configured)
		return k.key, nil
	}
	// The first instance to start creates the key; the others read it.
	key, err := secrets.Get(ctx, s.deps.Pool, signingKeyName)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	k.key = key
	return key, nil
}
