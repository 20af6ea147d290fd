package queries_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/companin/companin/adapters/eventstore/memory"
	"github.com/companin/companin/adapters/extract"
	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/companin/companin/domain/knowledge"
	"github.com/companin/companin/projections"
	"github.com/companin/companin/queries"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// hundredPagePDF renders a 100-page manual with Ghostscript (ps2pdf).
func hundredPagePDF(b *testing.B) []byte {
	b.Helper()
	ps2pdf, err := exec.LookPath("ps2pdf")
	if err != nil {
		b.Skip("ps2pdf (Ghostscript) not installed: see docs/ci-packages.txt")
	}
	var ps strings.Builder
	ps.WriteString("%!PS\n/H { /Helvetica-Bold findfont 16 scalefont setfont } def\n/B { /Helvetica findfont 10 scalefont setfont } def\n")
	rng := rand.New(rand.NewPCG(1, 2))
	vocab := strings.Fields("router network setting password update device connection signal channel warranty repair delivery invoice account security firmware cable light status restart")
	for page := 1; page <= 100; page++ {
		fmt.Fprintf(&ps, "H 72 740 moveto (Chapter %d: Configuring feature %d) show\nB\n", page, page)
		y := 710
		for line := 0; line < 50; line++ {
			if line%10 == 9 {
				y -= 8 // a paragraph break
			}
			var words []string
			for range 12 {
				words = append(words, vocab[rng.IntN(len(vocab))])
			}
			fmt.Fprintf(&ps, "72 %d moveto (%s.) show\n", y, strings.Join(words, " "))
			y -= 12
		}
		ps.WriteString("showpage\n")
	}
	dir := b.TempDir()
	src, out := filepath.Join(dir, "manual.ps"), filepath.Join(dir, "manual.pdf")
	if err := os.WriteFile(src, []byte(ps.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	if msg, err := exec.Command(ps2pdf, src, out).CombinedOutput(); err != nil {
		b.Fatalf("ps2pdf: %v %s", err, msg)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkIngestPDF100Pages measures ingestion of a 100-page PDF: text
// extraction, chunking and indexing (the projection's write), in pages/s.
func BenchmarkIngestPDF100Pages(b *testing.B) {
	data := hundredPagePDF(b)
	pool := pgtest.NewPool(b)
	ctx := context.Background()
	org := uuid.New()
	spec, err := knowledge.ParseFile(knowledge.Common{Title: "Manual"}, "pdf", "manual.pdf", data)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	chunks := 0
	for b.Loop() {
		store := memory.New()
		doc, err := extract.File(ctx, "pdf", data)
		if err != nil {
			b.Fatal(err)
		}
		if doc.Pages != 100 {
			b.Fatalf("pages = %d", doc.Pages)
		}
		s := knowledge.New(uuid.New())
		_ = s.Put(spec, time.Now())
		_ = s.CompleteIngestion(1, doc, "", time.Now())
		chunks = len(s.Changes()[1].(knowledge.Ingested).Chunks)
		appendSource(b, store, org, s)
		if err := messaging.CatchUp(ctx, store, pool, projections.Knowledge{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(100*b.N)/time.Since(start).Seconds(), "pages/s")
	b.ReportMetric(float64(chunks), "chunks")
}

// BenchmarkSearch10kChunks measures search latency over 10,000 chunks of one
// organization (plus the quality test's knowledge base), with the quality
// test's questions; it reports p50 and p99 in milliseconds.
func BenchmarkSearch10kChunks(b *testing.B) {
	pool := pgtest.NewPool(b)
	ctx := context.Background()
	org := uuid.New()
	_, n, _ := indexKBAmongGenerated(b, pool, org)
	raw, _ := os.ReadFile(filepath.Join("testdata", "kb", "questions.json"))
	var questions []struct{ Q string }
	_ = json.Unmarshal(raw, &questions)
	search := queries.NewSearchKnowledgeHandler(pool)
	var lat []time.Duration
	b.ResetTimer()
	i := 0
	for b.Loop() {
		t0 := time.Now()
		if _, err := search.Handle(ctx, queries.SearchKnowledgeQuery{OrganizationID: org, Query: questions[i%len(questions)].Q, Limit: 5}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
		i++
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	b.ReportMetric(float64(n), "chunks")
}

// indexKBAmongGenerated indexes the quality test's knowledge base (testdata/kb)
// for org among 10,000 generated chunks, and returns which knowledge id each
// file became, how many chunks org has, and the 50 words most frequent in
// the generated chunks.
func indexKBAmongGenerated(t testing.TB, pool *pgxpool.Pool, org uuid.UUID) (map[uuid.UUID]string, int, []string) {
	t.Helper()
	ctx := context.Background()
	store := memory.New()
	names := loadKB(t, store, org)
	// A vocabulary like a real collection's: the knowledge base's words plus
	// 20,000 made-up ones, drawn with a Zipf distribution, so that a query
	// word occurs in a realistic share of chunks rather than in all of them.
	var kb []string
	files, _ := filepath.Glob(filepath.Join("testdata", "kb", "*.md"))
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		kb = append(kb, strings.Fields(string(raw))...)
	}
	syllables := strings.Fields("ka lo mi ter san vel dor pri ung ben ra sto fel gar min tis col ver ham bru")
	gen := rand.New(rand.NewPCG(5, 6))
	var made []string
	for range 20000 {
		var w strings.Builder
		for range 2 + gen.IntN(3) {
			w.WriteString(syllables[gen.IntN(len(syllables))])
		}
		made = append(made, w.String())
	}
	// The most frequent ranks stand for function words; real words follow.
	rest := append(made[50:], kb...)
	gen.Shuffle(len(rest), func(i, j int) { rest[i], rest[j] = rest[j], rest[i] })
	vocab := append(made[:50:50], rest...)
	zipf := rand.NewZipf(rand.New(rand.NewPCG(7, 8)), 1.1, 2, uint64(len(vocab)-1))
	now := time.Now()
	for d := range 100 {
		var blocks []knowledge.Block
		for c := range 100 {
			blocks = append(blocks, knowledge.Block{Kind: knowledge.Heading, Level: 2, Text: fmt.Sprintf("Section %d.%d", d, c)})
			var words []string
			for range 150 {
				words = append(words, vocab[zipf.Uint64()])
			}
			blocks = append(blocks, knowledge.Block{Kind: knowledge.Paragraph, Text: strings.Join(words, " ") + "."})
		}
		spec, _ := knowledge.ParseFile(knowledge.Common{Title: fmt.Sprintf("Generated document %d", d)}, "txt", "g.txt", []byte("x"))
		s := knowledge.New(uuid.New())
		_ = s.Put(spec, now)
		_ = s.CompleteIngestion(1, knowledge.Document{Blocks: blocks}, "", now)
		appendSource(t, store, org, s)
	}
	if err := messaging.CatchUp(ctx, store, pool, projections.Knowledge{}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM knowledge_chunks WHERE organization_id = $1`, org).Scan(&n); err != nil || n < 10000 {
		t.Fatalf("chunks = %d, %v", n, err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE knowledge_chunks`); err != nil {
		t.Fatal(err)
	}
	return names, n, made[:50]
}
