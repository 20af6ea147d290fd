// Package shred erases personal data from an immutable event log by
// crypto-shredding: the fields of an event that identify a person are
// stored encrypted with a key of their data subject, kept outside the log;
// destroying the key makes them unreadable in every event, export and
// rebuild, while the log itself stays intact and replayable.
//
// Store decorates any es.Store. An event takes part when its es.Metadata
// names a Subject and lists Personal top-level fields of its Data:
//
//	es.Metadata{Subject: "usercontext-<uuid>", Personal: []string{"traits"}}
//
// On Append each listed field's value is replaced by {"$enc":"v1:<base64>"},
// AES-256-GCM under the subject's key (created on first use). The Subject
// itself stays readable, so it must be a pseudonymous id, never an e-mail
// address or a name. On reads each such value is decrypted; when the key was
// destroyed (Erase) the field reads as null and the event's
// Metadata.Extra[Erased] is "true", so consumers can tell erased data from
// data that was never there. Projections must therefore accept null for
// personal fields; a rebuild after an erasure writes nulls.
//
// Encryption is deterministic per event id, field and value, so an
// idempotent retry of an append produces the same stored bytes and is
// recognised as a retry. An erased subject stays erased: appending its
// personal fields after Erase fails with ErrErased, so that nothing written
// around or after an erasure becomes readable under a new key.
package shred

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/companin/companin/domain/es"
)

// Erased is the key of es.Metadata.Extra that reads "true" on an event whose
// personal fields were erased (and read as null).
const Erased = "erased"

// Store encrypts personal fields on their way into the inner store and
// decrypts them on their way out. It is safe for concurrent use if inner and
// keys are. It caches no keys between calls, so that a key destroyed by one
// process is gone for every other at once.
type Store struct {
	inner es.Store
	keys  KeyStore
	// redacted lists, per event type, fields that are personal today but
	// that older events may hold in the clear (see Redact).
	redacted map[string][]string
}

var (
	_ es.Store          = (*Store)(nil)
	_ es.FilteredWaiter = (*Store)(nil)
)

// Option configures a Store.
type Option func(*Store)

// Redact names, per event type, the fields that identify or describe the
// event's subject today. Events written before a field became personal
// carry it in the clear (their Metadata.Personal did not list it); once
// their subject is erased, readers get null for it too, as for a sealed
// field. The stored event is unchanged: the log is immutable.
func Redact(fields map[string][]string) Option {
	return func(s *Store) { s.redacted = fields }
}

// New wraps inner.
func New(inner es.Store, keys KeyStore, opts ...Option) *Store {
	s := &Store{inner: inner, keys: keys}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Erase destroys the subject's key: every personal field sealed with it reads
// as null from now on, everywhere.
func (s *Store) Erase(ctx context.Context, subject string) error {
	if subject == "" {
		return fmt.Errorf("shred: erase: empty subject")
	}
	return s.keys.Destroy(ctx, subject)
}

// Append implements es.Store: personal fields are sealed before inner sees them.
func (s *Store) Append(ctx context.Context, stream string, expected es.ExpectedVersion, events ...es.NewEvent) (es.AppendResult, error) {
	sealed := events // copied before the first change: the caller's slice stays as given
	copied := false
	for i, e := range events {
		if len(e.Metadata.Personal) == 0 {
			continue
		}
		if err := e.Validate(); err != nil {
			return es.AppendResult{}, err
		}
		data, err := s.seal(ctx, e)
		if err != nil {
			return es.AppendResult{}, err
		}
		if !copied {
			sealed, copied = append([]es.NewEvent(nil), events...), true
		}
		sealed[i].Data = data
	}
	return s.inner.Append(ctx, stream, expected, sealed...)
}

func (s *Store) seal(ctx context.Context, e es.NewEvent) (json.RawMessage, error) {
	if e.Metadata.Subject == "" {
		return nil, fmt.Errorf("%w: %s %s lists personal fields but no subject", es.ErrInvalidEvent, e.Type, e.ID)
	}
	fields, err := object(e.Data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %s: %v", es.ErrInvalidEvent, e.Type, e.ID, err)
	}
	if fields == nil {
		return e.Data, nil
	}
	var sl *sealer
	for _, name := range e.Metadata.Personal {
		v, ok := fields[name]
		if !ok {
			continue
		}
		if sl == nil {
			key, err := s.keys.Key(ctx, e.Metadata.Subject, true)
			if err != nil {
				return nil, fmt.Errorf("shred: key of %s: %w", e.Metadata.Subject, err)
			}
			if sl, err = newSealer(key); err != nil {
				return nil, err
			}
			clear(key)
		}
		if fields[name], err = sl.seal(e.ID, name, v); err != nil {
			return nil, fmt.Errorf("%w: %s %s: %v", es.ErrInvalidEvent, e.Type, e.ID, err)
		}
	}
	if sl == nil {
		return e.Data, nil
	}
	return json.Marshal(fields)
}

// personal lists the fields of e to open or erase: those it was sealed
// with, and those its type has as personal today.
func (s *Store) personal(e es.Event) []string {
	extra := s.redacted[e.Type]
	if len(extra) == 0 {
		return e.Metadata.Personal
	}
	names := append([]string(nil), e.Metadata.Personal...)
	for _, n := range extra {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names
}

// object reads Data as a JSON object; empty or null data has no fields.
func object(data json.RawMessage) (map[string]json.RawMessage, error) {
	if len(data) == 0 || string(data) == "null" {
		return nil, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return nil, fmt.Errorf("personal fields need a JSON object: %w", err)
	}
	return fields, nil
}

// ReadStream implements es.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, limit int) ([]es.Event, error) {
	events, err := s.inner.ReadStream(ctx, stream, from, limit)
	if err != nil {
		return nil, err
	}
	return s.open(ctx, events)
}

// ReadAll implements es.Store. Filters apply to what is not encrypted
// (type, stream, metadata), so they pass through to inner.
func (s *Store) ReadAll(ctx context.Context, after es.Position, limit int, f es.Filter) ([]es.Event, error) {
	events, err := s.inner.ReadAll(ctx, after, limit, f)
	if err != nil {
		return nil, err
	}
	return s.open(ctx, events)
}

// WaitForEvents implements es.Store.
func (s *Store) WaitForEvents(ctx context.Context, after es.Position) error {
	return s.inner.WaitForEvents(ctx, after)
}

// WaitForMatching implements es.FilteredWaiter: filters see only what is not
// encrypted, so the inner store waits for them.
func (s *Store) WaitForMatching(ctx context.Context, after es.Position, f es.Filter) error {
	return es.WaitFor(ctx, s.inner, after, f)
}

// open decrypts the personal fields of events, in place, fetching each
// subject's key once per call.
func (s *Store) open(ctx context.Context, events []es.Event) ([]es.Event, error) {
	sealers := map[string]subjectKey{}
	for i, e := range events {
		if e.Metadata.Subject == "" || (len(e.Metadata.Personal) == 0 && len(s.redacted[e.Type]) == 0) {
			continue
		}
		opened, err := s.openOne(ctx, e, sealers)
		if err != nil {
			return nil, fmt.Errorf("shred: %s v%d: %w", e.Stream, e.Version, err)
		}
		events[i] = opened
	}
	return events, nil
}

// subjectKey is what one read knows of a subject's key.
type subjectKey struct {
	sl *sealer // nil: no key
	// erased: the key was destroyed (a tombstone), not merely never made.
	erased bool
}

func (s *Store) openOne(ctx context.Context, e es.Event, sealers map[string]subjectKey) (es.Event, error) {
	fields, err := object(e.Data)
	if err != nil || fields == nil {
		// Not sealed by this package: leave it as the log has it.
		return e, nil
	}
	erased, changed := false, false
	for _, name := range s.personal(e) {
		v, ok := fields[name]
		if !ok || string(v) == "null" {
			continue
		}
		_, cerr := ciphertextOf(v)
		sealed := cerr == nil
		sk, known := sealers[e.Metadata.Subject]
		if !known {
			key, err := s.keys.Key(ctx, e.Metadata.Subject, false)
			switch {
			case errors.Is(err, ErrKeyNotFound):
				sk.erased = errors.Is(err, ErrErased)
			case err != nil:
				// Never read a failing key store as an erasure: a projection
				// would write the nulls for good.
				return e, fmt.Errorf("key of %s: %w", e.Metadata.Subject, err)
			default:
				sk.sl, err = newSealer(key)
				clear(key)
				if err != nil {
					return e, err
				}
			}
			sealers[e.Metadata.Subject] = sk
		}
		if !sealed && !sk.erased {
			continue // written in the clear, before shredding, of a subject not erased
		}
		changed = true
		if sk.sl != nil {
			if plain, err := sk.sl.open(e.ID, name, v); err == nil {
				fields[name] = plain
				continue
			}
			// Sealed with a destroyed key, the subject has a new one since.
		}
		fields[name] = json.RawMessage("null")
		erased = true
	}
	if !changed {
		return e, nil
	}
	data, err := json.Marshal(fields)
	if err != nil {
		return e, err
	}
	e.Data = data
	if erased {
		extra := maps.Clone(e.Metadata.Extra)
		if extra == nil {
			extra = map[string]string{}
		}
		extra[Erased] = "true"
		e.Metadata.Extra = extra
	}
	return e, nil
}
