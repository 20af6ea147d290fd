package memory_test

import (
	"testing"

	"github.com/companin/companin/adapters/eventstore/contract"
	"github.com/companin/companin/adapters/eventstore/memory"
	"github.com/companin/companin/domain/es"
)

func TestContract(t *testing.T) {
	contract.Run(t, func(t *testing.T) es.Store { return memory.New() })
}
