package queries_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/companin/companin/domain/answer"
	"github.com/google/uuid"
)

// BenchmarkEmbeddedAnswer measures how long the embedded engine takes to
// answer from the passages retrieval found, on the real documents of the
// answer-quality test (a 24-page calibre manual of ~40 chunks among them):
// every question of that test, its passages retrieved once beforehand. It
// reports the engine's median and 99th percentile per answer, and the
// median of retrieval and engine together (retrieval in PostgreSQL).
//
//	go test ./queries/ -run XXX -bench EmbeddedAnswer -benchtime 20x
func BenchmarkEmbeddedAnswer(b *testing.B) {
	retriever, org, _ := answerKB(b)
	var questions []answerQuestion
	readAnswerData(b, "questions.json", &questions)
	ctx := context.Background()
	reqs := make([]answer.Request, len(questions))
	var total []time.Duration
	for i, q := range questions {
		start := time.Now()
		ps, err := retriever.Retrieve(ctx, org, uuid.Nil, q.Q, answerPassages)
		if err != nil {
			b.Fatal(err)
		}
		reqs[i] = answer.Request{Question: q.Q, Passages: ps}
		if _, err := answer.NewEmbedded().Answer(ctx, reqs[i]); err != nil {
			b.Fatal(err)
		}
		total = append(total, time.Since(start))
	}
	engine := answer.NewEmbedded()
	var times []time.Duration
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		for _, req := range reqs {
			start := time.Now()
			if _, err := engine.Answer(ctx, req); err != nil {
				b.Fatal(err)
			}
			times = append(times, time.Since(start))
		}
	}
	b.StopTimer()
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	sort.Slice(total, func(i, j int) bool { return total[i] < total[j] })
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(times[len(times)/2]), "engine-p50-ms")
	b.ReportMetric(ms(times[len(times)*99/100]), "engine-p99-ms")
	b.ReportMetric(ms(total[len(total)/2]), "with-retrieval-p50-ms")
	b.ReportMetric(float64(len(reqs)), "questions")
}
