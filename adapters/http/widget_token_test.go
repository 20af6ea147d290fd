package httpapi

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func widgetToken(t *testing.T, ts *testServer, clientID string, headers ...string) string {
	t.Helper()
	r := ts.do(t, http.MethodPost, "/api/v1/auth/widget-token", testOrg{}, `{"client_id":"`+clientID+`"}`, headers...)
	if r.Status != 200 {
		t.Fatalf("widget token: %d %s", r.Status, r.Body)
	}
	return r.json(t)["token"].(string)
}

func registerWidgetProbe(ts *testServer) {
	ts.Server.handle(http.MethodGet, "/widget-probe", ScopeWidget, func(w http.ResponseWriter, r *http.Request) {
		p := principalOf(r)
		writeData(w, r, 200, map[string]any{"organization_id": p.OrganizationID, "client_id": p.ClientID, "widget": p.Widget})
	})
}

func TestWidgetTokenShapeAndScope(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	registerWidgetProbe(ts)
	r := ts.do(t, http.MethodPost, "/api/v1/auth/widget-token", testOrg{}, `{"client_id":"`+ts.org.ClientID+`"}`)
	if r.Status != 200 {
		t.Fatalf("%d %s", r.Status, r.Body)
	}
	m := r.json(t)
	if len(m) != 3 || m["expires_in"] != float64(3600) || m["token_type"] != "Bearer" {
		t.Fatalf("shape: %s", r.Body)
	}
	token := m["token"].(string)
	if !strings.HasPrefix(token, "eyJ") {
		t.Fatalf("token %q", token)
	}
	parsed, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil || parsed.Method.Alg() != "HS256" {
		t.Fatalf("alg: %v %v", err, parsed)
	}
	claims := parsed.Claims.(jwt.MapClaims)
	if claims["scope"] != "widget" || claims["sub"] != ts.org.ClientID || claims["org"] != ts.org.ID {
		t.Fatalf("claims %v", claims)
	}
	exp, _ := claims.GetExpirationTime()
	if d := time.Until(exp.Time); d < 59*time.Minute || d > 61*time.Minute {
		t.Fatalf("expires in %v", d)
	}

	bearer := []string{"Authorization", "Bearer " + token}
	w := ts.do(t, http.MethodGet, "/api/v1/widget-probe", testOrg{}, "", bearer...)
	if w.Status != 200 || w.data(t)["widget"] != true || w.data(t)["organization_id"] != ts.org.ID {
		t.Fatalf("widget route: %d %s", w.Status, w.Body)
	}
	if w.Header.Get("X-RateLimit-Limit") == "" {
		t.Fatal("no rate limit headers for widget calls")
	}
	// API-only routes refuse widget tokens.
	m = expectError(t, ts.do(t, http.MethodGet, "/api/v1/events", testOrg{}, "", bearer...), 403)
	if data, _ := m["data"].(map[string]any); data["code"] != "insufficient_scope" {
		t.Fatalf("403 code %s", m)
	}
	// An API key reaches widget routes too.
	if r := ts.do(t, http.MethodGet, "/api/v1/widget-probe", ts.org, ""); r.Status != 200 || r.data(t)["widget"] != false {
		t.Fatalf("api key on widget route: %d %s", r.Status, r.Body)
	}
}

func TestWidgetTokenRejections(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	registerWidgetProbe(ts)
	expectError(t, ts.do(t, http.MethodPost, "/api/v1/auth/widget-token", testOrg{}, `{"client_id":"ci_unknown"}`), 401)
	m := expectError(t, ts.do(t, http.MethodPost, "/api/v1/auth/widget-token", testOrg{}, `{}`), 422)
	if _, ok := fieldErrors(t, m)["client_id"]; !ok {
		t.Fatalf("field errors %v", m)
	}
	expectError(t, ts.do(t, http.MethodPost, "/api/v1/auth/widget-token", testOrg{}, `{"client_id":7}`), 422)
	expectError(t, ts.do(t, http.MethodPost, "/api/v1/auth/widget-token", testOrg{}, `nope`), 400)

	key, err := ts.Server.signingKey(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	sign := func(method jwt.SigningMethod, k any, c widgetClaims) string {
		s, err := jwt.NewWithClaims(method, c).SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	now := time.Now()
	valid := widgetClaims{OrganizationID: ts.org.ID, Scope: "widget", RegisteredClaims: jwt.RegisteredClaims{
		Issuer: "companin", Subject: ts.org.ClientID, IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
	}}
	if r := ts.do(t, http.MethodGet, "/api/v1/widget-probe", testOrg{}, "", "Authorization", "Bearer "+sign(jwt.SigningMethodHS256, key, valid)); r.Status != 200 {
		t.Fatalf("hand-made valid token: %d %s", r.Status, r.Body)
	}
	expired := valid
	expired.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Minute))
	otherScope := valid
	otherScope.Scope = "admin"
	otherOrg := valid
	otherOrg.OrganizationID = "00000000-0000-0000-0000-000000000000"
	noExp := valid
	noExp.ExpiresAt = nil
	tokens := map[string]string{
		"expired":     sign(jwt.SigningMethodHS256, key, expired),
		"other scope": sign(jwt.SigningMethodHS256, key, otherScope),
		"other org":   sign(jwt.SigningMethodHS256, key, otherOrg),
		"no exp":      sign(jwt.SigningMethodHS256, key, noExp),
		"wrong key":   sign(jwt.SigningMethodHS256, []byte("not-the-key-not-the-key-not-the!"), valid),
		"alg none":    sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid),
		"HS512":       sign(jwt.SigningMethodHS512, key, valid),
	}
	for name, tok := range tokens {
		r := ts.do(t, http.MethodGet, "/api/v1/widget-probe", testOrg{}, "", "Authorization", "Bearer "+tok)
		if r.Status != 401 {
			t.Fatalf("%s: %d %s", name, r.Status, r.Body)
		}
	}
}

func TestWidgetSigningKeyIsSharedByInstances(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	registerWidgetProbe(ts)
	token := widgetToken(t, ts, ts.org.ClientID)
	other := New(Deps{Store: ts.Store, Pool: ts.Pool})
	k1, _ := ts.Server.signingKey(t.Context())
	k2, err := other.signingKey(t.Context())
	if err != nil || string(k1) != string(k2) || len(k1) != 32 {
		t.Fatalf("keys differ: %v", err)
	}
	if _, err := other.parseWidgetToken(t.Context(), token); err != nil {
		t.Fatalf("other instance rejects the token: %v", err)
	}
	configured := New(Deps{Store: ts.Store, Pool: ts.Pool, Config: Config{JWTSecret: "from-the-environment-0123456789abcdef"}})
	if _, err := configured.parseWidgetToken(t.Context(), token); err == nil {
		t.Fatal("a configured secret must replace the stored key")
	}
}

func TestAllowedOrigins(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	registerWidgetProbe(ts)
	shop := ts.newOrg(t, "Shop", "https://Shop.example.com/", "http://localhost:3000")
	expectError(t, ts.do(t, http.MethodPost, "/api/v1/auth/widget-token", testOrg{}, `{"client_id":"`+shop.ClientID+`"}`,
		"Origin", "https://evil.example.net"), 403)
	expectError(t, ts.do(t, http.MethodPost, "/api/v1/auth/widget-token", testOrg{}, `{"client_id":"`+shop.ClientID+`"}`,
		"Origin", "null"), 403)
	// The README's and the seed's curl sends no Origin: a server-side call,
	// which could send any Origin it liked; browsers always send theirs.
	serverSide := widgetToken(t, ts, shop.ClientID)
	if r := ts.do(t, http.MethodGet, "/api/v1/widget-probe", testOrg{}, "", "Authorization", "Bearer "+serverSide); r.Status != 200 {
		t.Fatalf("server-side widget call: %d %s", r.Status, r.Body)
	}
	expectError(t, ts.do(t, http.MethodGet, "/api/v1/widget-probe", testOrg{}, "", "Authorization", "Bearer "+serverSide,
		"Origin", "https://evil.example.net"), 403)
	token := widgetToken(t, ts, shop.ClientID, "Origin", "https://shop.example.com")
	widgetToken(t, ts, shop.ClientID, "Origin", "http://localhost:3000")
	bearer := "Bearer " + token
	if r := ts.do(t, http.MethodGet, "/api/v1/widget-probe", testOrg{}, "", "Authorization", bearer, "Origin", "https://shop.example.com"); r.Status != 200 {
		t.Fatalf("allowed origin: %d %s", r.Status, r.Body)
	}
	r := ts.do(t, http.MethodGet, "/api/v1/widget-probe", testOrg{}, "", "Authorization", bearer, "Origin", "https://evil.example.net")
	m := expectError(t, r, 403)
	if data, _ := m["data"].(map[string]any); data["code"] != "origin_not_allowed" {
		t.Fatalf("code: %s", r.Body)
	}
	if r.Header.Get("X-RateLimit-Remaining") == "" {
		t.Fatal("the widget 403 carries no rate-limit headers")
	}
	// API keys are for servers: no origin check.
	if r := ts.do(t, http.MethodGet, "/api/v1/widget-probe", shop, "", "Origin", "https://evil.example.net"); r.Status != 200 {
		t.Fatalf("api key with foreign origin: %d", r.Status)
	}
	// Without allowed origins, any origin may get a token.
	widgetToken(t, ts, ts.org.ClientID, "Origin", "https://anything.example")
}
