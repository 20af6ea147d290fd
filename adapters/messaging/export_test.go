package messaging

// BatchStatements switches the runners between statements batched per
// transaction (true, the default) and one round trip per statement, as they
// were before, so that benchmarks measure both in the same run.
func BatchStatements(on bool) { batchStatements = on }
