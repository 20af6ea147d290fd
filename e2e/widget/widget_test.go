// Package widget runs the chat widget in a real browser: playwright-core
// (npm, e2e/widget/node_modules) drives Debian's Chromium against the built
// binary, with host pages on other loopback origins that embed the seed's
// script tag. See widget.test.mjs for what it checks.
package widget

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/companin/companin/e2e/e2etest"
)

// seedTag is the script tag of the customer-facing API reference, verbatim
// but for the host and the ids.
const seedTag = `<script src="https://widget.companin.tech/widget.js" data-client-id="YOUR_CLIENT_ID" data-assistant-id="YOUR_ASSISTANT_ID" data-config-id="YOUR_CONFIG_ID" data-instance-id="primary-widget"></script>`

const chromiumPath = "/usr/bin/chromium"

// need skips the test when a tool is missing on a developer's machine, and
// fails it in CI (CI=true), where .ci/run installs everything
// (docs/ci-packages.txt).
func need(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is missing in CI: %v (install steps: docs/ci-packages.txt)", what, err)
	}
	t.Skipf("%s is missing: %v (install steps: docs/ci-packages.txt)", what, err)
}

func TestWidgetInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server and drives a browser")
	}
	node, err := exec.LookPath("node")
	need(t, "node", err)
	_, err = os.Stat(chromiumPath)
	need(t, "chromium (apt-get install chromium)", err)
	_, err = os.Stat(filepath.Join("node_modules", "playwright-core", "package.json"))
	need(t, "playwright-core (npm ci in e2e/widget)", err)

	srv := e2etest.Start(t, filepath.Join("..", ".."))
	api := srv.Base

	// Host pages on two other origins: one the organization allows, one not.
	var pages pageSet
	host := httptest.NewServer(&pages)
	t.Cleanup(host.Close)
	evil := httptest.NewServer(&pages)
	t.Cleanup(evil.Close)

	org := srv.CreateOrg(t, "Widget E2E", host.URL)
	c := client{t: t, base: api + "/api/v1", id: org.ClientID, secret: org.ClientSecret}
	// The new credentials work once the server's read model has them.
	for deadline := time.Now().Add(30 * time.Second); c.status("GET", "/assistants/") == http.StatusUnauthorized; {
		if time.Now().After(deadline) {
			t.Fatal("the new organization's credentials never worked")
		}
		time.Sleep(100 * time.Millisecond)
	}

	assistant := c.post("/assistants/", `{"name":"Testshop Bot","language":"de","tone":"friendly"}`)["id"].(string)
	question := "Wie lange dauert der Versand?"
	qa := c.post("/knowledge/qa/", `{"question":"Wie lange dauert der Versand?","answer":"Der Versand dauert innerhalb Deutschlands zwei bis drei Werktage.","tags":["versand"],"source":"manual"}`)["id"].(string)
	deadline := time.Now().Add(60 * time.Second)
	for c.get("/knowledge/" + qa)["status"] != "ready" {
		if time.Now().After(deadline) {
			t.Fatalf("knowledge not ready: %v", c.get("/knowledge/"+qa))
		}
		time.Sleep(200 * time.Millisecond)
	}
	config := c.post("/widget-configs/", `{"title":"Testshop Hilfe","greeting":"Willkommen im Testshop! Wie können wir helfen?","primary_color":"#0f766e","launcher_label":"Hilfe","placeholder":"Ihre Frage…","locale":"de"}`)["id"].(string)

	// What the assistant answers this question, asked the server-side way.
	session := c.post("/sessions/", `{"assistant_id":"`+assistant+`"}`)["id"].(string)
	msg := c.post("/sessions/"+session+"/messages", `{"content":"`+question+`"}`)
	reply, _ := msg["reply"].(map[string]any)
	if reply == nil {
		t.Fatalf("no reply to the question: %v", msg)
	}
	sources, _ := reply["sources"].([]any)
	if len(sources) == 0 {
		t.Fatalf("the reply has no sources: %v", reply)
	}
	answer := firstRunes(strings.TrimSpace(strings.SplitN(reply["content"].(string), "\n", 2)[0]), 40)
	source := sources[0].(map[string]any)["title"].(string)

	tag := func(instance, configID string) string {
		r := strings.NewReplacer("https://widget.companin.tech", api, "YOUR_CLIENT_ID", org.ClientID,
			"YOUR_ASSISTANT_ID", assistant, "primary-widget", instance)
		s := r.Replace(seedTag)
		if configID != "" {
			s = strings.Replace(s, "YOUR_CONFIG_ID", configID, 1)
		}
		return s
	}
	pages.set("/index.html", hostPage("", tag("primary-widget", config)))
	// A shop with a strict Content-Security-Policy: scripts only from its
	// own origin and the API's (no 'unsafe-inline'), no inline styles, and
	// connections only to itself and the API. The API's origin in
	// script-src and connect-src is all docs/widget.md tells shops to add.
	// The inline script proves the policy is enforced.
	pages.setWithCSP("/strict.html", hostPage("", `<script>window.__inlineRan = true</script>`+tag("strict-widget", config)),
		"default-src 'none'; script-src 'self' "+api+"; connect-src 'self' "+api+"; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'")
	pages.set("/renew.html", hostPage("", tag("renew-widget", config)))

	// The demo page is served by the API's own origin: it works once that
	// origin is allowed, with the command docs/widget.md gives.
	demo := api + "/widget/demo?client_id=" + org.ClientID + "&assistant_id=" + assistant + "&config_id=" + config
	if status := tokenFrom(t, api, org.ClientID, api); status != http.StatusForbidden {
		t.Fatalf("a widget token for the demo page before its origin is allowed: %d, want 403", status)
	}
	update := exec.Command(srv.Bin, "org", "update", org.ClientID, "--add-origin", api)
	update.Env = srv.Env
	if out, err := update.CombinedOutput(); err != nil {
		t.Fatalf("org update --add-origin: %v\n%s", err, out)
	}
	for deadline := time.Now().Add(30 * time.Second); tokenFrom(t, api, org.ClientID, api) != http.StatusOK; {
		if time.Now().After(deadline) {
			t.Fatal("the server never allowed its own origin after org update")
		}
		time.Sleep(100 * time.Millisecond)
	}
	pages.set("/aggressive.html", hostPage(aggressiveCSS, tag("primary-widget", config)+"\n"+tag("second-widget", "")))

	screenshot := os.Getenv("WIDGET_SCREENSHOT")
	if screenshot == "" {
		screenshot = filepath.Join(t.TempDir(), "widget.png")
	} else if abs, err := filepath.Abs(screenshot); err == nil {
		screenshot = abs
	}
	nctx, ncancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer ncancel()
	run := exec.CommandContext(nctx, node, "widget.test.mjs")
	run.Env = append(os.Environ(), "HOST_URL="+host.URL, "EVIL_URL="+evil.URL, "QUESTION="+question,
		"EXPECT_ANSWER="+answer, "EXPECT_SOURCE="+source, "SCREENSHOT="+screenshot, "CHROMIUM="+chromiumPath, "API_URL="+api, "DEMO_URL="+demo)
	res, err := run.CombinedOutput()
	t.Logf("node:\n%s", res)
	if err != nil {
		t.Fatalf("widget browser test: %v", err)
	}
	if fi, err := os.Stat(screenshot); err != nil || fi.Size() < 10000 {
		t.Fatalf("no screenshot at %s: %v", screenshot, err)
	}
}

// aggressiveCSS is what careless or hostile host pages do to everything.
const aggressiveCSS = `<style>
html{font-size:40px!important}
body{font:italic 30px/3 "Comic Sans MS",cursive!important;color:red!important;letter-spacing:4px!important;text-transform:uppercase!important;background:#222!important}
*{box-sizing:content-box!important;margin:7px!important;padding:9px!important;border:3px dashed lime!important;border-radius:0!important;transition:none!important;animation:none!important}
div,section,button,textarea,span,ul,li,p,form,header,h2,[role=log]{display:block!important;position:static!important;width:500px!important;color:red!important;background:yellow!important;font-size:33px!important}
button{all:unset!important}
companin-widget{display:none!important;transform:scale(.5)!important;opacity:.1!important;position:static!important;filter:blur(4px)!important;zoom:3}
h2.host-title{font-size:40px}
</style>`

func hostPage(head, body string) string {
	return `<!doctype html><html lang="de"><head><meta charset="utf-8"><title>Testshop</title>` + head +
		`</head><body><h2 class="host-title">Testshop</h2><p>Ein Shop, der das Companin-Widget einbettet.</p>` + body + `</body></html>`
}

// pageSet serves the host pages, set once the server's URL is known.
type pageSet struct {
	m   map[string]string
	csp map[string]string
}

func (p *pageSet) set(path, html string) { p.setWithCSP(path, html, "") }

// setWithCSP serves html at path with a Content-Security-Policy header.
func (p *pageSet) setWithCSP(path, html, csp string) {
	if p.m == nil {
		p.m, p.csp = map[string]string{}, map[string]string{}
	}
	p.m[path], p.csp[path] = html, csp
}

func (p *pageSet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	html, ok := p.m[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if csp := p.csp[r.URL.Path]; csp != "" {
		w.Header().Set("Content-Security-Policy", csp)
	}
	_, _ = io.WriteString(w, html)
}

// tokenFrom asks for a widget token as a page of origin would.
func tokenFrom(t *testing.T, api, clientID, origin string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, api+"/api/v1/auth/widget-token", strings.NewReader(`{"client_id":"`+clientID+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", origin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

type client struct {
	t                *testing.T
	base, id, secret string
}

func (c client) do(method, path, body string) map[string]any {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("X-API-Key", c.id)
	req.Header.Set("X-API-Secret", c.secret)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		c.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	var env struct {
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		c.t.Fatalf("%s %s: %v: %s", method, path, err, b)
	}
	return env.Data
}

func (c client) status(method, path string) int {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("X-API-Key", c.id)
	req.Header.Set("X-API-Secret", c.secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (c client) post(path, body string) map[string]any { c.t.Helper(); return c.do("POST", path, body) }
func (c client) get(path string) map[string]any        { c.t.Helper(); return c.do("GET", path, "") }

func firstRunes(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n])
}
