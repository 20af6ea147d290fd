package natsfeed_test

import (
	"context"
	"testing"

	"github.com/companin/companin/adapters/messaging"
)

// BenchmarkFeedLive measures how fast the feed publishes a backlog under the
// consumer runtime, as serve runs it (one transaction and one acknowledged
// publish per event). Run with -benchtime=2000x.
func BenchmarkFeedLive(b *testing.B) {
	e := newEnv(b)
	e.appendMany(b, b.N, newOrg(), newOrg())
	log := e.log(b)
	f := e.newFeed(b, e.config())
	b.ResetTimer()
	e.run(b, f)
	e.waitCaughtUp(b, f.Name(), log[len(log)-1].Position)
	b.StopTimer()
	b.ReportMetric(float64(len(log))/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkFeedCatchUp measures the same through messaging.CatchUp, which
// applies up to 500 events per transaction: what a batching runner would reach.
func BenchmarkFeedCatchUp(b *testing.B) {
	e := newEnv(b)
	e.appendMany(b, b.N, newOrg(), newOrg())
	log := e.log(b)
	f := e.newFeed(b, e.config())
	b.ResetTimer()
	if err := messaging.CatchUp(context.Background(), e.raw, e.pool, f); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(len(log))/b.Elapsed().Seconds(), "events/s")
}
