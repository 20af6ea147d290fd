package queries_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"unicode"

	"github.com/PuerkitoBio/goquery"
	"github.com/companin/companin/adapters/eventstore/memory"
	"github.com/companin/companin/adapters/extract"
	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/companin/companin/adapters/replies"
	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain/answer"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/knowledge"
	"github.com/companin/companin/projections"
	"github.com/companin/companin/queries"
	"github.com/google/uuid"
)

// Floors of the answer-quality test (issue 9): the embedded engine's reply
// holds the answer for at least this share of the questions whose answer
// retrieval put in its top 3 passages, and for no fewer questions than a
// plain BM25 search's top passage holds it; replies stay readable.
const (
	answerInTop3Floor = 0.90
	medianReplyChars  = 600
	// answerPassages is how many passages the reply worker hands the engine.
	answerPassages = 8
)

// answerDoc is a real document of testdata/answers, uploaded as a customer would.
type answerDoc struct {
	name, file, fileType, title string
	// reference is the file whose text the BM25 peer reads: the document
	// itself, or for the PDF the text poppler's pdftotext made of it.
	reference string
}

var answerDocs = []answerDoc{
	{name: "webapps", file: "building-web-apps-with-go.pdf", fileType: "pdf", title: "Building Web Apps with Go",
		reference: "building-web-apps-with-go.pdftotext.txt"},
	{name: "pkgtools", file: "debian-faq-pkgtools.de.html", fileType: "html", title: "Debian-FAQ: Paketverwaltungswerkzeuge",
		reference: "debian-faq-pkgtools.de.html"},
	{name: "basicdefs", file: "debian-faq-basic-defs.en.html", fileType: "html", title: "Debian FAQ: Definitions and overview",
		reference: "debian-faq-basic-defs.en.html"},
}

type answerQuestion struct {
	Q      string   `json:"q"`
	Doc    string   `json:"doc"`
	Type   string   `json:"type"`
	Expect []string `json:"expect"`
}

type faqPair struct {
	Question string   `json:"question"`
	Answer   string   `json:"answer"`
	Tags     []string `json:"tags"`
}

func readAnswerData(t testing.TB, name string, v any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "answers", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// answerKB uploads the documents and adds the FAQ pairs through the
// commands, runs the ingestion worker (extraction and chunking) on what the
// log asks for, and indexes the result in a real PostgreSQL. It returns the
// reply worker's retriever over that index and the organization.
func answerKB(t testing.TB) (commands.Retriever, uuid.UUID, map[uuid.UUID]string) {
	t.Helper()
	pool := pgtest.NewPool(t)
	store := memory.New()
	// A fixed organization and external ids give every source and chunk the
	// same id in every run, so ties in ranking fall the same way: the
	// figures are reproducible.
	org := uuid.MustParse("6c1f2a8e-9d3b-4f5e-8a7c-2b1d0e9f8a71")
	ctx := es.WithMetadata(context.Background(), es.Metadata{OrganizationID: org.String(), Actor: "test"})
	names := map[uuid.UUID]string{}
	add := commands.AddKnowledgeHandler{Store: store}
	for _, d := range answerDocs {
		data, err := os.ReadFile(filepath.Join("testdata", "answers", d.file))
		if err != nil {
			t.Fatal(err)
		}
		spec, err := knowledge.ParseFile(knowledge.Common{Title: d.title, ExternalID: d.file}, d.fileType, d.file, data)
		if err != nil {
			t.Fatal(err)
		}
		w, err := add.Handle(ctx, commands.AddKnowledge{Spec: spec})
		if err != nil {
			t.Fatalf("upload %s: %v", d.file, err)
		}
		names[w.ID] = d.name
	}
	var pairs []faqPair
	readAnswerData(t, "faq.json", &pairs)
	for _, p := range pairs {
		spec, err := knowledge.ParseQA(knowledge.Common{Tags: p.Tags, Source: "manual", ExternalID: p.Question}, p.Question, p.Answer)
		if err != nil {
			t.Fatal(err)
		}
		w, err := add.Handle(ctx, commands.AddKnowledge{Spec: spec})
		if err != nil {
			t.Fatalf("add FAQ %q: %v", p.Question, err)
		}
		names[w.ID] = "qa"
	}
	triggers, err := store.ReadAll(context.Background(), es.Start, 1000, es.Filter{Types: knowledge.IngestionTriggers})
	if err != nil {
		t.Fatal(err)
	}
	worker := commands.IngestKnowledgeHandler{Store: store, Extract: extract.File}
	for _, e := range triggers {
		if err := worker.HandleEvent(context.Background(), e); err != nil {
			t.Fatalf("ingest: %v", err)
		}
	}
	if err := messaging.CatchUp(context.Background(), store, pool, projections.Knowledge{}); err != nil {
		t.Fatal(err)
	}
	var failed []string
	rows, err := pool.Query(context.Background(), `SELECT title, status, error FROM knowledge_sources WHERE status <> 'ready'`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var title, status, reason string
		if err := rows.Scan(&title, &status, &reason); err != nil {
			t.Fatal(err)
		}
		failed = append(failed, fmt.Sprintf("%s: %s %s", title, status, reason))
	}
	rows.Close()
	if len(failed) > 0 {
		t.Fatalf("documents not ready after ingestion: %v", failed)
	}
	return replies.Knowledge(queries.NewSearchKnowledgeHandler(pool)), org, names
}

// TestAnswerQuality asks questions over real documents (a calibre PDF
// manual, German and English HTML documentation, the seed's FAQ pairs) and
// checks that the embedded engine's reply contains the answer, against a
// plain BM25 top passage over the documents' full text as the peer. It
// prints one row per question and the figures; it fails below the floors.
func TestAnswerQuality(t *testing.T) {
	retriever, org, names := answerKB(t)
	var questions []answerQuestion
	readAnswerData(t, "questions.json", &questions)
	peer := newBM25Peer(t)
	engine := answer.NewEmbedded()

	type row struct {
		q                         answerQuestion
		top3, reply, peer, honest bool
		chars                     int
		text                      string
	}
	var rows []row
	for _, q := range questions {
		ps, err := retriever.Retrieve(context.Background(), org, uuid.Nil, q.Q, answerPassages)
		if err != nil {
			t.Fatal(err)
		}
		r, err := engine.Answer(context.Background(), answer.Request{Question: q.Q, Passages: ps})
		if err != nil {
			t.Fatal(err)
		}
		rw := row{q: q, chars: len([]rune(r.Text)), text: r.Text, honest: r.Trace.Strategy == answer.StrategyUnknown}
		for i, p := range ps {
			if i < 3 && names[uuid.MustParse(p.KnowledgeID)] == q.Doc && containsAny(p.Text, q.Expect) {
				rw.top3 = true
			}
		}
		rw.reply = containsAny(r.Text, q.Expect)
		rw.peer = containsAny(peer.top(q.Q), q.Expect)
		rows = append(rows, rw)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "\n%-4s %-9s %-10s %-5s %-5s %-5s %6s  %s\n", "#", "doc", "type", "top3", "reply", "bm25", "chars", "question")
	type tally struct{ n, top3, reply, replyTop3, peer int }
	byDoc := map[string]*tally{}
	var all tally
	var unanswerable, honest int
	var lengths []int
	for i, r := range rows {
		mark := func(b bool) string {
			if b {
				return "yes"
			}
			return "-"
		}
		doc := r.q.Doc
		if doc == "" {
			doc = "(none)"
		}
		fmt.Fprintf(&b, "%-4d %-9s %-10s %-5s %-5s %-5s %6d  %s\n", i+1, doc, r.q.Type, mark(r.top3), mark(r.reply), mark(r.peer), r.chars, r.q.Q)
		lengths = append(lengths, r.chars)
		if r.q.Doc == "" {
			unanswerable++
			if r.honest {
				honest++
			} else {
				t.Errorf("unanswerable %q got an answer: %s", r.q.Q, r.text)
			}
			continue
		}
		if r.top3 && !r.reply {
			t.Logf("answer in top 3 but not in the reply: %q (want %q)\n  reply: %s", r.q.Q, r.q.Expect[0], r.text)
		}
		for _, x := range []*tally{&all, tallyOf(byDoc, r.q.Doc)} {
			x.n++
			x.top3 += btoi(r.top3)
			x.reply += btoi(r.reply)
			x.replyTop3 += btoi(r.reply && r.top3)
			x.peer += btoi(r.peer)
		}
	}
	sort.Ints(lengths)
	median := lengths[len(lengths)/2]
	fmt.Fprintf(&b, "\n%-10s %9s %12s %12s %14s\n", "document", "questions", "top-3 holds", "reply holds", "BM25 top holds")
	docs := make([]string, 0, len(byDoc))
	for d := range byDoc {
		docs = append(docs, d)
	}
	sort.Strings(docs)
	for _, d := range append(docs, "all") {
		x := byDoc[d]
		if d == "all" {
			x = &all
		}
		fmt.Fprintf(&b, "%-10s %9d %12d %12d %14d\n", d, x.n, x.top3, x.reply, x.peer)
	}
	share := 0.0
	if all.top3 > 0 {
		share = float64(all.replyTop3) / float64(all.top3)
	}
	fmt.Fprintf(&b, "\nreply holds the answer for %d of %d questions whose answer is in the top 3 (%.0f%%, floor %.0f%%)\n",
		all.replyTop3, all.top3, 100*share, 100*answerInTop3Floor)
	fmt.Fprintf(&b, "reply holds the answer for %d of %d answerable questions; the BM25 peer's top passage for %d\n", all.reply, all.n, all.peer)
	fmt.Fprintf(&b, "unanswerable questions answered \"don't know\": %d of %d; median reply length %d characters (limit %d)\n",
		honest, unanswerable, median, medianReplyChars)
	t.Log(b.String())

	if share < answerInTop3Floor {
		t.Errorf("the reply holds the answer for %.0f%% of the questions answered in the top 3 passages, below the floor %.0f%%", 100*share, 100*answerInTop3Floor)
	}
	if all.reply < all.peer {
		t.Errorf("replies hold the answer for %d questions, fewer than the BM25 peer's top passage (%d)", all.reply, all.peer)
	}
	if median >= medianReplyChars {
		t.Errorf("median reply length %d characters, not under %d", median, medianReplyChars)
	}
	if unanswerable < 5 {
		t.Errorf("the set needs at least 5 unanswerable questions, has %d", unanswerable)
	}
}

func tallyOf[T any](m map[string]*T, k string) *T {
	if m[k] == nil {
		m[k] = new(T)
	}
	return m[k]
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// normalized folds case, quotes and white space, so that a reply quoting
// “x” or a wrapped line still counts as containing x.
func normalized(s string) string {
	s = strings.NewReplacer("“", `"`, "”", `"`, "„", `"`, "»", `"`, "«", `"`, "’", "'", "`", "").Replace(s)
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

func containsAny(text string, want []string) bool {
	t := normalized(text)
	for _, w := range want {
		if strings.Contains(t, normalized(w)) {
			return true
		}
	}
	return false
}

// bm25Peer is a plain BM25 search (k1 1.2, b 0.75, lower-cased words, no
// stemming, no stop words) over ~500-character passages of the documents'
// full text and the FAQ pairs: what a simple search box would show first.
type bm25Peer struct {
	passages []string
	tfs      []map[string]int
	lens     []int
	df       map[string]int
	avg      float64
}

func bm25Words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

func newBM25Peer(t testing.TB) *bm25Peer {
	t.Helper()
	p := &bm25Peer{df: map[string]int{}}
	for _, d := range answerDocs {
		raw, err := os.ReadFile(filepath.Join("testdata", "answers", d.reference))
		if err != nil {
			t.Fatal(err)
		}
		text := string(raw)
		if strings.HasSuffix(d.reference, ".html") {
			doc, err := goquery.NewDocumentFromReader(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			doc.Find("script, style").Remove()
			text = doc.Find("body").Text()
		}
		p.passages = append(p.passages, cutPassages(text, 500)...)
	}
	var pairs []faqPair
	readAnswerData(t, "faq.json", &pairs)
	for _, f := range pairs {
		p.passages = append(p.passages, f.Question+"\n"+f.Answer+"\n"+strings.Join(f.Tags, " "))
	}
	total := 0
	for _, s := range p.passages {
		tf := map[string]int{}
		ws := bm25Words(s)
		for _, w := range ws {
			if tf[w] == 0 {
				p.df[w]++
			}
			tf[w]++
		}
		p.tfs = append(p.tfs, tf)
		p.lens = append(p.lens, len(ws))
		total += len(ws)
	}
	p.avg = float64(total) / float64(len(p.passages))
	return p
}

// cutPassages cuts text into passages of about n characters, at word bounds.
func cutPassages(text string, n int) []string {
	var out []string
	var cur []string
	size := 0
	for _, w := range strings.Fields(text) {
		cur = append(cur, w)
		size += len(w) + 1
		if size >= n {
			out = append(out, strings.Join(cur, " "))
			cur, size = nil, 0
		}
	}
	if len(cur) > 0 {
		out = append(out, strings.Join(cur, " "))
	}
	return out
}

func (p *bm25Peer) top(q string) string {
	const k1, b = 1.2, 0.75
	best, bestScore := "", 0.0
	n := float64(len(p.passages))
	for i, tf := range p.tfs {
		score := 0.0
		seen := map[string]bool{}
		for _, w := range bm25Words(q) {
			if seen[w] || tf[w] == 0 {
				continue
			}
			seen[w] = true
			idf := math.Log(1 + (n-float64(p.df[w])+0.5)/(float64(p.df[w])+0.5))
			f := float64(tf[w])
			score += idf * f * (k1 + 1) / (f + k1*(1-b+b*float64(p.lens[i])/p.avg))
		}
		if score > bestScore {
			best, bestScore = p.passages[i], score
		}
	}
	return best
}
