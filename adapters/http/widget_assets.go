package httpapi

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"html/template"
	"net/http"
	"strings"
)

// widgetSource is the chat widget sites embed with one script tag. It is
// plain JavaScript, shipped inside the binary so the widget and the API it
// talks to are always the same version.
//
//go:embed widget/widget.js
var widgetSource []byte

// WidgetVersion names the embedded widget: the first bytes of its hash, so
// that it changes exactly when the script does. It is the ETag, and the
// script reports it as window.__companinWidgets[id].version.
var WidgetVersion, widgetScript = func() (string, []byte) {
	sum := sha256.Sum256(widgetSource)
	v := hex.EncodeToString(sum[:])[:12]
	return v, bytes.Replace(widgetSource, []byte("__COMPANIN_WIDGET_VERSION__"), []byte(v), 1)
}()

// widgetScript serves GET /widget.js. Browsers revalidate it every few
// minutes (If-None-Match answers 304), so a new release reaches sites soon
// without them changing their tag.
func (s *Server) widgetScript(w http.ResponseWriter, r *http.Request) {
	etag := `"` + WidgetVersion + `"`
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "public, max-age=300, must-revalidate")
	h.Set("X-Widget-Version", WidgetVersion)
	h.Set("X-Content-Type-Options", "nosniff")
	// Any site may load the script; the API decides what a page may do.
	h.Set("Cross-Origin-Resource-Policy", "cross-origin")
	if etagMatches(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(widgetScript)
}

// etagMatches reads an If-None-Match list ("*", weak validators included).
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

var demoPage = template.Must(template.New("demo").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Companin widget demo</title>
<style>
body{font-family:system-ui,sans-serif;max-width:720px;margin:48px auto;padding:0 20px;color:#1f2937;line-height:1.6}
code,pre{background:#f3f4f6;border-radius:6px}
pre{padding:12px;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
</style>
</head>
<body>
<h1>Companin widget demo</h1>
{{if and .ClientID .AssistantID}}
<p>This page embeds the chat widget exactly as a site would. Open it with the button in the corner.</p>
<pre><code>{{.Snippet}}</code></pre>
<script src="{{.Src}}" data-client-id="{{.ClientID}}" data-assistant-id="{{.AssistantID}}" data-config-id="{{.ConfigID}}" data-instance-id="demo-widget"></script>
{{else}}
<p>Add <code>?client_id=YOUR_CLIENT_ID&amp;assistant_id=YOUR_ASSISTANT_ID</code> (and optionally <code>&amp;config_id=YOUR_CONFIG_ID</code>) to this page's address to try the widget.</p>
{{end}}
</body>
</html>
`))

// widgetDemo serves GET /widget/demo?client_id=...&assistant_id=...[&config_id=...]:
// a page with the widget, for people evaluating it.
func (s *Server) widgetDemo(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	clip := func(v string) string {
		if len(v) > 200 {
			return ""
		}
		return strings.TrimSpace(v)
	}
	d := struct{ ClientID, AssistantID, ConfigID, Src, Snippet string }{
		ClientID: clip(q.Get("client_id")), AssistantID: clip(q.Get("assistant_id")), ConfigID: clip(q.Get("config_id")),
		Src: "/widget.js",
	}
	d.Snippet = `<script src="` + scheme(r) + "://" + r.Host + `/widget.js" data-client-id="` + d.ClientID +
		`" data-assistant-id="` + d.AssistantID + `" data-config-id="` + d.ConfigID + `" data-instance-id="primary-widget"></script>`
	var buf bytes.Buffer
	if err := demoPage.Execute(&buf, d); err != nil {
		writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

func scheme(r *http.Request) string {
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		return "https"
	}
	return "http"
}
