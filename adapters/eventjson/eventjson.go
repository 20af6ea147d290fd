// Package eventjson is the public JSON shape of a stored event: what
// GET /api/v1/events, its NDJSON export and SSE tail, the per-stream history
// endpoints and the NATS feed show. One shape, so that an analytics team reads
// the API and the broker with the same code.
package eventjson

import (
	"encoding/json"
	"time"

	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
)

// Event is one stored event as the outside world sees it. Its JSON names are
// a contract: never rename one.
type Event struct {
	ID         uuid.UUID       `json:"id"`
	Stream     string          `json:"stream"`
	Version    uint64          `json:"version"`
	Position   string          `json:"position"`
	Type       string          `json:"type"`
	Data       json.RawMessage `json:"data"`
	Metadata   Metadata        `json:"metadata"`
	RecordedAt time.Time       `json:"recorded_at"`
}

// Metadata is the event's metadata with its schema version and timestamp.
type Metadata struct {
	es.Metadata
	SchemaVersion int       `json:"schema_version"`
	Timestamp     time.Time `json:"timestamp"`
}

// From shows e. Personal fields appear as e carries them: decrypted (or null
// once erased) when e was read through the crypto-shredding store, sealed as
// {"$enc":"v1:..."} when read from the log as stored.
func From(e es.Event) Event {
	data := e.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	at := e.RecordedAt.UTC()
	return Event{
		ID: e.ID, Stream: e.Stream, Version: e.Version, Position: string(e.Position), Type: e.Type, Data: data,
		Metadata:   Metadata{Metadata: e.Metadata, SchemaVersion: e.SchemaVersion, Timestamp: at},
		RecordedAt: at,
	}
}
