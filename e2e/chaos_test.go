package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/companin/companin/adapters/extract/bombs"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/companin/companin/e2e/e2etest"
	"github.com/jackc/pgx/v5"
)

// TestOneOrganizationCannotStopAnother is the cross-organization chaos test:
// organization A sends every poison input we know of (NUL and invalid UTF-8
// in every field and query parameter, a PDF and a DOCX decompression bomb, a
// flood of event streams it never reads) while organization B runs a steady
// mix of writes and reads against the same server. B must see no error, lose
// no write, and keep its p99 within 3x of its quiet p99; A must get clear 4xx
// answers (never a 5xx), and every source A uploaded must end ready or failed.
func TestOneOrganizationCannotStopAnother(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the server")
	}
	// Each organization gets 2,000 requests an hour, about twice what B
	// needs here and close to the default of 1,000: the hourly limit is how
	// a flood of one tenant is kept from the others in production, so the
	// test runs with it rather than without. A's poison still reaches every
	// route many times before its budget is spent.
	srv := e2etest.Start(t, "..", "COMPANIN_RATE_LIMIT_PER_HOUR=2000")
	a := newClient(srv.Base, srv.CreateOrg(t, "Chaos A"))
	b := newClient(srv.Base, srv.CreateOrg(t, "Steady B"))

	steady := &steadyMix{c: b}
	steady.setup(t)
	steady.run(t, 40) // warm-up: first requests pay for connection set-up and plans
	quiet := steady.run(t, 160)
	t.Logf("B quiet: %d requests, p50 %v, p99 %v", len(quiet), percentile(quiet, 50), percentile(quiet, 99))

	ctx, stop := context.WithCancel(context.Background())
	var attack sync.WaitGroup
	poison := &poisonLog{}
	attack.Add(3)
	go func() { defer attack.Done(); floodInvalidText(ctx, a, poison) }()
	go func() { defer attack.Done(); floodStalledStreams(ctx, srv.Base, a, poison) }()
	var sources []string
	go func() { defer attack.Done(); sources = uploadBombs(a, poison) }()

	time.Sleep(2 * time.Second) // let the attack get going before measuring
	loaded := steady.run(t, 160)
	stop()
	attack.Wait()
	t.Logf("B under attack: %d requests, p50 %v, p99 %v", len(loaded), percentile(loaded, 50), percentile(loaded, 99))
	t.Logf("A: %s", poison.summary())

	for _, e := range steady.errors() {
		t.Errorf("B saw an error: %s", e)
	}
	for _, e := range poison.serverErrors() {
		t.Errorf("A's poison got a server error instead of a clear 4xx: %s", e)
	}
	if poison.refused == 0 {
		t.Errorf("none of A's poison was refused with a 422")
	}
	// A ratio of percentiles on a two-core machine. A's documents are read
	// in a child process at lower priority, but on two cores it still takes
	// CPU that B's requests would use (56 ms quiet became 240-250 ms there),
	// while a stalled process (the 3-5 s garbage-collector freezes PDFium
	// caused in-process) or a stopped projection is far beyond: the quiet
	// figure is floored at 250 ms, so that CPU sharing and noise on a tiny
	// baseline cannot fail the test (46 ms quiet became 365 ms under attack
	// once in six quiet runs on two cores), and a stall of seconds still does.
	base := max(percentile(quiet, 99), 250*time.Millisecond)
	if p99 := percentile(loaded, 99); p99 > 3*base {
		t.Errorf("B's p99 went from %v to %v under A's attack (more than 3x)", percentile(quiet, 99), p99)
	}

	steady.verifyNothingLost(t)
	waitTerminal(t, srv, sources)
	waitReady(t, srv.Base)
}

// client calls the API as one organization.
type client struct {
	base, id, secret string
	http             *http.Client
}

func newClient(base string, org e2etest.Org) *client {
	return &client{base: base, id: org.ClientID, secret: org.ClientSecret,
		http: &http.Client{Timeout: 20 * time.Second}}
}

// call sends body (raw bytes, or a value to encode as JSON) and answers the
// status, the decoded envelope's data and how long it took.
func (c *client) call(method, path string, body any, contentType string) (int, json.RawMessage, time.Duration, error) {
	var r io.Reader
	switch v := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(v)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return 0, nil, 0, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		return 0, nil, 0, err
	}
	req.Header.Set("X-API-Key", c.id)
	req.Header.Set("X-API-Secret", c.secret)
	if contentType == "" && body != nil {
		contentType = "application/json"
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, time.Since(start), err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	if err != nil {
		return resp.StatusCode, nil, took, err
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return resp.StatusCode, nil, took, fmt.Errorf("not an envelope: %.200s", raw)
	}
	return resp.StatusCode, env.Data, took, nil
}

func idOf(data json.RawMessage) string {
	var v struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(data, &v)
	return v.ID
}

// steadyMix is organization B: it writes and reads back what it wrote.
type steadyMix struct {
	c         *client
	assistant string
	session   string

	mu         sync.Mutex
	errs       []string
	assistants []string
	messages   []string
	contexts   []string
	qas        []string
	n          int
}

func (m *steadyMix) fail(format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.errs = append(m.errs, fmt.Sprintf(format, args...))
}

func (m *steadyMix) errors() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.errs...)
}

func (m *steadyMix) setup(t *testing.T) {
	t.Helper()
	status, data, _, err := m.c.call("POST", "/api/v1/assistants/", map[string]any{"name": "Steady", "language": "en"}, "")
	if err != nil || status != http.StatusCreated {
		t.Fatalf("B: create assistant: %d %v %s", status, err, data)
	}
	m.assistant = idOf(data)
	status, data, _, err = m.c.call("POST", "/api/v1/sessions/", map[string]any{"assistant_id": m.assistant}, "")
	if err != nil || status != http.StatusCreated {
		t.Fatalf("B: start session: %d %v %s", status, err, data)
	}
	m.session = idOf(data)
}

// run performs n requests with two clients at once and answers their
// latencies. Every write is read back at once (read-your-writes). It gives
// up after five errors: a stalled server should fail the test, not hang it.
func (m *steadyMix) run(t *testing.T, n int) []time.Duration {
	t.Helper()
	var (
		mu        sync.Mutex
		latencies []time.Duration
		wg        sync.WaitGroup
	)
	record := func(d time.Duration) {
		mu.Lock()
		latencies = append(latencies, d)
		mu.Unlock()
	}
	expect := func(what string, want int, status int, data json.RawMessage, took time.Duration, err error) bool {
		record(took)
		if err != nil || status != want {
			m.fail("%s: status %d (want %d), err %v, data %.200s", what, status, want, err, data)
			return false
		}
		return true
	}
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/2 && len(m.errors()) < 5; {
				m.mu.Lock()
				k := m.n
				m.n++
				m.mu.Unlock()
				switch k % 4 {
				case 0:
					status, data, took, err := m.c.call("POST", "/api/v1/assistants/", map[string]any{"name": fmt.Sprintf("steady %d", k)}, "")
					if expect("create assistant", 201, status, data, took, err) {
						id := idOf(data)
						m.mu.Lock()
						m.assistants = append(m.assistants, id)
						m.mu.Unlock()
						status, data, took, err = m.c.call("GET", "/api/v1/assistants/"+id, nil, "")
						expect("read assistant", 200, status, data, took, err)
					}
				case 1:
					content := fmt.Sprintf("steady question %d", k)
					status, data, took, err := m.c.call("POST", "/api/v1/sessions/"+m.session+"/messages?wait=0", map[string]any{"content": content}, "")
					if status == 201 {
						status = 202 // the reply may already be there
					}
					if expect("post message", 202, status, data, took, err) {
						m.mu.Lock()
						m.messages = append(m.messages, content)
						m.mu.Unlock()
					}
				case 2:
					ref := fmt.Sprintf("steady-user-%d", k)
					status, data, took, err := m.c.call("POST", "/api/v1/contexts/", map[string]any{"user_reference": ref, "traits": map[string]any{"plan": "pro"}}, "")
					if expect("create context", 201, status, data, took, err) {
						m.mu.Lock()
						m.contexts = append(m.contexts, ref)
						m.mu.Unlock()
						status, data, took, err = m.c.call("GET", "/api/v1/contexts/"+ref, nil, "")
						expect("read context", 200, status, data, took, err)
					}
				case 3:
					status, data, took, err := m.c.call("POST", "/api/v1/knowledge/qa/", map[string]any{
						"question": fmt.Sprintf("Steady question %d?", k), "answer": "Steady answer."}, "")
					if expect("create qa", 201, status, data, took, err) {
						id := idOf(data)
						m.mu.Lock()
						m.qas = append(m.qas, id)
						m.mu.Unlock()
						status, data, took, err = m.c.call("GET", "/api/v1/knowledge/"+id, nil, "")
						expect("read qa", 200, status, data, took, err)
					}
				}
				i++
			}
		}()
	}
	wg.Wait()
	return latencies
}

// verifyNothingLost reads back every acknowledged write of B.
func (m *steadyMix) verifyNothingLost(t *testing.T) {
	t.Helper()
	for _, id := range m.assistants {
		if status, data, _, err := m.c.call("GET", "/api/v1/assistants/"+id, nil, ""); err != nil || status != 200 {
			t.Errorf("B lost assistant %s: %d %v %s", id, status, err, data)
		}
	}
	for _, ref := range m.contexts {
		if status, data, _, err := m.c.call("GET", "/api/v1/contexts/"+ref, nil, ""); err != nil || status != 200 {
			t.Errorf("B lost context %s: %d %v %s", ref, status, err, data)
		}
	}
	for _, id := range m.qas {
		if status, data, _, err := m.c.call("GET", "/api/v1/knowledge/"+id, nil, ""); err != nil || status != 200 {
			t.Errorf("B lost Q&A %s: %d %v %s", id, status, err, data)
		}
	}
	seen := map[string]bool{}
	cursor := ""
	for page := 0; page < 100; page++ {
		path := "/api/v1/sessions/" + m.session + "/messages?limit=100"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		req, _ := http.NewRequest("GET", m.c.base+path, nil)
		req.Header.Set("X-API-Key", m.c.id)
		req.Header.Set("X-API-Secret", m.c.secret)
		resp, err := m.c.http.Do(req)
		if err != nil {
			t.Fatalf("B: list messages: %v", err)
		}
		var list struct {
			Data []struct {
				Content string `json:"content"`
			} `json:"data"`
			Meta struct {
				HasMore    bool   `json:"has_more"`
				NextCursor string `json:"next_cursor"`
			} `json:"meta"`
		}
		err = json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("B: list messages: %v", err)
		}
		for _, msg := range list.Data {
			seen[msg.Content] = true
		}
		if !list.Meta.HasMore {
			break
		}
		cursor = list.Meta.NextCursor
	}
	for _, content := range m.messages {
		if !seen[content] {
			t.Errorf("B lost message %q", content)
		}
	}
	t.Logf("B wrote and read back %d assistants, %d messages, %d contexts, %d Q&A pairs",
		len(m.assistants), len(m.messages), len(m.contexts), len(m.qas))
}

// poisonLog counts how the server answered A.
type poisonLog struct {
	mu       sync.Mutex
	byStatus map[int]int
	server   []string
	refused  int
}

func (p *poisonLog) note(what string, status int, data json.RawMessage, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.byStatus == nil {
		p.byStatus = map[int]int{}
	}
	p.byStatus[status]++
	if status == http.StatusUnprocessableEntity {
		p.refused++
	}
	if status >= 500 || (err != nil && status != 0) {
		p.server = append(p.server, fmt.Sprintf("%s: %d %v %.200s", what, status, err, data))
	}
}

func (p *poisonLog) serverErrors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.server...)
}

func (p *poisonLog) summary() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var codes []int
	for c := range p.byStatus {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d×%d", p.byStatus[c], c))
	}
	return strings.Join(parts, " ")
}

// floodInvalidText sends NUL and invalid UTF-8 in every JSON field and query
// parameter of A's routes, escaped and raw, until ctx ends.
func floodInvalidText(ctx context.Context, a *client, log *poisonLog) {
	status, data, _, _ := a.call("POST", "/api/v1/assistants/", map[string]any{"name": "A"}, "")
	assistant := idOf(data)
	if status != 201 {
		log.note("A setup assistant", status, data, fmt.Errorf("setup failed"))
		return
	}
	_, data, _, _ = a.call("POST", "/api/v1/sessions/", map[string]any{"assistant_id": assistant}, "")
	session := idOf(data)
	_, _, _, _ = a.call("POST", "/api/v1/contexts/", map[string]any{"user_reference": "a-user"}, "")
	_, data, _, _ = a.call("POST", "/api/v1/conversations/", map[string]any{
		"assistant_id": assistant, "customer_id": "a-customer", "user_context_id": "a-user"}, "")
	conversation := idOf(data)

	// %s is replaced by a poisoned JSON string literal.
	bodies := []struct{ method, path, body string }{
		{"POST", "/api/v1/assistants/", `{"name":%s}`},
		{"POST", "/api/v1/assistants/", `{"name":"ok","instructions":%s,"default_tasks":[%s]}`},
		{"PATCH", "/api/v1/assistants/" + assistant, `{"description":%s}`},
		{"POST", "/api/v1/sessions/", `{"assistant_id":"` + assistant + `","metadata":{"k":%s}}`},
		{"POST", "/api/v1/sessions/" + session + "/messages?wait=0", `{"content":%s}`},
		{"POST", "/api/v1/sessions/" + session + "/messages?wait=0", `{"content":"ok","metadata":{"k":%s}}`},
		{"POST", "/api/v1/contexts/", `{"user_reference":"nul-user","traits":{"x":%s}}`},
		{"POST", "/api/v1/contexts/", `{"user_reference":%s}`},
		{"PATCH", "/api/v1/contexts/a-user", `{"traits":{"nested":{"deep":[%s]}}}`},
		{"POST", "/api/v1/conversations/", `{"assistant_id":"` + assistant + `","customer_id":%s}`},
		{"POST", "/api/v1/conversations/", `{"assistant_id":"` + assistant + `","customer_id":"c","title":%s}`},
		{"POST", "/api/v1/conversations/" + conversation + "/messages?wait=0", `{"content":%s}`},
		{"POST", "/api/v1/knowledge/qa/", `{"question":%s,"answer":"a"}`},
		{"POST", "/api/v1/knowledge/qa/", `{"question":"q","answer":"a","tags":[%s]}`},
		{"POST", "/api/v1/knowledge/urls/", `{"url":"https://example.com/","title":%s}`},
		{"POST", "/api/v1/knowledge/search", `{"query":%s}`},
	}
	poisons := []string{`"a\u0000b"`, "\"pwn\u0000\"", "\"bad \xff\xfe utf8\"", "\"cut \xe2\x82\"", `"\ud800 lone surrogate"`}
	queries := []string{
		"/api/v1/conversations/?customer_id=a%00b",
		"/api/v1/conversations/?customer_id=%FF%FE",
		"/api/v1/events?types=%00",
		"/api/v1/knowledge/?cursor=%FF",
	}
	for round := 0; ctx.Err() == nil; round++ {
		for _, b := range bodies {
			for _, p := range poisons {
				if ctx.Err() != nil {
					return
				}
				body := strings.ReplaceAll(b.body, "%s", p)
				status, data, _, err := a.call(b.method, b.path, []byte(body), "application/json")
				log.note(fmt.Sprintf("%s %s %q", b.method, b.path, body), status, data, err)
			}
		}
		for _, q := range queries {
			status, data, _, err := a.call("GET", q, nil, "")
			log.note("GET "+q, status, data, err)
		}
	}
}

// floodStalledStreams opens event streams as A and never reads them: they
// must cost A its own quota of streams, not B its latency.
func floodStalledStreams(ctx context.Context, base string, a *client, log *poisonLog) {
	u, err := url.Parse(base)
	if err != nil {
		return
	}
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < 60 && ctx.Err() == nil; i++ {
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			continue
		}
		fmt.Fprintf(c, "GET /api/v1/events/stream HTTP/1.1\r\nHost: %s\r\nX-API-Key: %s\r\nX-API-Secret: %s\r\nAccept: text/event-stream\r\n\r\n",
			u.Host, a.id, a.secret)
		conns = append(conns, c)
	}
	// A few more that ask for the whole log as NDJSON and read nothing.
	for i := 0; i < 10 && ctx.Err() == nil; i++ {
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			continue
		}
		fmt.Fprintf(c, "GET /api/v1/events?limit=100 HTTP/1.1\r\nHost: %s\r\nX-API-Key: %s\r\nX-API-Secret: %s\r\nAccept: application/x-ndjson\r\n\r\n",
			u.Host, a.id, a.secret)
		conns = append(conns, c)
	}
	<-ctx.Done()
}

// uploadBombs uploads a PDF whose one Flate stream inflates to 100 MB and a
// DOCX whose document.xml unpacks to about 60 MB, and answers their ids.
func uploadBombs(a *client, log *poisonLog) []string {
	var ids []string
	for _, f := range []struct {
		name, fileType string
		body           []byte
	}{
		{"bomb.pdf", "pdf", bombs.PDF(100 << 20)},
		{"bomb.docx", "docx", bombs.DOCX(60 << 20)},
	} {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		_ = mw.WriteField("title", f.name)
		_ = mw.WriteField("file_type", f.fileType)
		fw, _ := mw.CreateFormFile("file", f.name)
		_, _ = fw.Write(f.body)
		_ = mw.Close()
		status, data, _, err := a.call("POST", "/api/v1/knowledge/files/", buf.Bytes(), mw.FormDataContentType())
		log.note("upload "+f.name, status, data, err)
		if status/100 == 2 {
			ids = append(ids, idOf(data))
		}
	}
	return ids
}

// waitTerminal waits until every source has left "processing". It reads the
// read model directly: A has spent its hourly budget on the flood by now.
func waitTerminal(t *testing.T, srv *e2etest.Server, ids []string) {
	t.Helper()
	var dsn string
	for _, kv := range srv.Env {
		if v, ok := strings.CutPrefix(kv, "DATABASE_URL="); ok {
			dsn = v
		}
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("read model: %v", err)
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(4 * time.Minute)
	for _, id := range ids {
		for {
			var status string
			var reason *string
			err := conn.QueryRow(ctx, `SELECT status, error FROM knowledge_sources WHERE id = $1`, id).Scan(&status, &reason)
			if err == nil && (status == "ready" || status == "failed") {
				why := ""
				if reason != nil {
					why = *reason
				}
				t.Logf("A's source %s ended %s %s", id, status, why)
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("A's source %s did not end ready or failed: %q %v", id, status, err)
				break
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
}

// waitReady waits for /readyz to answer 200: parked events are reported,
// they do not make the server unready for good.
func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				t.Logf("/readyz: %s", body)
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("/readyz stays %d after the attack: %s", resp.StatusCode, body)
				return
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	return s[i-1]
}
