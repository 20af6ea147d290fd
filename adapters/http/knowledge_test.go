package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/companin/companin/adapters/extract"
	"github.com/companin/companin/adapters/fetch"
	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/knowledge"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "extract", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// upload posts a multipart form as the seed's curl -F does.
func (ts *testServer) upload(t *testing.T, org testOrg, fields map[string]string, fileName string, file []byte) response {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, v := range fields {
		_ = mw.WriteField(k, v)
	}
	if file != nil {
		fw, _ := mw.CreateFormFile("file", fileName)
		_, _ = fw.Write(file)
	}
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/v1/knowledge/files/", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("X-API-Key", org.ClientID)
	req.Header.Set("X-API-Secret", org.Secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// ingest runs the ingestion worker over every trigger in the log, as the
// runtime's shared worker would, once.
func (ts *testServer) ingest(t *testing.T, f *fetch.Fetcher) {
	t.Helper()
	h := commands.IngestKnowledgeHandler{Store: ts.Store, Extract: extract.File, Fetch: f}
	events, err := ts.Store.ReadAll(context.Background(), es.Start, 10000, es.Filter{Types: knowledge.IngestionTriggers})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if err := h.HandleEvent(context.Background(), e); err != nil {
			t.Fatalf("ingest %s: %v", e.Type, err)
		}
	}
}

// settled waits until the source is no longer processing and returns it.
func (ts *testServer) settled(t *testing.T, org testOrg, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d := ts.do(t, http.MethodGet, "/api/v1/knowledge/"+id, org, "").data(t)
		if d["status"] != "processing" || time.Now().After(deadline) {
			return d
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (ts *testServer) search(t *testing.T, org testOrg, query string) []map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "limit": 3})
	r := ts.do(t, http.MethodPost, "/api/v1/knowledge/search", org, string(body))
	if r.Status != http.StatusOK {
		t.Fatalf("search: %d %s", r.Status, r.Body)
	}
	var out []map[string]any
	for _, x := range r.data(t)["results"].([]any) {
		out = append(out, x.(map[string]any))
	}
	return out
}

// The tests wait longer than the default for read models: on a loaded CI
// machine projections can lag more than five seconds behind a write.
func TestKnowledgeSeedRequestsAndSearch(t *testing.T) {
	ts := newTestServer(t, withConfig(Config{ReadYourWritesWait: 30 * time.Second}))
	// The seed's curl: -F "title=Product Manual" -F "file_type=pdf" -F "file=@product_manual.pdf".
	r := ts.upload(t, ts.org, map[string]string{"title": "Product Manual", "file_type": "pdf"}, "product_manual.pdf", fixture(t, "manual.pdf"))
	if r.Status != http.StatusCreated {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	d := r.data(t)
	if d["status"] != "processing" || d["title"] != "Product Manual" || d["kind"] != "file" || d["file_type"] != "pdf" {
		t.Fatalf("upload answer: %s", r.Body)
	}
	fileID := d["id"].(string)

	// The seed's Q&A pair, and the JavaScript example's with source.
	r = ts.do(t, http.MethodPost, "/api/v1/knowledge/qa/", ts.org, `{"question": "What are your business hours?",
		"answer": "We are open Monday to Friday, 9 AM to 6 PM EST.", "tags": ["hours", "support"]}`)
	if r.Status != http.StatusCreated || r.data(t)["status"] != "ready" {
		t.Fatalf("qa: %d %s", r.Status, r.Body)
	}
	r = ts.do(t, http.MethodPost, "/api/v1/knowledge/qa/", ts.org, `{"question": "Wie setze ich mein Passwort zurück?",
		"answer": "Gehe zu Einstellungen und klicke auf \"Passwort zurücksetzen\"...", "tags": ["password", "security"], "source": "manual"}`)
	if r.Status != http.StatusCreated || r.data(t)["source"] != "manual" || r.data(t)["language"] != "de" {
		t.Fatalf("qa de: %d %s", r.Status, r.Body)
	}

	ts.ingest(t, fetch.New(fetch.Config{}))
	d = ts.settled(t, ts.org, fileID)
	if d["status"] != "ready" || d["chunk_count"].(float64) < 1 || d["pages"] != float64(1) || d["language"] != "en" {
		t.Fatalf("after ingestion: %v", d)
	}

	r = ts.do(t, http.MethodGet, "/api/v1/knowledge/"+fileID+"/chunks?limit=100", ts.org, "")
	chunks := r.json(t)["data"].([]any)
	if r.Status != http.StatusOK || len(chunks) != int(d["chunk_count"].(float64)) {
		t.Fatalf("chunks: %d %s", r.Status, r.Body)
	}
	if c := chunks[0].(map[string]any); c["page"] != float64(1) || len(c["title_path"].([]any)) == 0 || c["text"] == "" {
		t.Errorf("first chunk: %v", c)
	}

	got := ts.search(t, ts.org, "how do I reset the admin password?")
	if len(got) == 0 || !strings.Contains(got[0]["text"].(string), "reset button") {
		t.Fatalf("password search: %v", got)
	}
	why := got[0]["why"].(map[string]any)
	if got[0]["score"].(float64) <= 0 || why["full_text_rank"] == float64(0) || len(why["matched_terms"].([]any)) == 0 {
		t.Errorf("no explanation: %v", got[0])
	}
	if tp := got[0]["title_path"].([]any); len(tp) == 0 || tp[len(tp)-1] != "Resetting the password" {
		t.Errorf("title path: %v", got[0]["title_path"])
	}
	if got := ts.search(t, ts.org, "When are you open?"); len(got) == 0 || got[0]["kind"] != "qa" || got[0]["answer"] == "" {
		t.Errorf("qa search: %v", got)
	}
	if got := ts.search(t, ts.org, "Passwort vergessen"); len(got) == 0 || !strings.Contains(got[0]["text"].(string), "Passwort") {
		t.Errorf("german search: %v", got)
	}

	// Another organization sees none of it.
	other := ts.newOrg(t, "Other")
	expectError(t, ts.do(t, http.MethodGet, "/api/v1/knowledge/"+fileID, other, ""), http.StatusNotFound)
	if got := ts.search(t, other, "reset the admin password"); len(got) != 0 {
		t.Errorf("other org found %v", got)
	}

	// List, then delete.
	r = ts.do(t, http.MethodGet, "/api/v1/knowledge/?limit=2", ts.org, "")
	m := r.json(t)
	if items := m["data"].([]any); len(items) != 2 || m["meta"].(map[string]any)["has_more"] != true {
		t.Fatalf("list: %s", r.Body)
	}
	r = ts.do(t, http.MethodGet, "/api/v1/knowledge?kind=qa&status=ready", ts.org, "")
	if items := r.json(t)["data"].([]any); len(items) != 2 || items[0].(map[string]any)["kind"] != "qa" {
		t.Fatalf("filtered list: %s", r.Body)
	}
	expectError(t, ts.do(t, http.MethodGet, "/api/v1/knowledge?status=done", ts.org, ""), 422)
	r = ts.do(t, http.MethodDelete, "/api/v1/knowledge/"+fileID, ts.org, "")
	if r.Status != http.StatusOK {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	expectError(t, ts.do(t, http.MethodGet, "/api/v1/knowledge/"+fileID, ts.org, ""), http.StatusNotFound)
	expectError(t, ts.do(t, http.MethodDelete, "/api/v1/knowledge/"+fileID, ts.org, ""), http.StatusNotFound)
	for _, p := range ts.search(t, ts.org, "reset the admin password") {
		if p["knowledge_id"] == fileID {
			t.Errorf("deleted source still found")
		}
	}
}

func TestKnowledgeUploadErrors(t *testing.T) {
	ts := newTestServer(t, withConfig(Config{ReadYourWritesWait: 30 * time.Second}))
	m := expectError(t, ts.upload(t, ts.org, map[string]string{"title": "x", "file_type": "exe"}, "x.exe", []byte("MZ")), 422)
	if msg := fieldErrors(t, m)["file_type"]; !strings.Contains(msg, "pdf, docx, html, md, txt, csv") {
		t.Errorf("unknown type message: %v", m)
	}
	m = expectError(t, ts.upload(t, ts.org, map[string]string{"title": "x", "file_type": "pdf"}, "x.pdf", fixture(t, "manual.docx")), 422)
	if msg := fieldErrors(t, m)["file"]; !strings.Contains(msg, "PDF") || !strings.Contains(msg, "accepted types") {
		t.Errorf("mismatch message: %v", m)
	}
	big := bytes.Repeat([]byte("a"), knowledge.MaxFileBytes+10)
	m = expectError(t, ts.upload(t, ts.org, map[string]string{"title": "x", "file_type": "txt"}, "x.txt", big), 413)
	if !strings.Contains(m["detail"].(string), "MB") {
		t.Errorf("413 detail: %v", m)
	}
	expectError(t, ts.upload(t, ts.org, map[string]string{"title": "x", "file_type": "txt"}, "", nil), 422)
	m = expectError(t, ts.do(t, http.MethodPost, "/api/v1/knowledge/qa/", ts.org, `{"question": ""}`), 422)
	if fe := fieldErrors(t, m); fe["question"] == "" {
		t.Errorf("qa errors: %v", m)
	}
	expectError(t, ts.do(t, http.MethodPost, "/api/v1/knowledge/urls/", ts.org, `{"url": "ftp://example.com/x"}`), 422)
	expectError(t, ts.do(t, http.MethodGet, "/api/v1/knowledge/not-a-uuid", ts.org, ""), 404)

	// A corrupt PDF is accepted (it looks like a PDF) and fails with a reason.
	r := ts.upload(t, ts.org, map[string]string{"title": "Broken", "file_type": "pdf"}, "broken.pdf", fixture(t, "corrupt.pdf"))
	if r.Status != http.StatusCreated {
		t.Fatalf("upload corrupt: %d %s", r.Status, r.Body)
	}
	id := r.data(t)["id"].(string)
	r = ts.upload(t, ts.org, map[string]string{"title": "Scan", "file_type": "pdf"}, "scan.pdf", fixture(t, "scan.pdf"))
	scanID := r.data(t)["id"].(string)
	ts.ingest(t, fetch.New(fetch.Config{}))
	if d := ts.settled(t, ts.org, id); d["status"] != "failed" || !strings.Contains(fmt.Sprint(d["error"]), "damaged") {
		t.Errorf("corrupt pdf: %v", d)
	}
	if d := ts.settled(t, ts.org, scanID); d["status"] != "failed" || !strings.Contains(fmt.Sprint(d["error"]), "OCR") {
		t.Errorf("scanned pdf: %v", d)
	}
}

func TestKnowledgeURLsAndUpsert(t *testing.T) {
	ts := newTestServer(t, withConfig(Config{ReadYourWritesWait: 30 * time.Second}))
	version := "The X200 supports Wi-Fi 6 and has a three year warranty."
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			select {
			case <-time.After(5 * time.Second):
			case <-r.Context().Done():
			}
		default:
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `<html><head><title>New features</title></head><body><nav>Home | Blog</nav>
				<article><h1>New features</h1><p>%s</p></article></body></html>`, version)
		}
	}))
	defer page.Close()

	add := func(body string) string {
		r := ts.do(t, http.MethodPost, "/api/v1/knowledge/urls/", ts.org, body)
		if r.Status != http.StatusCreated || r.data(t)["status"] != "processing" {
			t.Fatalf("add url: %d %s", r.Status, r.Body)
		}
		return r.data(t)["id"].(string)
	}
	okID := add(`{"url": "` + page.URL + `/blog/new-features"}`)
	slowID := add(`{"url": "` + page.URL + `/slow", "title": "Slow"}`)
	ts.ingest(t, fetch.New(fetch.Config{AllowPrivate: true, Timeout: 300 * time.Millisecond}))
	if d := ts.settled(t, ts.org, okID); d["status"] != "ready" || d["title"] != "New features" {
		t.Errorf("page: %v", d)
	}
	if d := ts.settled(t, ts.org, slowID); d["status"] != "failed" || !strings.Contains(fmt.Sprint(d["error"]), "in time") {
		t.Errorf("slow page: %v", d)
	}
	if got := ts.search(t, ts.org, "warranty"); len(got) == 0 || got[0]["knowledge_id"] != okID {
		t.Errorf("page search: %v", got)
	}

	// Without COMPANIN_FETCH_ALLOW_PRIVATE, a page on a private address is refused.
	privateID := add(`{"url": "` + page.URL + `/internal", "title": "Internal"}`)
	ts.ingest(t, fetch.New(fetch.Config{}))
	if d := ts.settled(t, ts.org, privateID); d["status"] != "failed" || !strings.Contains(fmt.Sprint(d["error"]), "private") {
		t.Errorf("private page: %v", d)
	}

	// Refresh fetches again: the changed page replaces the old chunks.
	version = "The X200 now has a five year warranty."
	r := ts.do(t, http.MethodPost, "/api/v1/knowledge/"+okID+"/refresh", ts.org, "")
	if r.Status != http.StatusAccepted || r.data(t)["status"] != "processing" {
		t.Fatalf("refresh: %d %s", r.Status, r.Body)
	}
	ts.ingest(t, fetch.New(fetch.Config{AllowPrivate: true}))
	if d := ts.settled(t, ts.org, okID); d["status"] != "ready" || d["revision"] != float64(2) {
		t.Errorf("refreshed: %v", d)
	}
	if got := ts.search(t, ts.org, "warranty"); len(got) == 0 || !strings.Contains(got[0]["text"].(string), "five year") {
		t.Errorf("refreshed search: %v", got)
	}

	// Upsert by external_id: the same file again changes nothing, a changed one replaces it.
	up := func(text string) map[string]any {
		r := ts.upload(t, ts.org, map[string]string{"title": "Returns", "file_type": "md", "external_id": "kb-42"}, "returns.md", []byte(text))
		if r.Status != http.StatusCreated {
			t.Fatalf("upsert: %d %s", r.Status, r.Body)
		}
		return r.data(t)
	}
	first := up("# Returns\n\nReturns are accepted within 30 days.")
	again := up("# Returns\n\nReturns are accepted within 30 days.")
	if first["id"] != again["id"] || again["revision"] != float64(1) {
		t.Errorf("unchanged upsert: %v then %v", first, again)
	}
	changed := up("# Returns\n\nReturns are accepted within 60 days.")
	if changed["id"] != first["id"] || changed["revision"] != float64(2) {
		t.Errorf("changed upsert: %v", changed)
	}
	ts.ingest(t, fetch.New(fetch.Config{}))
	ts.settled(t, ts.org, first["id"].(string))
	got := ts.search(t, ts.org, "how many days for returns")
	if len(got) == 0 || !strings.Contains(got[0]["text"].(string), "60 days") {
		t.Errorf("upserted search: %v", got)
	}
	for _, p := range got {
		if strings.Contains(p["text"].(string), "30 days") {
			t.Errorf("stale chunk still found: %v", p)
		}
	}
}
