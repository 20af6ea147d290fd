package main

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/companin/companin/adapters/extract"
	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/knowledge"
	"github.com/companin/companin/domain/message"
	"github.com/companin/companin/projections"
	"github.com/companin/companin/queries"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// answerBenchQuestions are what the 8 conversations ask, in turn: questions
// the corpus answers (from queries/testdata/answers/questions.json, English
// and German), questions made of common words only, which match most chunks
// of any knowledge base, a greeting and one nothing answers.
var answerBenchQuestions = []string{
	"What command pushes the application to Heroku?",
	"how do I use this",
	"Which environment variable does Heroku give the web application to bind to?",
	"what is the",
	"Wie kann ich alle installierten Pakete auflisten?",
	"wie kann ich das",
	"What is Debian GNU/Linux?",
	"Hello!",
	"Where can I download my invoices?",
	"can you help me with this please",
	"Which method must a type implement to be an http.Handler?",
	"What is the capital of Australia?",
}

// BenchmarkAnswersUnderLoad is issue 11's answers-under-load measurement,
// end to end through the real server: `companin serve` in this process
// (configuration from the environment, as main reads it), an organization
// with ~10,000 chunks of real text (the extraction corpus and the
// answer-quality documents, each extracted once by the real extractors and
// indexed as several sources through the knowledge projection), 8
// conversations posting questions at once with the embedded engine. It
// reports POST-to-reply p50/p99, and beside it, in the same run and under
// the same 8-way concurrency: the knowledge search alone
// (queries.SearchKnowledge), a plain PostgreSQL full-text query over the same
// chunks (websearch_to_tsquery, ts_rank, top 8) as the peer, and the
// retrieval and engine times the reply worker recorded in its traces.
//
//	DATABASE_URL=... go test ./cmd/companin/ -run '^$' -bench AnswersUnderLoad -benchtime 1x -v
//
// COMPANIN_BENCH_MESSAGES sets the questions per conversation (default 25);
// COMPANIN_BENCH_INGEST=1 uploads the corpus's PDFs through the API while the
// conversations ask, so that ingestion (PDFium) competes with the replies;
// COMPANIN_REPLY_WORKERS and COMPANIN_INGEST_WORKERS are passed to the server.
func BenchmarkAnswersUnderLoad(b *testing.B) {
	ctx := context.Background()
	env := map[string]string{
		"DATABASE_URL":                 pgtest.NewDatabase(b),
		"COMPANIN_ADDR":                freeAddress(b),
		"COMPANIN_DATA_DIR":            b.TempDir(),
		"COMPANIN_RATE_LIMIT_PER_HOUR": "1000000",
	}
	for _, k := range []string{"COMPANIN_REPLY_WORKERS", "COMPANIN_INGEST_WORKERS"} {
		if v := os.Getenv(k); v != "" {
			env[k] = v
		}
	}
	getenv := func(k string) string { return env[k] }
	cred := benchOrg(b, getenv)
	org := uuid.MustParse(cred.OrganizationID)

	cfg, err := LoadConfig(getenv)
	if err != nil {
		b.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := openEventLog(ctx, cfg, pool, nil, log)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	t0 := time.Now()
	sources := loadCorpusKnowledge(b, store, org, 10000)
	if err := messaging.CatchUp(ctx, store, pool, projections.Knowledge{}); err != nil {
		b.Fatal(err)
	}
	var chunks int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM knowledge_chunks WHERE organization_id = $1`, org).Scan(&chunks); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE knowledge_chunks; ANALYZE knowledge_terms`); err != nil {
		b.Fatal(err)
	}
	b.Logf("knowledge base: %d chunks in %d sources, indexed in %s", chunks, sources, time.Since(t0).Round(time.Second))

	srv := startServe(b, getenv)
	api := benchClient{base: "http://" + env["COMPANIN_ADDR"], cred: cred}
	// The ingestion worker is handed every source added above (each already
	// ingested, so each job only loads it): let it finish first.
	waitJobsDone(b, pool, ingestionWorker, sources)

	asst := api.create(b, "/api/v1/assistants/", `{"name":"Bench Bot","tone":"friendly","language":"en"}`)
	const conversations = 8
	perConversation := 25
	if n, err := strconv.Atoi(os.Getenv("COMPANIN_BENCH_MESSAGES")); err == nil && n > 0 {
		perConversation = n
	}
	var threads []string
	for i := range conversations {
		c := api.create(b, "/api/v1/conversations/", fmt.Sprintf(`{"assistant_id":%q,"customer_id":"customer-%d"}`, asst, i))
		threads = append(threads, c)
	}
	for _, th := range threads { // opens connections and listeners
		if code, _ := api.ask(b, th, "warm up"); code != http.StatusCreated {
			b.Fatalf("warm-up: %d\n%s", code, srv.logs())
		}
	}

	// Retrieval alone and the plain full-text peer, 8 at once, same questions.
	search := queries.NewSearchKnowledgeHandler(pool)
	asstID := uuid.MustParse(asst)
	searchLat := concurrently(b, conversations, perConversation, func(q string) error {
		_, err := search.Handle(ctx, queries.SearchKnowledgeQuery{OrganizationID: org, AssistantID: asstID, Query: q, Limit: 8})
		return err
	})
	peerLat := concurrently(b, conversations, perConversation, func(q string) error {
		return plainFullText(ctx, pool, org, q)
	})
	for _, q := range answerBenchQuestions {
		start := time.Now()
		ps, err := search.Handle(ctx, queries.SearchKnowledgeQuery{OrganizationID: org, AssistantID: asstID, Query: q, Limit: 8})
		if err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		start = time.Now()
		if err := plainFullText(ctx, pool, org, q); err != nil {
			b.Fatal(err)
		}
		b.Logf("alone: search %6s (%d passages), plain full text %6s: %q", took.Round(100*time.Microsecond), len(ps),
			time.Since(start).Round(100*time.Microsecond), q)
	}

	load := loadAverage()
	for b.Loop() {
		var mu sync.Mutex
		var failures []string
		start := time.Now()
		sent := map[string][][2]time.Time{} // per conversation, in order: sent, answered
		stopUploads := uploadWhileAsking(b, api, os.Getenv("COMPANIN_BENCH_INGEST") == "1")
		took := concurrentlyIn(conversations, perConversation, func(i int, q string) error {
			t0 := time.Now()
			code, body := api.ask(b, threads[i], q)
			mu.Lock()
			sent[threads[i]] = append(sent[threads[i]], [2]time.Time{t0, time.Now()})
			if code != http.StatusCreated {
				failures = append(failures, fmt.Sprintf("%d %s", code, body))
			}
			mu.Unlock()
			return nil
		})
		elapsed := time.Since(start)
		if n := stopUploads(); n > 0 {
			b.Logf("%d PDFs uploaded while the conversations asked", n)
		}
		if len(failures) > 0 {
			b.Fatalf("%d of %d posts got no reply in time; first: %s", len(failures), len(took), failures[0])
		}
		st := replyStages(b, pool, org, sent)
		b.Logf("load average before / after: %s / %s", load, loadAverage())
		b.Logf("POST to reply:                  p50 %7.1f ms  p99 %7.1f ms  (%d replies, %.1f/s)", pct(took, 0.5), pct(took, 0.99), len(took), float64(len(took))/elapsed.Seconds())
		b.Logf("POST to message appended:       p50 %7.1f ms  p99 %7.1f ms", pctF(st.toAppend, 0.5), pctF(st.toAppend, 0.99))
		b.Logf("message to job (dispatcher):    p50 %7.1f ms  p99 %7.1f ms", pctF(st.dispatch, 0.5), pctF(st.dispatch, 0.99))
		b.Logf("job to reply (claim, handle):   p50 %7.1f ms  p99 %7.1f ms", pctF(st.worker, 0.5), pctF(st.worker, 0.99))
		b.Logf("reply appended to response:     p50 %7.1f ms  p99 %7.1f ms", pctF(st.toResponse, 0.5), pctF(st.toResponse, 0.99))
		b.Logf("retrieval in the worker:        p50 %7.1f ms  p99 %7.1f ms", pctF(st.retrieval, 0.5), pctF(st.retrieval, 0.99))
		b.Logf("engine in the worker:           p50 %7.1f ms  p99 %7.1f ms", pctF(st.engine, 0.5), pctF(st.engine, 0.99))
		b.Logf("search alone, 8 at once:        p50 %7.1f ms  p99 %7.1f ms", pct(searchLat, 0.5), pct(searchLat, 0.99))
		b.Logf("peer: plain ts_rank, 8 at once: p50 %7.1f ms  p99 %7.1f ms", pct(peerLat, 0.5), pct(peerLat, 0.99))
		b.ReportMetric(pct(took, 0.5), "p50_ms")
		b.ReportMetric(pct(took, 0.99), "p99_ms")
		b.ReportMetric(float64(len(took))/elapsed.Seconds(), "replies/s")
		b.ReportMetric(pctF(st.retrieval, 0.5), "retrieval_p50_ms")
		b.ReportMetric(pctF(st.retrieval, 0.99), "retrieval_p99_ms")
		b.ReportMetric(pctF(st.engine, 0.5), "engine_p50_ms")
		b.ReportMetric(pct(searchLat, 0.99), "search8_p99_ms")
		b.ReportMetric(pct(peerLat, 0.99), "peer8_p99_ms")
		b.ReportMetric(float64(chunks), "chunks")
	}
}

// uploadWhileAsking uploads the corpus's PDFs (26, 16 MB; PDFium needs
// longer to read them than the conversations take), when on, until the
// returned function is called; that returns how many it uploaded.
func uploadWhileAsking(b *testing.B, api benchClient, on bool) func() int {
	if !on {
		return func() int { return 0 }
	}
	var pdfs []corpusFile
	for _, f := range corpusFiles(b) {
		if f.Type == "pdf" {
			pdfs = append(pdfs, f)
		}
	}
	stop, done := make(chan struct{}), make(chan int)
	go func() {
		n := 0
		defer func() { done <- n }()
		for i := range pdfs {
			select {
			case <-stop:
				return
			default:
			}
			data, err := os.ReadFile(pdfs[i].Path)
			if err != nil {
				b.Error(err)
				return
			}
			var body bytes.Buffer
			w := multipart.NewWriter(&body)
			_ = w.WriteField("title", fmt.Sprintf("upload %d", i))
			_ = w.WriteField("file_type", "pdf")
			part, _ := w.CreateFormFile("file", filepath.Base(pdfs[i].Path))
			_, _ = part.Write(data)
			_ = w.Close()
			req, _ := http.NewRequest(http.MethodPost, api.base+"/api/v1/knowledge/files/", &body)
			req.Header.Set("Content-Type", w.FormDataContentType())
			req.Header.Set("X-API-Key", api.cred.ClientID)
			req.Header.Set("X-API-Secret", api.cred.ClientSecret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode >= 300 {
				b.Errorf("upload %s: %d", pdfs[i].Path, resp.StatusCode)
				return
			}
			n++
		}
	}()
	return func() int {
		close(stop)
		return <-done
	}
}

// plainFullText is the peer: what a plain PostgreSQL full-text search over
// the same chunks costs (all the query's words, stemmed in the question's
// language, ranked by ts_rank, top 8).
func plainFullText(ctx context.Context, pool *pgxpool.Pool, org uuid.UUID, q string) error {
	rows, err := pool.Query(ctx, `
		SELECT c.id, ts_rank(c.tsv, query) AS rank
		FROM knowledge_chunks c, websearch_to_tsquery($2::regconfig, $3) AS query
		WHERE c.organization_id = $1 AND c.tsv @@ query
		ORDER BY rank DESC LIMIT 8`, org, knowledge.TextSearchConfig(knowledge.DetectLanguage(q)), q)
	if err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}

// concurrently runs f for n workers, each asking per questions in turn, and
// returns every call's duration.
func concurrently(b *testing.B, n, per int, f func(q string) error) []time.Duration {
	b.Helper()
	var mu sync.Mutex
	var first error
	took := concurrentlyIn(n, per, func(_ int, q string) error {
		err := f(q)
		if err != nil {
			mu.Lock()
			first = err
			mu.Unlock()
		}
		return err
	})
	if first != nil {
		b.Fatal(first)
	}
	return took
}

func concurrentlyIn(n, per int, f func(worker int, q string) error) []time.Duration {
	var mu sync.Mutex
	var took []time.Duration
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range per {
				q := answerBenchQuestions[(i+j)%len(answerBenchQuestions)]
				start := time.Now()
				if f(i, q) != nil {
					return
				}
				d := time.Since(start)
				mu.Lock()
				took = append(took, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return took
}

func pct(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return float64(s[int(p*float64(len(s)-1))].Microseconds()) / 1000
}

func pctF(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[int(p*float64(len(s)-1))]
}

func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(raw))[:3], " ")
}

func freeAddress(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// benchOrg creates the organization as an operator would (`companin org create`).
func benchOrg(b *testing.B, getenv func(string) string) credentials {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"org", "create", "--name", "Bench"}, getenv, &out, &errOut); code != 0 {
		b.Fatalf("org create: %d\n%s", code, errOut.String())
	}
	var c credentials
	if err := json.Unmarshal(out.Bytes(), &c); err != nil {
		b.Fatalf("org create printed %q: %v", out.String(), err)
	}
	return c
}

type servingProcess struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *servingProcess) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *servingProcess) logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// startServe runs `companin serve` in this process until the benchmark ends.
func startServe(b *testing.B, getenv func(string) string) *servingProcess {
	ctx, cancel := context.WithCancel(context.Background())
	s := &servingProcess{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve"}, getenv, io.Discard, s) }()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get("http://" + getenv("COMPANIN_ADDR") + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case code := <-done:
			b.Fatalf("serve exited with %d:\n%s", code, s.logs())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.Fatalf("serve never answered /healthz:\n%s", s.logs())
		}
	}
}

// waitJobsDone waits until worker has done n jobs and has none pending.
func waitJobsDone(b *testing.B, pool *pgxpool.Pool, worker string, n int) {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var done, pending int
		if err := pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE status <> 'pending'), count(*) FILTER (WHERE status = 'pending')
			FROM consumer_jobs WHERE worker = $1`, worker).Scan(&done, &pending); err != nil {
			b.Fatal(err)
		}
		if done >= n && pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: %d jobs done, %d pending after 5 minutes", worker, done, pending)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

type benchClient struct {
	base string
	cred credentials
}

func (c benchClient) do(b *testing.B, method, path, body string) (int, []byte) {
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", c.cred.ClientID)
	req.Header.Set("X-API-Secret", c.cred.ClientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Error(err)
		return 0, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// create posts body and returns the new resource's id.
func (c benchClient) create(b *testing.B, path, body string) string {
	code, raw := c.do(b, http.MethodPost, path, body)
	var env struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if code != http.StatusCreated || json.Unmarshal(raw, &env) != nil || env.Data.ID == "" {
		b.Fatalf("POST %s: %d %s", path, code, raw)
	}
	return env.Data.ID
}

// ask posts a question to a conversation and waits for the reply; a 201
// carries it.
func (c benchClient) ask(b *testing.B, conversation, q string) (int, []byte) {
	body, _ := json.Marshal(map[string]string{"content": q})
	code, raw := c.do(b, http.MethodPost, "/api/v1/conversations/"+conversation+"/messages", string(body))
	if code == http.StatusCreated {
		var env struct {
			Data struct {
				Reply *struct {
					Content string `json:"content"`
				} `json:"reply"`
			} `json:"data"`
		}
		if json.Unmarshal(raw, &env) != nil || env.Data.Reply == nil || env.Data.Reply.Content == "" {
			return 0, raw
		}
	}
	return code, raw
}

// stages is where each reply's time went, in milliseconds.
type stages struct {
	// toAppend: from sending the POST to the user's message in the log
	// (authentication, rate limit, the append), as the transaction's start
	// time tells.
	toAppend []float64
	// dispatch: from the message to its job (the worker's dispatcher).
	dispatch []float64
	// worker: from the job to the reply's append (waiting for a slot,
	// loading the conversation, retrieval, the engine).
	worker []float64
	// toResponse: from the reply's append to the response's arrival (the
	// waiting request learning of it, the read models catching up).
	toResponse []float64
	// retrieval and engine: what the worker recorded in the reply's trace.
	retrieval, engine []float64
}

// replyStages reads the log and the jobs table, and matches them with when
// each conversation's posts were sent and answered (sent, in order; the
// warm-up message before them).
func replyStages(b *testing.B, pool *pgxpool.Pool, org uuid.UUID, sent map[string][][2]time.Time) stages {
	rows, err := pool.Query(context.Background(), `
		SELECT u.stream, u.recorded_at, j.created_at, r.recorded_at,
			coalesce((r.data->'trace'->>'retrieval_ms')::float8, 0), coalesce((r.data->'trace'->>'generation_ms')::float8, 0)
		FROM events u
		JOIN consumer_jobs j ON j.event_id = u.event_id AND j.worker = $3
		JOIN LATERAL (SELECT e.recorded_at, e.data FROM events e WHERE e.stream = u.stream AND e.version > u.version
			AND e.type = $2 AND e.data->>'role' = 'assistant' ORDER BY e.version LIMIT 1) r ON true
		WHERE u.organization_id = $1 AND u.type = $2 AND u.data->>'role' = 'user'
		ORDER BY u.stream, u.version`, org.String(), message.TypePosted, commands.ReplyWorkerName)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	var st stages
	seen := map[string]int{}
	for rows.Next() {
		var stream string
		var appended, queued, replied time.Time
		var retrieval, engine float64
		if err := rows.Scan(&stream, &appended, &queued, &replied, &retrieval, &engine); err != nil {
			b.Fatal(err)
		}
		st.retrieval, st.engine = append(st.retrieval, retrieval), append(st.engine, engine)
		st.dispatch, st.worker = append(st.dispatch, ms(queued.Sub(appended))), append(st.worker, ms(replied.Sub(queued)))
		n := seen[stream] - 1 // the first message was the warm-up
		seen[stream]++
		if posts := sent[strings.TrimPrefix(stream, "conversation-")]; n >= 0 && n < len(posts) {
			st.toAppend = append(st.toAppend, ms(appended.Sub(posts[n][0])))
			st.toResponse = append(st.toResponse, ms(posts[n][1].Sub(replied)))
		}
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return st
}

// corpusFile is a real document the knowledge base is made of.
type corpusFile struct {
	Path, Type string
}

func corpusFiles(b *testing.B) []corpusFile {
	var out []corpusFile
	for _, dir := range []string{"../../adapters/extract/testdata/corpus", "../../queries/testdata/answers"} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range entries {
			ext := strings.TrimPrefix(filepath.Ext(e.Name()), ".")
			if ext == "pdf" || ext == "html" || ext == "docx" {
				out = append(out, corpusFile{Path: filepath.Join(dir, e.Name()), Type: ext})
			}
		}
	}
	return out
}

// extractedCorpus extracts every corpus file with the real extractors, once
// per machine: the documents are kept in a file under the temporary
// directory for the next run.
func extractedCorpus(b *testing.B) map[string]knowledge.Document {
	files := corpusFiles(b)
	var size int64
	for _, f := range files {
		if st, err := os.Stat(f.Path); err == nil {
			size += st.Size()
		}
	}
	cache := filepath.Join(os.TempDir(), fmt.Sprintf("companin-answers-bench-%d-%d.gob", len(files), size))
	docs := map[string]knowledge.Document{}
	if raw, err := os.ReadFile(cache); err == nil && gob.NewDecoder(bytes.NewReader(raw)).Decode(&docs) == nil && len(docs) > 0 {
		return docs
	}
	_ = extract.UseCompilationCache(filepath.Join(os.TempDir(), "companin-pdfium-cache"))
	for _, f := range files {
		data, err := os.ReadFile(f.Path)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		doc, err := extract.File(ctx, f.Type, data)
		cancel()
		if err != nil {
			b.Logf("corpus: %s left out: %v", filepath.Base(f.Path), err)
			continue
		}
		docs[filepath.Base(f.Path)] = doc
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(docs); err == nil {
		_ = os.WriteFile(cache, buf.Bytes(), 0o644)
	}
	return docs
}

// loadCorpusKnowledge indexes the corpus for org as sources of extracted
// documents, each document as many times as it takes to reach want chunks
// (a company's knowledge base repeats itself too: versions of a manual, the
// same FAQ in several products), plus the answer-quality test's FAQ pairs.
// It returns how many sources it added.
func loadCorpusKnowledge(b *testing.B, store es.Store, org uuid.UUID, want int) int {
	docs := extractedCorpus(b)
	names := make([]string, 0, len(docs))
	for n := range docs {
		names = append(names, n)
	}
	sort.Strings(names)
	ctx := es.WithMetadata(context.Background(), es.Metadata{OrganizationID: org.String(), Actor: "bench"})
	now := time.Now()
	sources, chunks := 0, 0
	add := func(s *knowledge.Source) {
		var evs []es.NewEvent
		for _, c := range s.Changes() {
			data, err := json.Marshal(c)
			if err != nil {
				b.Fatal(err)
			}
			evs = append(evs, es.NewEvent{ID: uuid.New(), Type: c.EventType(), Data: data, Metadata: es.Metadata{OrganizationID: org.String()}})
			if in, ok := c.(knowledge.Ingested); ok {
				chunks += len(in.Chunks)
			}
		}
		if _, err := store.Append(ctx, knowledge.Kind+"-"+s.ID().String(), es.NoStream, evs...); err != nil {
			b.Fatal(err)
		}
		sources++
	}
	for copyN := 1; chunks < want; copyN++ {
		before := chunks
		for _, n := range names {
			spec, err := knowledge.ParseFile(knowledge.Common{Title: fmt.Sprintf("%s (%d)", n, copyN)}, "txt", n+".txt", []byte("x"))
			if err != nil {
				b.Fatal(err)
			}
			s := knowledge.New(uuid.New())
			if err := s.Put(spec, now); err != nil {
				b.Fatal(err)
			}
			if err := s.CompleteIngestion(1, docs[n], "", now); err != nil {
				b.Fatal(err)
			}
			add(s)
			if chunks >= want {
				break
			}
		}
		if chunks == before {
			b.Fatal("the corpus gave no chunks")
		}
	}
	var pairs []struct {
		Question, Answer string
		Tags             []string
	}
	raw, err := os.ReadFile("../../queries/testdata/answers/faq.json")
	if err != nil || json.Unmarshal(raw, &pairs) != nil {
		b.Fatalf("faq.json: %v", err)
	}
	addQA := commands.New(commands.Deps{Store: store}).AddKnowledge
	for _, p := range pairs {
		spec, err := knowledge.ParseQA(knowledge.Common{Tags: p.Tags, Source: "manual"}, p.Question, p.Answer)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := addQA.Handle(ctx, commands.AddKnowledge{Spec: spec}); err != nil {
			b.Fatal(err)
		}
		sources++
	}
	return sources
}
