package httpapi

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fromAddress is an HTTP client whose requests come from ip (any 127.x.y.z
// reaches the loopback server), so tests can play several client addresses.
func fromAddress(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}}}
}

func tokenRequest(t *testing.T, ts *testServer, c *http.Client, body string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.URL+"/api/v1/auth/widget-token", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: []byte(b.String())}
}

func rateHeaders(t *testing.T, r response) (limit, remaining int) {
	t.Helper()
	limit, err1 := strconv.Atoi(r.Header.Get("X-RateLimit-Limit"))
	remaining, err2 := strconv.Atoi(r.Header.Get("X-RateLimit-Remaining"))
	reset, err3 := strconv.ParseInt(r.Header.Get("X-RateLimit-Reset"), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || reset < time.Now().Unix() {
		t.Fatalf("%d answer without rate-limit headers: %v %s", r.Status, r.Header, r.Body)
	}
	return limit, remaining
}

// Issue 10: 25 widget tokens locked an organization out of its own API, and
// unknown client ids were not limited at all.
func TestWidgetTokenHasItsOwnLimits(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, withConfig(Config{RateLimitPerHour: 5, WidgetTokenPerClient: 4, WidgetTokenPerAddress: 6}))
	body := `{"client_id":"` + ts.org.ClientID + `"}`

	// Four tokens for the client, each from another address: the client's
	// limit is the tighter one and says so.
	for i := 1; i <= 4; i++ {
		r := tokenRequest(t, ts, fromAddress("127.0.1."+strconv.Itoa(i)), body)
		if r.Status != 200 {
			t.Fatalf("token %d: %d %s", i, r.Status, r.Body)
		}
		if limit, remaining := rateHeaders(t, r); limit != 4 || remaining != 4-i {
			t.Fatalf("token %d: limit %d remaining %d", i, limit, remaining)
		}
	}
	r := tokenRequest(t, ts, fromAddress("127.0.1.9"), body)
	m := expectError(t, r, 429)
	if data, _ := m["data"].(map[string]any); data["code"] != "rate_limited" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("over the client's limit: %s %v", r.Body, r.Header)
	}
	// The organization's API budget is untouched: its first API call has
	// all but one of its 5 requests left.
	api := ts.do(t, http.MethodGet, "/api/v1/assistants/", ts.org, "")
	if api.Status != 200 {
		t.Fatalf("API after the tokens: %d %s", api.Status, api.Body)
	}
	if limit, remaining := rateHeaders(t, api); limit != 5 || remaining != 4 {
		t.Fatalf("API budget: limit %d remaining %d, want 5 and 4", limit, remaining)
	}

	// Unknown client ids are limited per address: six answers (401, with
	// headers), then 429; another address is not held up.
	spammer := fromAddress("127.0.2.1")
	for i := 1; i <= 6; i++ {
		r := tokenRequest(t, ts, spammer, `{"client_id":"ci_unknown_`+strconv.Itoa(i)+`"}`)
		expectError(t, r, 401)
		// Each id is new (3 of its 4 left) until the address runs short.
		if limit, remaining := rateHeaders(t, r); remaining != min(3, 6-i) || (remaining < 3 && limit != 6) {
			t.Fatalf("unknown %d: limit %d remaining %d", i, limit, remaining)
		}
	}
	expectError(t, tokenRequest(t, ts, spammer, `{"client_id":"ci_unknown_7"}`), 429)
	expectError(t, tokenRequest(t, ts, spammer, `not json`), 429) // bad bodies count too
	other := ts.newOrg(t, "Other")
	if r := tokenRequest(t, ts, fromAddress("127.0.2.2"), `{"client_id":"`+other.ClientID+`"}`); r.Status != 200 {
		t.Fatalf("another address: %d %s", r.Status, r.Body)
	}
	// Bad requests answer with the headers too.
	r = tokenRequest(t, ts, fromAddress("127.0.2.3"), `{}`)
	expectError(t, r, 422)
	rateHeaders(t, r)
}

// A token issued for a widget configuration carries it, and every call with
// it must come from an origin the configuration allows, as well as the
// organization; configuration changes apply within seconds.
func TestWidgetTokenCarriesTheConfigurationsOrigins(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	registerWidgetProbe(ts)
	shop := ts.newOrg(t, "Shop", "https://a.example", "https://b.example")
	cfg := ts.do(t, http.MethodPost, "/api/v1/widget-configs/", shop, `{"title":"A only","allowed_origins":["https://a.example"]}`)
	if cfg.Status != 201 {
		t.Fatalf("create config: %d %s", cfg.Status, cfg.Body)
	}
	cfgID := cfg.data(t)["id"].(string)
	body := `{"client_id":"` + shop.ClientID + `","config_id":"` + cfgID + `"}`

	r := ts.do(t, http.MethodPost, "/api/v1/auth/widget-token", testOrg{}, body, "Origin", "https://b.example")
	m := expectError(t, r, 403)
	if data, _ := m["data"].(map[string]any); data["code"] != "origin_not_allowed" {
		t.Fatalf("token for the configuration from b: %s", r.Body)
	}
	// A token without the configuration works from b; one with it only from a.
	plain := widgetToken(t, ts, shop.ClientID, "Origin", "https://b.example")
	r = ts.do(t, http.MethodPost, "/api/v1/auth/widget-token", testOrg{}, body, "Origin", "https://a.example")
	if r.Status != 200 {
		t.Fatalf("token for the configuration from a: %d %s", r.Status, r.Body)
	}
	withCfg := r.json(t)["token"].(string)
	probe := func(token, origin string) response {
		return ts.do(t, http.MethodGet, "/api/v1/widget-probe", testOrg{}, "", "Authorization", "Bearer "+token, "Origin", origin)
	}
	if r := probe(plain, "https://b.example"); r.Status != 200 {
		t.Fatalf("plain token from b: %d %s", r.Status, r.Body)
	}
	if r := probe(withCfg, "https://a.example"); r.Status != 200 {
		t.Fatalf("configuration token from a: %d %s", r.Status, r.Body)
	}
	r = probe(withCfg, "https://b.example")
	expectError(t, r, 403)
	rateHeaders(t, r)
	// The sessions route, a real widget call, refuses it as well.
	expectError(t, ts.do(t, http.MethodPost, "/api/v1/sessions/", testOrg{}, `{"assistant_id":"00000000-0000-0000-0000-000000000001"}`,
		"Authorization", "Bearer "+withCfg, "Origin", "https://b.example"), 403)

	// Allow b in the configuration: the same token works from b within seconds.
	if r := ts.do(t, http.MethodPatch, "/api/v1/widget-configs/"+cfgID, shop, `{"allowed_origins":["https://a.example","https://b.example"]}`); r.Status != 200 {
		t.Fatalf("patch config: %d %s", r.Status, r.Body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for probe(withCfg, "https://b.example").Status != 200 {
		if time.Now().After(deadline) {
			t.Fatal("the configuration's new origin never applied to its token")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// An unknown configuration id gives a token without one (the widget
	// shows its defaults); a malformed one is a 422.
	if r := ts.do(t, http.MethodPost, "/api/v1/auth/widget-token", testOrg{}, `{"client_id":"`+shop.ClientID+`","config_id":"00000000-0000-0000-0000-000000000009"}`,
		"Origin", "https://b.example"); r.Status != 200 {
		t.Fatalf("unknown configuration: %d %s", r.Status, r.Body)
	}
	expectError(t, ts.do(t, http.MethodPost, "/api/v1/auth/widget-token", testOrg{}, `{"client_id":"`+shop.ClientID+`","config_id":"nope"}`), 422)
}
