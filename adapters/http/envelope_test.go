package httpapi

import (
	"net/http"
	"testing"
)

func TestHealthzEnvelope(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	r := ts.do(t, http.MethodGet, "/healthz", testOrg{}, "")
	if r.Status != 200 {
		t.Fatalf("status %d: %s", r.Status, r.Body)
	}
	m := r.json(t)
	if m["status"] != "success" || m["status_code"] != float64(200) || m["detail"] != nil {
		t.Fatalf("envelope: %s", r.Body)
	}
	if _, ok := m["detail"]; !ok {
		t.Fatalf("detail missing: %s", r.Body)
	}
}

func TestAuthRequired(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	cases := []struct {
		name    string
		org     testOrg
		headers []string
	}{
		{"none", testOrg{}, nil},
		{"wrong secret", testOrg{ClientID: ts.org.ClientID, Secret: "cs_wrong"}, nil},
		{"unknown client", testOrg{ClientID: "ci_nope", Secret: ts.org.Secret}, nil},
		{"key without secret", testOrg{}, []string{"X-API-Key", ts.org.ClientID}},
		{"garbage bearer", testOrg{}, []string{"Authorization", "Bearer abc.def.ghi"}},
		{"basic auth", testOrg{}, []string{"Authorization", "Basic Zm9vOmJhcg=="}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := ts.do(t, http.MethodGet, "/api/v1/events", c.org, "", c.headers...)
			if r.Status != 401 {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			m := r.json(t)
			if m["status"] != "error" || m["status_code"] != float64(401) {
				t.Fatalf("envelope: %s", r.Body)
			}
			if d, _ := m["detail"].(string); len(d) < 26 || d[:26] != "Authentication required - " {
				t.Fatalf("detail: %q", m["detail"])
			}
			if r.Header.Get("X-RateLimit-Limit") != "" {
				t.Fatalf("rate limit headers on an unauthenticated answer")
			}
		})
	}
	r := ts.do(t, http.MethodGet, "/api/v1/events", ts.org, "")
	if r.Status != 200 {
		t.Fatalf("with credentials: %d %s", r.Status, r.Body)
	}
}
