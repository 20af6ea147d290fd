package shred_test

import (
	"testing"

	"github.com/companin/companin/adapters/eventstore/contract"
	"github.com/companin/companin/adapters/eventstore/memory"
	"github.com/companin/companin/adapters/eventstore/shred"
	"github.com/companin/companin/domain/es"
)

// The decorator keeps every guarantee of the store it wraps.
func TestContractThroughTheDecorator(t *testing.T) {
	contract.Run(t, func(t *testing.T) es.Store {
		return shred.New(memory.New(), shred.NewMemoryKeys())
	})
}
