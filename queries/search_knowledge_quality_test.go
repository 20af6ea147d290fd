package queries_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/companin/companin/adapters/eventstore/memory"
	"github.com/companin/companin/adapters/extract"
	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/knowledge"
	"github.com/companin/companin/projections"
	"github.com/companin/companin/queries"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Floors for the retrieval quality test, set a little below what was
// measured (docs/benchmarks-knowledge.md), so a change that makes retrieval
// worse fails while noise does not.
const (
	recallAt3Floor = 0.80
	mrrFloor       = 0.65
)

// appendSource stores what s recorded, as the commands would.
func appendSource(t testing.TB, store es.Store, org uuid.UUID, s *knowledge.Source) {
	t.Helper()
	var evs []es.NewEvent
	for _, c := range s.Changes() {
		data, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, es.NewEvent{ID: uuid.New(), Type: c.EventType(), Data: data, Metadata: es.Metadata{OrganizationID: org.String()}})
	}
	if _, err := store.Append(context.Background(), knowledge.Kind+"-"+s.ID().String(), es.Any, evs...); err != nil {
		t.Fatal(err)
	}
}

// loadKB indexes the documents and Q&A pairs under testdata/kb for org and
// returns which knowledge id each file name (or "qa") became.
func loadKB(t testing.TB, store es.Store, org uuid.UUID) map[uuid.UUID]string {
	t.Helper()
	names := map[uuid.UUID]string{}
	files, _ := filepath.Glob(filepath.Join("testdata", "kb", "*.md"))
	now := time.Now()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		spec, err := knowledge.ParseFile(knowledge.Common{Title: filepath.Base(f)}, "md", filepath.Base(f), data)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := extract.File(context.Background(), "md", data)
		if err != nil {
			t.Fatal(err)
		}
		s := knowledge.New(uuid.NewSHA1(uuid.NameSpaceURL, []byte(f)))
		_ = s.Put(spec, now)
		_ = s.CompleteIngestion(1, doc, "", now)
		appendSource(t, store, org, s)
		names[s.ID()] = filepath.Base(f)
	}
	raw, err := os.ReadFile(filepath.Join("testdata", "kb", "qa.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pairs []struct{ Question, Answer string }
	if err := json.Unmarshal(raw, &pairs); err != nil {
		t.Fatal(err)
	}
	for _, p := range pairs {
		spec, err := knowledge.ParseQA(knowledge.Common{}, p.Question, p.Answer)
		if err != nil {
			t.Fatal(err)
		}
		s := knowledge.New(uuid.NewSHA1(uuid.NameSpaceURL, []byte(p.Question)))
		_ = s.Put(spec, now)
		appendSource(t, store, org, s)
		names[s.ID()] = "qa"
	}
	return names
}

func indexKB(t testing.TB) (*pgxpool.Pool, uuid.UUID, map[uuid.UUID]string) {
	t.Helper()
	pool := pgtest.NewPool(t)
	store := memory.New()
	org := uuid.New()
	names := loadKB(t, store, org)
	if err := messaging.CatchUp(context.Background(), store, pool, projections.Knowledge{}); err != nil {
		t.Fatal(err)
	}
	return pool, org, names
}

// TestRetrievalQuality asks questions phrased unlike the documents (English
// and German) and checks that the passage holding the answer comes early.
// It prints recall@3 and MRR; it fails only below the floors above.
func TestRetrievalQuality(t *testing.T) {
	pool, org, names := indexKB(t)
	recall, mrr := retrievalQuality(t, queries.NewSearchKnowledgeHandler(pool), org, names, true)
	if recall < recallAt3Floor || mrr < mrrFloor {
		t.Errorf("retrieval got worse: recall@3 %.3f (floor %.2f), MRR %.3f (floor %.2f)", recall, recallAt3Floor, mrr, mrrFloor)
	}
}

// TestRetrievalQualityAmong10kChunks asks the same questions with the
// knowledge base hidden among 10,000 generated chunks, where many of the
// questions' words are common: finding passages by the rarer words
// (queries.CommonWordChunks) must find the answers as well as ranking every
// chunk that has any of the words does.
func TestRetrievalQualityAmong10kChunks(t *testing.T) {
	pool := pgtest.NewPool(t)
	org := uuid.New()
	names, chunks, frequent := indexKBAmongGenerated(t, pool, org)
	search := queries.NewSearchKnowledgeHandler(pool)
	recall, mrr := retrievalQuality(t, search, org, names, true)
	allRecall, allMRR := retrievalQuality(t, search.WithCommonWordChunks(0), org, names, true)
	t.Logf("among %d chunks: recall@3 %.3f, MRR %.3f; ranking every chunk with a word of the question: recall@3 %.3f, MRR %.3f",
		chunks, recall, mrr, allRecall, allMRR)
	if recall < allRecall || mrr < allMRR {
		t.Errorf("the common-word cut-off loses answers: recall@3 %.3f < %.3f or MRR %.3f < %.3f", recall, allRecall, mrr, allMRR)
	}
	// A message as long as allowed, of the generated chunks' most frequent
	// words and the documents' words, is answered within the search's
	// statement timeout (10 s): the common words paired are bounded (66
	// pairs rather than thousands).
	long := append([]string(nil), frequent...)
	for _, f := range []string{"router-manual.md", "app-guide.md", "konto-hilfe.md"} {
		raw, err := os.ReadFile(filepath.Join("testdata", "kb", f))
		if err != nil {
			t.Fatal(err)
		}
		long = append(long, strings.Fields(string(raw))...)
	}
	q := []rune(strings.Join(long, " "))[:queries.MaxSearchQuery]
	start := time.Now()
	got, err := search.Handle(context.Background(), queries.SearchKnowledgeQuery{OrganizationID: org, Query: string(q), Limit: 5})
	if err != nil || len(got) == 0 {
		t.Fatalf("a %d-character question: %d passages, %v", len(q), len(got), err)
	}
	t.Logf("a %d-character question: %d passages in %s", len(q), len(got), time.Since(start).Round(time.Millisecond))
}

// retrievalQuality asks testdata/kb/questions.json and returns recall@3 and
// MRR, logging the misses when asked to.
func retrievalQuality(t *testing.T, search queries.SearchKnowledgeHandler, org uuid.UUID, names map[uuid.UUID]string, logMisses bool) (recall, mrr float64) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "kb", "questions.json"))
	if err != nil {
		t.Fatal(err)
	}
	var questions []struct{ Q, Doc, Expect string }
	if err := json.Unmarshal(raw, &questions); err != nil {
		t.Fatal(err)
	}
	var hits3, rr float64
	for _, q := range questions {
		got, err := search.Handle(context.Background(), queries.SearchKnowledgeQuery{OrganizationID: org, Query: q.Q, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		rank := 0
		for i, p := range got {
			if names[p.KnowledgeID] == q.Doc && strings.Contains(p.Text, q.Expect) {
				rank = i + 1
				break
			}
		}
		if rank > 0 {
			rr += 1 / float64(rank)
		}
		if rank > 0 && rank <= 3 {
			hits3++
		} else if logMisses {
			top := "nothing"
			if len(got) > 0 {
				top = names[got[0].KnowledgeID] + ": " + strings.ReplaceAll(got[0].Snippet, "\n", " ")
			}
			t.Logf("miss (rank %d): %q; first: %s", rank, q.Q, top)
		}
	}
	n := float64(len(questions))
	recall, mrr = hits3/n, rr/n
	t.Logf("retrieval quality over %d questions: recall@3 = %.3f, MRR = %.3f", len(questions), recall, mrr)
	return recall, mrr
}
