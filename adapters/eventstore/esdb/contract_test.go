package esdb

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/companin/companin/adapters/eventstore/contract"
	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
)

// TestContract runs the shared event store contract against a real
// EventStoreDB, e.g.
//
//	docker run -d -p 2113:2113 eventstore/eventstore:24.10 --insecure --run-projections=none
//	COMPANIN_TEST_ESDB_URL='esdb://127.0.0.1:2113?tls=false' go test ./adapters/eventstore/esdb/
//
// Every subtest gets its own namespace, so that it sees an empty log on a
// shared server. Without the variable the test is skipped, not passed: this
// adapter is then proven by nothing but its mapping tests.
func TestContract(t *testing.T) {
	url := os.Getenv("COMPANIN_TEST_ESDB_URL")
	if url == "" {
		t.Skip("EventStoreDB contract NOT run: set COMPANIN_TEST_ESDB_URL (e.g. esdb://127.0.0.1:2113?tls=false) to run it")
	}
	contract.Run(t, func(t *testing.T) es.Store {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		s, err := New(ctx, url, WithNamespace("contract-"+uuid.NewString()))
		if err != nil {
			t.Fatalf("connect to %s: %v", url, err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
