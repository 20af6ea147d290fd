package postgres

import (
	"context"
	"testing"

	"github.com/companin/companin/adapters/eventstore/contract"
	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/companin/companin/domain/es"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := New(context.Background(), pgtest.NewPool(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestContract(t *testing.T) {
	contract.Run(t, func(t *testing.T) es.Store { return newStore(t) })
}
