package messaging

// OldRunner makes the runners work as they did before statements were
// batched and commits asynchronous (one round trip per statement,
// synchronous commits), so that benchmarks measure both in the same run.
func OldRunner(on bool) { oldRunner = on }
