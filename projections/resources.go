package projections

import (
	"encoding/json"
	"time"

	"github.com/companin/companin/domain/es"
)

// at is the event's own time, or when it was recorded if it has none.
func at(t time.Time, e es.Event) time.Time {
	if t.IsZero() {
		return e.RecordedAt
	}
	return t
}

// object encodes a free-form JSON object, {} for nil.
func object(m map[string]any) []byte {
	if m == nil {
		return []byte("{}")
	}
	b, err := json.Marshal(m)
	if err != nil {
		return []byte("{}")
	}
	return b
}
