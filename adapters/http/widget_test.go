package httpapi

import (
	"net/http"
	"strings"
	"testing"
)

func TestWidgetConfigsCreateReadUpdateList(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)

	r := ts.do(t, http.MethodPost, "/api/v1/widget-configs/", ts.org, `{"title":"Shop help","primary_color":"#0F766E","position":"bottom-left","locale":"de_de","allowed_origins":["https://Shop.example.com/"]}`)
	if r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	c := r.data(t)
	id := c["id"].(string)
	if c["title"] != "Shop help" || c["primary_color"] != "#0f766e" || c["position"] != "bottom-left" || c["locale"] != "de-DE" {
		t.Fatalf("created: %v", c)
	}
	if c["greeting"] != "Hi! How can we help you today?" || c["launcher_label"] != "Chat" {
		t.Fatalf("defaults not filled in: %v", c)
	}
	if o := c["allowed_origins"].([]any); len(o) != 1 || o[0] != "https://shop.example.com" {
		t.Fatalf("allowed_origins: %v", c["allowed_origins"])
	}

	r = ts.do(t, http.MethodPatch, "/api/v1/widget-configs/"+id, ts.org, `{"greeting":"Hallo!","allowed_origins":[]}`)
	if r.Status != http.StatusOK {
		t.Fatalf("patch: %d %s", r.Status, r.Body)
	}
	if c := r.data(t); c["greeting"] != "Hallo!" || c["title"] != "Shop help" || len(c["allowed_origins"].([]any)) != 0 {
		t.Fatalf("patched: %v", c)
	}
	r = ts.do(t, http.MethodGet, "/api/v1/widget-configs/"+id+"/", ts.org, "")
	if r.Status != http.StatusOK || r.data(t)["greeting"] != "Hallo!" {
		t.Fatalf("get: %d %s", r.Status, r.Body)
	}
	r = ts.do(t, http.MethodGet, "/api/v1/widget-configs", ts.org, "")
	if r.Status != http.StatusOK || len(r.json(t)["data"].([]any)) != 1 {
		t.Fatalf("list: %d %s", r.Status, r.Body)
	}

	events := ts.do(t, http.MethodGet, "/api/v1/events?types=WidgetConfigCreated,WidgetConfigUpdated", ts.org, "")
	if n := len(events.json(t)["data"].([]any)); n != 2 {
		t.Fatalf("want 2 widget config events, got %d: %s", n, events.Body)
	}

	other := ts.newOrg(t, "Other")
	if r := ts.do(t, http.MethodGet, "/api/v1/widget-configs/"+id, other, ""); r.Status != http.StatusNotFound {
		t.Fatalf("another organization's config: %d", r.Status)
	}
	if r := ts.do(t, http.MethodPatch, "/api/v1/widget-configs/"+id, other, `{"title":"x"}`); r.Status != http.StatusNotFound {
		t.Fatalf("another organization's patch: %d", r.Status)
	}
}

func TestWidgetConfigValidation(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for _, body := range []string{
		`{"primary_color":"red"}`,
		`{"position":"top-left"}`,
		`{"title":""}`,
		`{"title":"` + strings.Repeat("x", 101) + `"}`,
		`{"locale":"not a locale"}`,
		`{"allowed_origins":["shop.example.com/path"]}`,
		`{"allowed_origins":"https://a.example"}`,
	} {
		r := ts.do(t, http.MethodPost, "/api/v1/widget-configs/", ts.org, body)
		if r.Status != http.StatusUnprocessableEntity {
			t.Errorf("%s: want 422, got %d %s", body, r.Status, r.Body)
		}
	}
	if r := ts.do(t, http.MethodPatch, "/api/v1/widget-configs/YOUR_CONFIG_ID", ts.org, `{"title":"x"}`); r.Status != http.StatusNotFound {
		t.Errorf("patch unknown: %d", r.Status)
	}
}

func TestWidgetTokenReadsConfigOnlyFromAllowedOrigins(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	open := ts.do(t, http.MethodPost, "/api/v1/widget-configs/", ts.org, `{"title":"Open"}`).data(t)["id"].(string)
	shop := ts.do(t, http.MethodPost, "/api/v1/widget-configs/", ts.org, `{"title":"Shop","allowed_origins":["https://shop.example.com"]}`).data(t)["id"].(string)
	tok := widgetToken(t, ts, ts.org.ClientID)
	bearer := "Bearer " + tok

	if r := ts.do(t, http.MethodGet, "/api/v1/widget-configs/"+open, testOrg{}, "", "Authorization", bearer, "Origin", "https://any.example"); r.Status != http.StatusOK {
		t.Fatalf("open config: %d %s", r.Status, r.Body)
	}
	if r := ts.do(t, http.MethodGet, "/api/v1/widget-configs/"+shop, testOrg{}, "", "Authorization", bearer, "Origin", "https://shop.example.com"); r.Status != http.StatusOK {
		t.Fatalf("listed origin: %d %s", r.Status, r.Body)
	}
	r := ts.do(t, http.MethodGet, "/api/v1/widget-configs/"+shop, testOrg{}, "", "Authorization", bearer, "Origin", "https://evil.example")
	if r.Status != http.StatusForbidden || r.json(t)["data"].(map[string]any)["code"] != "origin_not_allowed" {
		t.Fatalf("unlisted origin: %d %s", r.Status, r.Body)
	}
	// An unknown id (the seed's placeholder, or a UUID) is a 404 the widget turns into defaults.
	for _, id := range []string{"YOUR_CONFIG_ID", "3f1e1c8e-2a4b-4c59-9d7e-8a1b2c3d4e5f"} {
		if r := ts.do(t, http.MethodGet, "/api/v1/widget-configs/"+id, testOrg{}, "", "Authorization", bearer); r.Status != http.StatusNotFound {
			t.Fatalf("unknown %s: %d", id, r.Status)
		}
	}
	// The token never manages configurations, nor reads any other admin route.
	for _, c := range []struct{ method, path, body string }{
		{http.MethodGet, "/api/v1/widget-configs/", ""},
		{http.MethodPost, "/api/v1/widget-configs/", `{"title":"x"}`},
		{http.MethodPatch, "/api/v1/widget-configs/" + open, `{"title":"x"}`},
		{http.MethodGet, "/api/v1/assistants/", ""},
		{http.MethodGet, "/api/v1/events", ""},
		{http.MethodGet, "/api/v1/knowledge/", ""},
		{http.MethodGet, "/api/v1/conversations/", ""},
	} {
		if r := ts.do(t, c.method, c.path, testOrg{}, c.body, "Authorization", bearer); r.Status != http.StatusForbidden {
			t.Errorf("%s %s with a widget token: want 403, got %d", c.method, c.path, r.Status)
		}
	}
}

func TestWidgetScriptIsServedWithETag(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	r := ts.do(t, http.MethodGet, "/widget.js", testOrg{}, "")
	if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("widget.js: %d %s", r.Status, r.Header.Get("Content-Type"))
	}
	etag := r.Header.Get("ETag")
	if etag != `"`+WidgetVersion+`"` || r.Header.Get("Cache-Control") == "" {
		t.Fatalf("ETag %q, Cache-Control %q", etag, r.Header.Get("Cache-Control"))
	}
	body := string(r.Body)
	if len(r.Body) > 30*1024 {
		t.Errorf("widget.js is %d bytes, budget 30 KB", len(r.Body))
	}
	for _, want := range []string{"attachShadow", "'" + WidgetVersion + "'", "data-client-id", "/auth/widget-token", "text/event-stream"} {
		if !strings.Contains(body, want) {
			t.Errorf("widget.js lacks %q", want)
		}
	}
	if strings.Contains(body, "__COMPANIN_WIDGET_VERSION__") {
		t.Error("version placeholder not replaced")
	}
	for _, inm := range []string{etag, `W/` + etag, `"other", ` + etag, "*"} {
		if r := ts.do(t, http.MethodGet, "/widget.js", testOrg{}, "", "If-None-Match", inm); r.Status != http.StatusNotModified || len(r.Body) != 0 {
			t.Errorf("If-None-Match %s: %d", inm, r.Status)
		}
	}
	if r := ts.do(t, http.MethodGet, "/widget.js", testOrg{}, "", "If-None-Match", `"stale"`); r.Status != http.StatusOK {
		t.Errorf("stale ETag: %d", r.Status)
	}
}

func TestWidgetDemoPage(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	r := ts.do(t, http.MethodGet, `/widget/demo?client_id=abc"><script>alert(1)</script>&assistant_id=A1`, testOrg{}, "")
	if r.Status != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("demo: %d %s", r.Status, r.Header.Get("Content-Type"))
	}
	body := string(r.Body)
	if !strings.Contains(body, `<script src="/widget.js" data-client-id="abc&#34;&gt;&lt;script&gt;`) || strings.Contains(body, "<script>alert(1)") {
		t.Fatalf("demo page does not escape its parameters:\n%s", body)
	}
	if r := ts.do(t, http.MethodGet, "/widget/demo", testOrg{}, ""); r.Status != http.StatusOK || strings.Contains(string(r.Body), "<script src") {
		t.Fatalf("demo without parameters: %d", r.Status)
	}
}
