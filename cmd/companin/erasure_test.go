package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// After DELETE /contexts/{ref} on a served instance, `companin events export`
// and `companin projections rebuild` show nothing of the person: the binary
// wires the same shredding store (with the redaction of older clear fields)
// into every command.
func TestErasureReachesExportAndRebuild(t *testing.T) {
	in := newInstance(t)
	in.serve()
	acme := in.createOrg("Acme")
	in.waitReady()

	status, body := in.request(http.MethodPost, "/api/v1/assistants/", acme, map[string]any{"name": "Support"})
	if status != http.StatusCreated {
		t.Fatalf("assistant: %d %s", status, body)
	}
	asst := between(string(body), `"id":"`, `"`)
	if status, body = in.request(http.MethodPost, "/api/v1/contexts/", acme,
		map[string]any{"user_reference": "zelda@example.org", "traits": map[string]any{"name": "Zelda Erasmus"}}); status != http.StatusCreated {
		t.Fatalf("context: %d %s", status, body)
	}
	if status, body = in.request(http.MethodPost, "/api/v1/conversations/", acme, map[string]any{
		"assistant_id": asst, "customer_id": "c-1", "user_context_id": "zelda@example.org",
		"title": "Zelda Erasmus complaint", "metadata": map[string]any{"email": "zelda@example.org"},
	}); status != http.StatusCreated {
		t.Fatalf("conversation: %d %s", status, body)
	}
	if all := exportText(in); !strings.Contains(all, "Zelda Erasmus complaint") {
		t.Fatal("the export must show the title before erasure: this test could not see a leak")
	}
	if status, body = in.request(http.MethodDelete, "/api/v1/contexts/zelda@example.org", acme, nil); status != http.StatusOK {
		t.Fatalf("erase: %d %s", status, body)
	}
	if all := exportText(in); strings.Contains(all, "Zelda") || strings.Contains(all, "zelda@") {
		t.Errorf("export after erasure shows the person:\n%s", all)
	}
	in.mustCLI("projections", "rebuild")
	conn, err := pgx.Connect(context.Background(), in.db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var left int
	if err := conn.QueryRow(context.Background(), `
		SELECT (SELECT count(*) FROM conversations WHERE title LIKE '%Zelda%' OR metadata::text LIKE '%zelda%')
		     + (SELECT count(*) FROM user_contexts WHERE traits::text LIKE '%Zelda%' OR user_reference IS NOT NULL AND user_reference LIKE '%zelda%')`).Scan(&left); err != nil || left != 0 {
		t.Errorf("after rebuild %d read-model rows keep the person (%v)", left, err)
	}
}

func exportText(in *instance) string {
	in.t.Helper()
	var b strings.Builder
	for _, e := range in.export() {
		b.WriteString(e.Stream + " " + string(e.Data) + "\n")
	}
	return b.String()
}

// between returns the text of s after the first open, up to close.
func between(s, open, close string) string {
	_, rest, ok := strings.Cut(s, open)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, close)
	return v
}
