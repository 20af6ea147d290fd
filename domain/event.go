package domain

import (
	"encoding/json"
	"fmt"
	"reflect"
)

// InvalidError is a value that breaks a rule of the domain. Field names the
// input field (the JSON name), so the HTTP layer can answer a 422 with field
// errors without knowing the rule.
type InvalidError struct {
	Field   string
	Message string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Message }

// Unwrap makes every InvalidError an ErrInvalid (a 422).
func (e *InvalidError) Unwrap() error { return ErrInvalid }

// Invalid returns an *InvalidError for field.
func Invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Event is a fact recorded by an aggregate. EventType is the stable name it is
// stored under: a constant next to the struct, never derived from Go names.
type Event interface {
	EventType() string
}

// Personal is implemented by events that carry personal data. The command
// layer copies it into es.Metadata (Subject, Personal) so that the
// crypto-shredding store encrypts those top-level fields with the subject's key.
type Personal interface {
	PersonalData() (subject string, fields []string)
}

// Recorder collects an aggregate's new events. Embed it and call Record.
type Recorder struct {
	changes []Event
}

// Record remembers e as a new event; the aggregate applies it itself.
func (r *Recorder) Record(e Event) { r.changes = append(r.changes, e) }

// Changes returns the events recorded since the aggregate was loaded.
func (r *Recorder) Changes() []Event { return r.changes }

// Decode unmarshals data into an event of type T. Aggregate packages use it in
// their Decode switch.
func Decode[T Event](data []byte) (Event, error) {
	var e T
	if len(data) > 0 {
		if err := json.Unmarshal(data, &e); err != nil {
			return nil, fmt.Errorf("decode %s: %w", e.EventType(), err)
		}
	}
	return e, nil
}

// EventTypes is the decoding table of one aggregate's events: the Go type of
// each stored type name. Build it with Events.
type EventTypes map[string]reflect.Type

// Events builds the table from a zero value of each event type: their
// EventType names them in the log, so the table cannot disagree with it.
func Events(zero ...Event) EventTypes {
	t := make(EventTypes, len(zero))
	for _, e := range zero {
		t[e.EventType()] = reflect.TypeOf(e)
	}
	return t
}

// Decode turns a stored event into its domain event; nil for types the table
// does not name, so that other features may add events to a stream without
// breaking its loader.
func (t EventTypes) Decode(typ string, data []byte) (Event, error) {
	rt, ok := t[typ]
	if !ok {
		return nil, nil
	}
	p := reflect.New(rt)
	if len(data) > 0 {
		if err := json.Unmarshal(data, p.Interface()); err != nil {
			return nil, fmt.Errorf("decode %s: %w", typ, err)
		}
	}
	return p.Elem().Interface().(Event), nil
}
