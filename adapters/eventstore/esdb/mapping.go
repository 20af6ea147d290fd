package esdb

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/companin/companin/domain/es"
)

// This file holds the pure translation between the es port and EventStoreDB's
// terms, kept apart from the network code so that it is unit tested without a
// server.

// expectedRevision translates an expectation. Versions count from 1 in es and
// revisions from 0 in EventStoreDB, so es version v is revision v-1.
func expectedRevision(x es.ExpectedVersion) esdb.ExpectedRevision {
	switch {
	case x.IsNoStream():
		return esdb.NoStream{}
	case x.IsStreamExists():
		return esdb.StreamExists{}
	}
	if v, ok := x.ExactVersion(); ok {
		return esdb.Revision(v - 1)
	}
	return esdb.Any{}
}

// versionOf is the es version of the event at an EventStoreDB revision.
func versionOf(revision uint64) uint64 { return revision + 1 }

// revisionOf is the revision to read from for an es version (0 and 1 both
// mean the first event).
func revisionOf(version uint64) uint64 {
	if version == 0 {
		return 0
	}
	return version - 1
}

// positionWidth is the length of an encoded position: two 16-digit hex numbers.
const positionWidth = 32

// encodePosition writes a $all position as fixed-width lower-case hex, commit
// then prepare, so that plain string comparison of two positions is
// EventStoreDB's order of (commit, prepare).
func encodePosition(p esdb.Position) es.Position {
	return es.Position(fmt.Sprintf("%016x%016x", p.Commit, p.Prepare))
}

// decodePosition reads a position written by encodePosition. es.Start
// decodes to ok=false: read from the beginning.
func decodePosition(p es.Position) (pos esdb.Position, ok bool, err error) {
	if p == es.Start {
		return esdb.Position{}, false, nil
	}
	s := string(p)
	if len(s) != positionWidth || strings.ToLower(s) != s {
		return esdb.Position{}, false, fmt.Errorf("esdb: bad position %q", p)
	}
	commit, err1 := strconv.ParseUint(s[:16], 16, 64)
	prepare, err2 := strconv.ParseUint(s[16:], 16, 64)
	if err1 != nil || err2 != nil {
		return esdb.Position{}, false, fmt.Errorf("esdb: bad position %q", p)
	}
	return esdb.Position{Commit: commit, Prepare: prepare}, true, nil
}

// hasPosition tells a $all position from the "none" that servers before
// 22.6 send for events read from a stream (all bits set). Such events read
// with no Position.
func hasPosition(p esdb.Position) bool {
	return p.Commit != math.MaxUint64 && p.Prepare != math.MaxUint64
}

// positionAfter tells whether a lies after b in $all.
func positionAfter(a, b esdb.Position) bool {
	if a.Commit != b.Commit {
		return a.Commit > b.Commit
	}
	return a.Prepare > b.Prepare
}

// envelope is the JSON stored as an event's user metadata: es.Metadata's
// fields at the top level, plus what es.Event carries that EventStoreDB has
// no field for. The $correlationId and $causationId copies follow
// EventStoreDB's own convention, so its $by_correlation_id projection and UI
// understand them; they are ignored when reading.
type envelope struct {
	es.Metadata
	SchemaVersion int `json:"schema_version,omitempty"`
	// AppendID is random per Append call. Reading it back tells a fresh write
	// (our id) from an idempotent retry that EventStoreDB acknowledged without
	// writing (the earlier call's id).
	AppendID      string `json:"append_id,omitempty"`
	CorrelationES string `json:"$correlationId,omitempty"`
	CausationES   string `json:"$causationId,omitempty"`
}

func encodeMetadata(m es.Metadata, schemaVersion int, appendID string) ([]byte, error) {
	b, err := json.Marshal(envelope{
		Metadata:      m,
		SchemaVersion: max(schemaVersion, 1),
		AppendID:      appendID,
		CorrelationES: m.CorrelationID,
		CausationES:   m.CausationID,
	})
	if err != nil {
		return nil, fmt.Errorf("esdb: encode metadata: %w", err)
	}
	return b, nil
}

// decodeMetadata reads user metadata. Events written by other tools may carry
// none, or metadata of another shape: they read as empty metadata and schema
// version 1 rather than failing the whole read.
func decodeMetadata(b []byte) (m es.Metadata, schemaVersion int, appendID string) {
	var env envelope
	if len(b) > 0 && json.Unmarshal(b, &env) == nil {
		m, schemaVersion, appendID = env.Metadata, env.SchemaVersion, env.AppendID
	}
	return m, max(schemaVersion, 1), appendID
}

// toEventData builds what EventStoreDB stores for one event.
func toEventData(e es.NewEvent, appendID string) (esdb.EventData, error) {
	meta, err := encodeMetadata(e.Metadata, e.SchemaVersion, appendID)
	if err != nil {
		return esdb.EventData{}, err
	}
	return esdb.EventData{
		EventID:     e.ID,
		EventType:   e.Type,
		ContentType: esdb.ContentTypeJson,
		Data:        e.Data,
		Metadata:    meta,
	}, nil
}

// toEvent translates a recorded event, and returns the append id it was
// written with. The stream name is EventStoreDB's; Store strips its namespace.
func toEvent(r *esdb.RecordedEvent) (es.Event, string) {
	m, sv, appendID := decodeMetadata(r.UserMetadata)
	var data json.RawMessage
	if len(r.Data) > 0 {
		data = json.RawMessage(r.Data)
	}
	var pos es.Position
	var global int64
	if hasPosition(r.Position) {
		pos, global = encodePosition(r.Position), int64(r.Position.Prepare)
	}
	return es.Event{
		ID:             r.EventID,
		Stream:         r.StreamID,
		Version:        versionOf(r.EventNumber),
		Position:       pos,
		GlobalPosition: global,
		Type:           r.EventType,
		SchemaVersion:  sv,
		Data:           data,
		Metadata:       m,
		RecordedAt:     r.CreatedDate.UTC(),
	}, appendID
}

// isSystem tells events that EventStoreDB writes for itself (stream metadata,
// statistics, projections' links), which are not part of Companin's log.
func isSystem(r *esdb.RecordedEvent) bool {
	return strings.HasPrefix(r.EventType, "$") || strings.HasPrefix(r.StreamID, "$")
}

// mapError translates the client's errors into the port's, keeping the
// original in the chain for logs. op names the operation for the message.
func mapError(op string, err error) error {
	if err == nil {
		return nil
	}
	// *esdb.Error has this method; matching the method rather than the type
	// lets tests build errors with any code (the code field is unexported).
	var e interface{ Code() esdb.ErrorCode }
	if errors.As(err, &e) {
		switch e.Code() {
		case esdb.ErrorCodeWrongExpectedVersion:
			return fmt.Errorf("esdb: %s: %w: %w", op, es.ErrWrongExpectedVersion, err)
		case esdb.ErrorCodeResourceNotFound, esdb.ErrorCodeStreamDeleted:
			return fmt.Errorf("esdb: %s: %w: %w", op, es.ErrStreamNotFound, err)
		}
	}
	return fmt.Errorf("esdb: %s: %w", op, err)
}
