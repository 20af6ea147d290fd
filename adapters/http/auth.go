package httpapi

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/organization"
	"github.com/companin/companin/queries"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
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
	widgetTokenTTL = time.Hour
	widgetScope    = "widget"
	tokenIssuer    = "companin"
)

// widgetClaims are the claims of a widget token. The organization is in the
// token, but every call still looks the client up, so that removing a client
// or changing allowed origins takes effect at once.
type widgetClaims struct {
	OrganizationID string `json:"org"`
	Scope          string `json:"scope"`
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
	if scope != ScopeWidget {
		return Principal{}, errWidgetScope
	}
	if !originAllowed(r, c.AllowedOrigins) {
		return Principal{}, errOrigin
	}
	return Principal{OrganizationID: c.OrganizationID, ClientID: c.ClientID, Widget: true, TokenID: claims.ID}, nil
}

// clientTTL is how long an instance trusts a client it looked up: every
// request needs one, and clients change rarely (a new one is found at once,
// since misses are not cached).
const (
	clientTTL        = 10 * time.Second
	clientCacheLimit = 10000
)

type clientCache struct {
	mu sync.Mutex
	m  map[string]cachedClient
}

type cachedClient struct {
	c     queries.Client
	until time.Time
}

func (s *Server) findClient(ctx context.Context, clientID string) (queries.Client, error) {
	now := time.Now()
	s.clients.mu.Lock()
	cached, ok := s.clients.m[clientID]
	s.clients.mu.Unlock()
	if ok && now.Before(cached.until) {
		return cached.c, nil
	}
	c, err := queries.NewFindClientHandler(s.deps.Pool).Handle(ctx, clientID)
	if err != nil {
		return c, err
	}
	s.clients.mu.Lock()
	if s.clients.m == nil || len(s.clients.m) >= clientCacheLimit {
		s.clients.m = map[string]cachedClient{}
	}
	s.clients.m[clientID] = cachedClient{c: c, until: now.Add(clientTTL)}
	s.clients.mu.Unlock()
	return c, nil
}

// originAllowed: with allowed origins listed, the request's Origin must be one
// of them (a request without Origin is not from an allowed page).
func originAllowed(r *http.Request, allowed []string) bool {
	if len(allowed) == 0 {
		return true
	}
	origin, err := organization.ParseOrigin(r.Header.Get("Origin"))
	return err == nil && slices.Contains(allowed, origin)
}

type widgetTokenRequest struct {
	ClientID string `json:"client_id"`
}

type widgetTokenResponse struct {
	Token     string `json:"token"`
	ExpiresIn int    `json:"expires_in"`
	TokenType string `json:"token_type"`
}

// widgetToken issues a short-lived token for browsers, which must not hold the
// client secret. It answers flat, like an OAuth2 token endpoint.
func (s *Server) widgetToken(w http.ResponseWriter, r *http.Request) {
	var req widgetTokenRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	var v validation
	v.required("client_id", req.ClientID)
	v.maxLen("client_id", req.ClientID, 200)
	if err := v.err(); err != nil {
		writeError(w, r, err)
		return
	}
	c, err := s.findClient(r.Context(), strings.TrimSpace(req.ClientID))
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
	if !s.countRequest(w, r, c.OrganizationID) {
		return
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
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    tokenIssuer,
			Subject:   c.ClientID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(widgetTokenTTL)),
			ID:        uuid.NewString(),
		},
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
	if err != nil {
		writeError(w, r, fmt.Errorf("sign widget token: %w", err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, widgetTokenResponse{Token: token, ExpiresIn: int(widgetTokenTTL / time.Second), TokenType: "Bearer"})
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
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	// The first instance to start creates the key; the others read it.
	// An instance racing us may commit its key after our statement's snapshot
	// was taken: then neither branch sees a row, and the second try does.
	var key []byte
	var err error
	for range 2 {
		err = s.deps.Pool.QueryRow(ctx, `
			WITH ins AS (
				INSERT INTO platform_secrets (name, value) VALUES ($1, $2)
				ON CONFLICT (name) DO NOTHING RETURNING value)
			SELECT value FROM ins UNION ALL SELECT value FROM platform_secrets WHERE name = $1
			LIMIT 1`, signingKeyName, fresh).Scan(&key)
		if !errors.Is(err, pgx.ErrNoRows) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	k.key = key
	return key, nil
}
