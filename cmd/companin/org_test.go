package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// second is another deployment instance on the same database: another port.
func (in *instance) second() *instance {
	in.t.Helper()
	other := *in
	other.addr = freeAddr(in.t)
	other.env = nil
	for _, kv := range in.env {
		if !strings.HasPrefix(kv, "COMPANIN_ADDR=") {
			other.env = append(other.env, kv)
		}
	}
	other.env = append(other.env, "COMPANIN_ADDR="+other.addr)
	return &other
}

func lines[T any](t *testing.T, out string) []T {
	t.Helper()
	var all []T
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		all = append(all, v)
	}
	return all
}

type listedOrg struct {
	OrganizationID    string   `json:"organization_id"`
	Name              string   `json:"name"`
	AllowedOrigins    []string `json:"allowed_origins"`
	ActiveCredentials int      `json:"active_credentials"`
}

type listedCredential struct {
	ClientID  string  `json:"client_id"`
	RevokedAt *string `json:"revoked_at"`
	Active    bool    `json:"active"`
}

// TestOrgAdministration runs the operator's commands against two running
// servers: origins change, a second key is issued, the first is revoked and
// refused by both servers within seconds, and every change is an event the
// organization's auditors read from /api/v1/events.
func TestOrgAdministration(t *testing.T) {
	in := newInstance(t)
	acme := in.createOrg("Acme") // allowed origin https://shop.example
	other := in.createOrg("Other")
	in.serve()
	in2 := in.second()
	in2.serve()

	orgs := lines[listedOrg](t, in.mustCLI("org", "list"))
	if len(orgs) != 2 || orgs[0].OrganizationID != acme.OrganizationID || orgs[0].Name != "Acme" ||
		!slices.Equal(orgs[0].AllowedOrigins, []string{"https://shop.example"}) || orgs[0].ActiveCredentials != 1 ||
		orgs[1].OrganizationID != other.OrganizationID {
		t.Fatalf("org list: %+v", orgs)
	}

	// Origins, by organization id and by client id.
	var updated listedOrg
	out := in.mustCLI("org", "update", acme.OrganizationID, "--add-origin", "http://localhost:8080", "--add-origin", "https://NEW.example/")
	if err := json.Unmarshal([]byte(out), &updated); err != nil || !slices.Equal(updated.AllowedOrigins,
		[]string{"https://shop.example", "http://localhost:8080", "https://new.example"}) {
		t.Fatalf("org update printed %q: %v", out, err)
	}
	out = in.mustCLI("org", "update", "--remove-origin", "https://shop.example", acme.ClientID)
	if err := json.Unmarshal([]byte(out), &updated); err != nil || !slices.Equal(updated.AllowedOrigins,
		[]string{"http://localhost:8080", "https://new.example"}) {
		t.Fatalf("org update printed %q: %v", out, err)
	}
	// The running servers apply the new origins within seconds.
	token := func(addr, origin string) int {
		req, _ := http.NewRequest("POST", "http://"+addr+"/api/v1/auth/widget-token", strings.NewReader(`{"client_id":"`+acme.ClientID+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", origin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	waitFor(t, "the new origin works and the removed one is refused on both servers", func() bool {
		return token(in.addr, "https://new.example") == 200 && token(in2.addr, "https://new.example") == 200 &&
			token(in.addr, "https://shop.example") == 403 && token(in2.addr, "https://shop.example") == 403
	})

	// Rotation: a second key, both work; revoke the first.
	var second credentials
	out = in.mustCLI("org", "credentials", "create", acme.OrganizationID)
	if err := json.Unmarshal([]byte(out), &second); err != nil || !strings.HasPrefix(second.ClientID, "ci_") || !strings.HasPrefix(second.ClientSecret, "cs_") {
		t.Fatalf("credentials create printed %q: %v", out, err)
	}
	for _, srv := range []*instance{in, in2} {
		for _, c := range []credentials{acme, second} {
			if status, body := srv.request("GET", "/api/v1/assistants/", c, nil); status != 200 {
				t.Fatalf("%s on %s before the revocation: %d %s", c.ClientID, srv.addr, status, body)
			}
		}
	}
	creds := lines[listedCredential](t, in.mustCLI("org", "credentials", "list", second.ClientID))
	if len(creds) != 2 || creds[0].ClientID != acme.ClientID || creds[1].ClientID != second.ClientID || !creds[0].Active || !creds[1].Active {
		t.Fatalf("credentials list: %+v", creds)
	}
	if strings.Contains(in.mustCLI("org", "credentials", "list", acme.OrganizationID), "hash") {
		t.Fatal("credentials list shows secret hashes")
	}

	revoked := time.Now()
	out = in.mustCLI("org", "credentials", "revoke", acme.OrganizationID, acme.ClientID)
	var r listedCredential
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.ClientID != acme.ClientID || r.Active || r.RevokedAt == nil {
		t.Fatalf("revoke printed %q: %v", out, err)
	}
	// Both running servers refuse the revoked secret within seconds (their
	// credential cache lives 3 s); the second key goes on working.
	waitFor(t, "both servers refuse the revoked secret", func() bool {
		s1, _ := in.request("GET", "/api/v1/assistants/", acme, nil)
		s2, _ := in2.request("GET", "/api/v1/assistants/", acme, nil)
		return s1 == http.StatusUnauthorized && s2 == http.StatusUnauthorized
	})
	t.Logf("the revoked secret was refused by both servers %v after the revoke command started", time.Since(revoked).Round(100*time.Millisecond))
	for _, srv := range []*instance{in, in2} {
		if status, body := srv.request("GET", "/api/v1/assistants/", second, nil); status != 200 {
			t.Fatalf("the second key after the revocation: %d %s", status, body)
		}
	}
	if token(in2.addr, "https://new.example") != http.StatusUnauthorized {
		t.Fatal("a widget token is still issued for the revoked client id")
	}
	// Revoking again changes nothing and succeeds.
	in.mustCLI("org", "credentials", "revoke", acme.OrganizationID, acme.ClientID)
	creds = lines[listedCredential](t, in.mustCLI("org", "credentials", "list", acme.OrganizationID))
	if len(creds) != 2 || creds[0].Active || !creds[1].Active {
		t.Fatalf("credentials list after revoking: %+v", creds)
	}

	// Auditors see every change in the organization's own log.
	status, body := in.request("GET", "/api/v1/events?limit=100", second, nil)
	if status != 200 {
		t.Fatalf("events: %d %s", status, body)
	}
	var page struct {
		Data []struct {
			Type     string `json:"type"`
			Stream   string `json:"stream"`
			Metadata struct {
				Actor string `json:"actor"`
			} `json:"metadata"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range page.Data {
		if e.Stream == "organization-"+acme.OrganizationID {
			types = append(types, e.Type)
			if e.Metadata.Actor != "cli" {
				t.Fatalf("event %s by %q, want cli", e.Type, e.Metadata.Actor)
			}
		}
	}
	want := []string{"OrganizationCreated", "CredentialsIssued", "AllowedOriginAdded", "AllowedOriginAdded",
		"AllowedOriginRemoved", "CredentialsIssued", "CredentialsRevoked"}
	if !slices.Equal(types, want) {
		t.Fatalf("the organization's stream holds %v, want %v", types, want)
	}
	if strings.Contains(string(body), second.ClientSecret) || strings.Contains(string(body), acme.ClientSecret) {
		t.Fatal("a client secret is in the event log")
	}
	// Another organization sees none of it.
	status, body = in.request("GET", "/api/v1/events?limit=100", other, nil)
	if status != 200 || strings.Contains(string(body), acme.OrganizationID) {
		t.Fatalf("another organization's events: %d %s", status, body)
	}

	// Exit codes: 2 bad usage (with the usage), 1 failed.
	for _, args := range [][]string{
		{"org", "update", acme.OrganizationID}, {"org", "update"}, {"org", "update", "a", "b", "--add-origin", "https://x.example"},
		{"org", "credentials"}, {"org", "credentials", "rotate", acme.OrganizationID}, {"org", "credentials", "create"},
		{"org", "credentials", "revoke", acme.OrganizationID}, {"org", "list", "extra"},
	} {
		_, errOut, code := in.cli(args...)
		if code != 2 || !strings.Contains(errOut, "Usage:") {
			t.Errorf("companin %q: exit %d, want 2 with the usage; stderr:\n%s", args, code, errOut)
		}
	}
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"org", "update", "00000000-0000-0000-0000-000000000000", "--add-origin", "https://x.example"}, "no organization"},
		{[]string{"org", "update", acme.OrganizationID, "--add-origin", "not an origin"}, "allowed origin must be"},
		{[]string{"org", "credentials", "revoke", acme.OrganizationID, other.ClientID}, "no credentials with this client id"},
		{[]string{"org", "credentials", "list", "ci_nobody"}, "no organization"},
	} {
		_, errOut, code := in.cli(c.args...)
		if code != 1 || !strings.Contains(errOut, c.says) {
			t.Errorf("companin %q: exit %d, want 1 saying %q; stderr:\n%s", c.args, code, c.says, errOut)
		}
	}
}

// TestSeedWidgetTokenCurl runs the API reference's widget-token curl, as
// written but for the host, against an organization created as the README
// shows (with an allowed origin): a server-side call sends no Origin and
// gets its token; a browser on another origin does not.
func TestSeedWidgetTokenCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("curl: %v", err)
	}
	in := newInstance(t)
	org := in.createOrg("Acme")
	in.serve()
	// seed/api-reference.de.txt, "Widget Token abrufen".
	seed := `curl -X POST https://app.companin.tech/api/v1/auth/widget-token \
  -H "Content-Type: application/json" \
  -d '{"client_id":"YOUR_CLIENT_ID"}'`
	script := strings.NewReplacer("https://app.companin.tech", "http://"+in.addr, "YOUR_CLIENT_ID", org.ClientID).Replace(seed)
	run := func(script string) string {
		cmd := exec.Command("/bin/sh", "-c", script+` -sS -w '\n%{http_code}'`)
		cmd.Env = []string{"PATH=" + strings.TrimSuffix(curl, "/curl") + ":/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
		return string(out)
	}
	out := run(script)
	var tok struct {
		Token     string `json:"token"`
		ExpiresIn int    `json:"expires_in"`
		TokenType string `json:"token_type"`
	}
	i := strings.LastIndex(out, "\n")
	body, code := out[:i], out[i+1:]
	if code != "200" || json.Unmarshal([]byte(body), &tok) != nil || !strings.HasPrefix(tok.Token, "eyJ") ||
		tok.ExpiresIn != 3600 || tok.TokenType != "Bearer" {
		t.Fatalf("the seed's curl answered %s", out)
	}
	out = run(script + ` -H "Origin: https://evil.example"`)
	if !strings.HasSuffix(out, "\n403") || !strings.Contains(out, "origin_not_allowed") {
		t.Fatalf("a disallowed browser origin: %s", out)
	}
}

// TestBadSettingExitsOneNamingIt: a bad setting is a failure (1), not bad
// usage (2), and the message names the variable.
func TestBadSettingExitsOneNamingIt(t *testing.T) {
	in := newInstance(t)
	in.env = append(in.env, "COMPANIN_RATE_LIMIT_PER_HOUR=lots")
	_, errOut, code := in.cli("migrate")
	if code != 1 || !strings.Contains(errOut, "COMPANIN_RATE_LIMIT_PER_HOUR") {
		t.Fatalf("exit %d, want 1 naming the variable; stderr:\n%s", code, errOut)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 30 s: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
