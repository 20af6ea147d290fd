package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/companin/companin/adapters/replies"
	"github.com/companin/companin/domain/answer"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/knowledge"
	"github.com/companin/companin/domain/message"
	"github.com/companin/companin/queries"
	"github.com/google/uuid"
)

// benchManual is real support text hidden among the generated chunks, so
// that some questions have an answer to find.
var benchManual = []knowledge.Block{
	{Kind: knowledge.Heading, Level: 2, Text: "Resetting the router"},
	{Kind: knowledge.Paragraph, Text: "If you forgot the admin password, press and hold the reset button on the back for ten seconds. The router restarts with the factory password printed on the label underneath."},
	{Kind: knowledge.Heading, Level: 2, Text: "Shipping"},
	{Kind: knowledge.Paragraph, Text: "Orders placed before 2 PM ship the same day. Delivery within Germany takes two to three working days."},
	{Kind: knowledge.Heading, Level: 2, Text: "Rücksendungen"},
	{Kind: knowledge.Paragraph, Text: "Rücksendungen sind innerhalb von 30 Tagen kostenlos. Drucken Sie das Rücksendeetikett in Ihrem Konto aus."},
}

var benchQuestions = []string{
	"What are your business hours?",
	"How do I reset the admin password?",
	"How long does delivery take?",
	"Wie funktionieren Rücksendungen?",
	"Can I pay with bitcoin?",
	"Does the router support a guest network with firmware updates?",
	"Hello!",
	"When do orders ship?",
}

// loadBenchKnowledge appends 100 documents of 100 chunks each (generated
// from a support vocabulary), the manual and one Q&A pair, for the test
// server's organization, and waits until they are indexed.
func loadBenchKnowledge(b *testing.B, ts *testServer) {
	b.Helper()
	ctx := context.Background()
	vocab := strings.Fields("router network setting password update device connection signal channel warranty repair " +
		"delivery invoice account security firmware cable light status restart modem port adapter antenna guest " +
		"parental control bandwidth speed test coverage mesh satellite app login subscription plan billing refund")
	ts.create(b, "/api/v1/knowledge/qa/", `{"question":"What are your business hours?","answer":"We are open Monday to Friday, 9 AM to 6 PM EST."}`)
	rng := rand.New(rand.NewPCG(7, 8))
	now := time.Now()
	var last es.Position
	add := func(spec knowledge.Spec, doc knowledge.Document) {
		s := knowledge.New(uuid.New())
		if err := s.Put(spec, now); err != nil {
			b.Fatal(err)
		}
		if err := s.CompleteIngestion(1, doc, "", now); err != nil {
			b.Fatal(err)
		}
		var evs []es.NewEvent
		for _, c := range s.Changes() {
			data, err := json.Marshal(c)
			if err != nil {
				b.Fatal(err)
			}
			evs = append(evs, es.NewEvent{ID: uuid.New(), Type: c.EventType(), Data: data, Metadata: es.Metadata{OrganizationID: ts.org.ID}})
		}
		res, err := ts.Store.Append(ctx, knowledge.Kind+"-"+s.ID().String(), es.Any, evs...)
		if err != nil {
			b.Fatal(err)
		}
		last = res.Position
	}
	for d := range 100 {
		var blocks []knowledge.Block
		for c := range 100 {
			blocks = append(blocks, knowledge.Block{Kind: knowledge.Heading, Level: 2, Text: fmt.Sprintf("Section %d.%d", d, c)})
			var words []string
			for range 120 {
				words = append(words, vocab[rng.IntN(len(vocab))])
			}
			blocks = append(blocks, knowledge.Block{Kind: knowledge.Paragraph, Text: strings.Join(words, " ") + "."})
		}
		spec, err := knowledge.ParseFile(knowledge.Common{Title: fmt.Sprintf("Generated document %d", d)}, "txt", "g.txt", []byte("x"))
		if err != nil {
			b.Fatal(err)
		}
		add(spec, knowledge.Document{Blocks: blocks})
	}
	spec, _ := knowledge.ParseFile(knowledge.Common{Title: "Product Manual"}, "txt", "manual.txt", []byte("x"))
	add(spec, knowledge.Document{Blocks: benchManual})
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := ts.Server.deps.Runtime.WaitForProjections(wctx, last); err != nil {
		b.Fatalf("indexing: %v", err)
	}
	var chunks int
	if err := ts.Pool.QueryRow(ctx, `SELECT count(*) FROM knowledge_chunks`).Scan(&chunks); err != nil {
		b.Fatal(err)
	}
	b.Logf("knowledge base: %d chunks, indexed in %s", chunks, time.Since(now).Round(time.Second))
}

// BenchmarkPostToReply measures the time from POST .../messages to the 201
// that carries the reply, with the embedded engine, over a knowledge base of
// 10,000 chunks, with 8 conversations asking at once. Run it with
// -bench PostToReply -benchtime 1x; it reports p50 and p99 in ms.
func BenchmarkPostToReply(b *testing.B) {
	ts := newTestServer(b, withReplies())
	ts.startReplyWorker(b, answer.NewEmbedded())
	loadBenchKnowledge(b, ts)
	asst := ts.create(b, "/api/v1/assistants/", `{"name":"Bench Bot","tone":"friendly","language":"en"}`)
	const conversations = 8
	perConversation := 25
	if n, err := strconv.Atoi(os.Getenv("COMPANIN_BENCH_MESSAGES")); err == nil && n > 0 {
		perConversation = n
	}
	// Retrieval alone, per question: the part of the latency that grows with the knowledge base.
	search := replies.Knowledge(queries.NewSearchKnowledgeHandler(ts.Pool))
	org, _ := uuid.Parse(ts.org.ID)
	asstID, _ := uuid.Parse(asst["id"].(string))
	for _, q := range benchQuestions {
		t0 := time.Now()
		ps, err := search.Retrieve(context.Background(), org, asstID, q, 8)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("retrieval %-70q %4d passages %s", q, len(ps), time.Since(t0).Round(time.Millisecond))
	}
	var threads []string
	for i := range conversations {
		c := ts.create(b, "/api/v1/conversations/", fmt.Sprintf(`{"assistant_id":%q,"customer_id":"customer-%d"}`, asst["id"], i))
		threads = append(threads, "conversations/"+c["id"].(string))
	}
	ts.ask(b, threads[0], "warm up") // the first request opens connections and listeners
	for b.Loop() {
		var mu sync.Mutex
		var took []time.Duration
		var wg sync.WaitGroup
		failures := 0
		start := time.Now()
		for i, th := range threads {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range perConversation {
					q := benchQuestions[(i+j)%len(benchQuestions)]
					body, _ := json.Marshal(map[string]string{"content": q})
					t0 := time.Now()
					r := ts.do(b, http.MethodPost, "/api/v1/"+th+"/messages", ts.org, string(body))
					d := time.Since(t0)
					mu.Lock()
					took = append(took, d)
					if r.Status != http.StatusCreated {
						failures++
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		b.Logf("%d replies in %s", len(took), elapsed.Round(time.Millisecond))
		if failures > 0 {
			b.Fatalf("%d of %d posts got no reply in time", failures, len(took))
		}
		sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
		pct := func(p float64) float64 { return float64(took[int(p*float64(len(took)-1))].Microseconds()) / 1000 }
		b.ReportMetric(pct(0.50), "p50_ms")
		b.ReportMetric(pct(0.99), "p99_ms")
		b.ReportMetric(float64(len(took))/elapsed.Seconds(), "replies/s")
		retrieval, generation := traceTimes(b, ts, threads)
		b.ReportMetric(retrieval, "retrieval_p50_ms")
		b.ReportMetric(generation, "engine_p50_ms")
	}
}

// traceTimes reads the reply traces of the threads: the median retrieval
// and engine times the worker recorded.
func traceTimes(b *testing.B, ts *testServer, threads []string) (retrieval, generation float64) {
	var rs, gs []float64
	for _, th := range threads {
		evs, err := ts.Store.ReadStream(context.Background(), "conversation-"+strings.TrimPrefix(th, "conversations/"), 1, 0)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range evs {
			var p message.Posted
			if e.Type != message.TypePosted || json.Unmarshal(e.Data, &p) != nil || p.Role != message.Assistant {
				continue
			}
			var tr answer.Trace
			if json.Unmarshal(p.Trace, &tr) == nil {
				rs, gs = append(rs, tr.RetrievalMS), append(gs, tr.GenerationMS)
			}
		}
	}
	if len(rs) == 0 {
		return 0, 0
	}
	sort.Float64s(rs)
	sort.Float64s(gs)
	return rs[len(rs)/2], gs[len(gs)/2]
}
