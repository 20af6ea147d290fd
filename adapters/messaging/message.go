package messaging

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
)

// Message metadata keys: stable names, never Go type names.
const (
	MetaEventID       = "event_id"
	MetaEventType     = "event_type"
	MetaStream        = "stream"
	MetaStreamVersion = "stream_version"
	MetaPosition      = "position"
	MetaConsumer      = "consumer"
	metaJobID         = "job_id"
	metaAttempt       = "attempt"
	metaError         = "error"
)

// envelope is the message payload: the event as stored, with stable JSON names.
type envelope struct {
	ID             uuid.UUID       `json:"id"`
	Stream         string          `json:"stream"`
	Version        uint64          `json:"version"`
	Position       es.Position     `json:"position"`
	GlobalPosition int64           `json:"global_position"`
	Type           string          `json:"type"`
	SchemaVersion  int             `json:"schema_version"`
	Data           json.RawMessage `json:"data,omitempty"`
	Metadata       es.Metadata     `json:"metadata"`
	RecordedAt     time.Time       `json:"recorded_at"`
}

func eventMessage(consumer string, e es.Event) (*message.Message, error) {
	payload, err := json.Marshal(envelope{
		ID: e.ID, Stream: e.Stream, Version: e.Version, Position: e.Position, GlobalPosition: e.GlobalPosition,
		Type: e.Type, SchemaVersion: e.SchemaVersion, Data: e.Data, Metadata: e.Metadata, RecordedAt: e.RecordedAt,
	})
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", e.ID, err)
	}
	msg := message.NewMessage(e.ID.String(), payload)
	msg.Metadata.Set(MetaEventID, e.ID.String())
	msg.Metadata.Set(MetaEventType, e.Type)
	msg.Metadata.Set(MetaStream, e.Stream)
	msg.Metadata.Set(MetaStreamVersion, strconv.FormatUint(e.Version, 10))
	msg.Metadata.Set(MetaPosition, string(e.Position))
	msg.Metadata.Set(MetaConsumer, consumer)
	corr := e.Metadata.CorrelationID
	if corr == "" {
		corr = e.ID.String()
	}
	middleware.SetCorrelationID(corr, msg)
	return msg, nil
}

func eventOf(msg *message.Message) (es.Event, error) {
	var v envelope
	if err := json.Unmarshal(msg.Payload, &v); err != nil {
		return es.Event{}, fmt.Errorf("decode message %s: %w", msg.UUID, err)
	}
	return es.Event{
		ID: v.ID, Stream: v.Stream, Version: v.Version, Position: v.Position, GlobalPosition: v.GlobalPosition,
		Type: v.Type, SchemaVersion: v.SchemaVersion, Data: v.Data, Metadata: v.Metadata, RecordedAt: v.RecordedAt,
	}, nil
}
