// Package es defines the event log: the one source of truth that every other
// part of Companin derives from. It holds the port (Store), the event envelope
// and the errors every adapter must return, so that callers can match them with
// errors.Is whatever adapter is configured.
package es

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Errors every adapter returns, wrapped with context. Match them with errors.Is.
var (
	// ErrWrongExpectedVersion means the stream was not at the version the
	// writer expected: somebody else wrote first. Reload and decide again.
	ErrWrongExpectedVersion = errors.New("wrong expected version")
	// ErrDuplicateEventID means an event id that is already stored came again
	// with different content or in another stream: it is not a retry.
	ErrDuplicateEventID = errors.New("event id already used for other content")
	// ErrStreamNotFound is returned by ReadStream for a stream without events.
	ErrStreamNotFound = errors.New("stream not found")
	// ErrInvalidEvent means an event cannot be stored as given.
	ErrInvalidEvent = errors.New("invalid event")
	// ErrInvalidText is the ErrInvalidEvent of text no reader could store:
	// a NUL character, invalid UTF-8 or an unpaired surrogate, in the data,
	// the metadata, the type or the stream name (see CheckJSONText).
	ErrInvalidText = fmt.Errorf("%w: text that cannot be stored", ErrInvalidEvent)
)

// Metadata travels with every event. It answers the auditor's questions: who
// did this, in which organization, because of what request and what event.
type Metadata struct {
	OrganizationID string `json:"organization_id,omitempty"`
	// Actor names who caused the event: "api_key:<client_id>", "widget:<client_id>",
	// "system:<component>", "cli".
	Actor         string `json:"actor,omitempty"`
	RequestID     string `json:"request_id,omitempty"`
	CorrelationID string `json:"correlation_id,omitempty"`
	CausationID   string `json:"causation_id,omitempty"`
	// Subject is the data subject whose key encrypts the Personal fields.
	Subject string `json:"subject,omitempty"`
	// Personal lists the top-level fields of Data that identify a person and
	// are stored encrypted with the Subject's key (crypto-shredding).
	Personal []string `json:"personal,omitempty"`
	// Extra is free-form, for whatever a caller wants to carry along.
	Extra map[string]string `json:"extra,omitempty"`
}

// NewEvent is an event about to be appended. ID makes appends idempotent: the
// same ID appended again with the same content is a no-op that returns the
// first result.
type NewEvent struct {
	ID            uuid.UUID
	Type          string
	SchemaVersion int
	Data          json.RawMessage
	Metadata      Metadata
}

// Event is an event as stored in the log.
type Event struct {
	ID     uuid.UUID
	Stream string
	// Version is the event's place in its stream: 1 for the first event.
	Version uint64
	// Position is the event's place in the global log: opaque, ordered within
	// one store, and what a reader hands back to continue after this event.
	Position Position
	// GlobalPosition is a human-readable sequence number of the event in the
	// global log. Unlike Position it is not a safe resume point on every adapter.
	GlobalPosition int64
	Type           string
	SchemaVersion  int
	Data           json.RawMessage
	Metadata       Metadata
	RecordedAt     time.Time
}

// Position is an opaque point in the global log. The zero value is the start.
// Positions of one store compare in log order by plain string comparison
// (adapters encode them as fixed-width hex), so a caller can tell whether a
// consumer's checkpoint has reached an append: see After.
type Position string

// After tells whether p lies after q in the log of one store.
func (p Position) After(q Position) bool { return p > q }

// Start is the position before the first event.
const Start Position = ""

// Validate checks what every adapter requires of an event before storing it,
// including text that every reader can store (no NUL, valid UTF-8).
func (e NewEvent) Validate() error {
	if e.ID == uuid.Nil {
		return fmt.Errorf("%w: missing id", ErrInvalidEvent)
	}
	if e.Type == "" {
		return fmt.Errorf("%w: missing type", ErrInvalidEvent)
	}
	if len(e.Data) > 0 && !json.Valid(e.Data) {
		return fmt.Errorf("%w: data of %s is not JSON", ErrInvalidEvent, e.Type)
	}
	// Text every reader can store: see CheckJSONText.
	return e.checkText()
}

// SameContent tells whether a stored event is the retry of n: same type and data.
func (e Event) SameContent(n NewEvent) bool {
	return e.Type == n.Type && jsonEqual(e.Data, n.Data)
}

func jsonEqual(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return string(a) == string(b)
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return string(ja) == string(jb)
}

// ValidateAppend checks a whole append before an adapter touches storage, so
// that every adapter rejects the same batches and stores none of their events:
// a stream name, valid events, and no event id twice in one batch (which could
// be neither stored twice nor told apart from a retry).
func ValidateAppend(stream string, events []NewEvent) error {
	if stream == "" {
		return fmt.Errorf("%w: empty stream name", ErrInvalidEvent)
	}
	if p := CheckText(stream); p != "" {
		return fmt.Errorf("%w: stream name %s", ErrInvalidText, p)
	}
	seen := make(map[uuid.UUID]struct{}, len(events))
	for _, e := range events {
		if err := e.Validate(); err != nil {
			return err
		}
		if _, dup := seen[e.ID]; dup {
			return fmt.Errorf("%w: event id %s twice in one append", ErrInvalidEvent, e.ID)
		}
		seen[e.ID] = struct{}{}
	}
	return nil
}
