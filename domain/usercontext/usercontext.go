// Package usercontext is what an organization tells us about one of its
// users (traits such as name, plan, preferences), keyed by the organization's
// own user_reference, so that answers can be personal. Traits are personal
// data: erasure destroys the key that encrypts them (crypto-shredding).
package usercontext

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/companin/companin/domain"
	"github.com/google/uuid"
)

// Kind is the stream prefix: usercontext-<uuid>.
const Kind = "usercontext"

// ReferenceKind is the prefix of reservation streams, one per (organization,
// user_reference): usercontextref-<hex>, see References. Appending its first
// event with an expected version is what makes a reference unique within an
// organization.
const ReferenceKind = "usercontextref"

// Event type names: stored, never renamed.
const (
	TypeCreated       = "UserContextCreated"
	TypeTraitsChanged = "UserContextTraitsChanged"
	TypeErased        = "UserContextErased"
	TypeReserved      = "UserReferenceReserved"
	TypeReleased      = "UserReferenceReleased"
)

var (
	// ErrNotFound: no such user context (or erased, or another organization's).
	ErrNotFound = fmt.Errorf("user context not found: %w", domain.ErrNotFound)
	// ErrReferenceTaken: the user_reference belongs to another context.
	ErrReferenceTaken = fmt.Errorf("user_reference already taken: %w", domain.ErrConflict)
)

// MaxReference bounds user_reference, in characters.
const MaxReference = 255

// ParseReference validates a user_reference.
func ParseReference(s string) (string, error) {
	return domain.Text("user_reference", s, MaxReference, true)
}

// ParseTraits validates a traits object (a JSON merge patch, RFC 7386).
func ParseTraits(m map[string]any) (map[string]any, error) {
	return domain.Object("traits", m)
}

// References names reservation streams. Stream names are not erasable (they
// stay in the log, its exports and backups), and a user_reference is often
// guessable (an e-mail address): the name is therefore an HMAC-SHA256 of the
// organization and the reference under a key kept outside the log, so that
// nobody without the key can test a guess against the names.
//
// Reservations made before the key existed live under the unkeyed
// LegacyReferenceStream name; readers fold that stream before the keyed one
// (see Streams) and every new event goes to the keyed one, so those
// reservations keep protecting uniqueness.
type References struct{ key []byte }

// NewReferences names streams under key (at least 32 bytes in production).
// The zero References has no key and names streams the legacy way: for
// tests and tools that never see a key.
func NewReferences(key []byte) References { return References{key: key} }

// Stream is the stream every new reservation event of ref goes to.
func (r References) Stream(org, ref string) string {
	if len(r.key) == 0 {
		return LegacyReferenceStream(org, ref)
	}
	m := hmac.New(sha256.New, r.key)
	m.Write([]byte("companin/usercontextref/v2\x00" + org + "\x00" + ref))
	return ReferenceKind + "-" + hex.EncodeToString(m.Sum(nil))
}

// Streams lists the streams that hold ref's reservation, oldest naming
// first: the legacy one, then the keyed one (just one without a key).
func (r References) Streams(org, ref string) []string {
	if len(r.key) == 0 {
		return []string{LegacyReferenceStream(org, ref)}
	}
	return []string{LegacyReferenceStream(org, ref), r.Stream(org, ref)}
}

// LegacyReferenceStream is the unkeyed name of reservations made before
// References had a key: sha256 of org|ref. Never used for new events.
func LegacyReferenceStream(org, ref string) string {
	sum := sha256.Sum256([]byte(org + "|" + ref))
	return ReferenceKind + "-" + hex.EncodeToString(sum[:])
}

// Created (UserContextCreated) is a new person's context. Reference and traits
// are personal (encrypted with the context's key; null once erased).
type Created struct {
	UserContextID uuid.UUID      `json:"user_context_id"`
	UserReference string         `json:"user_reference"`
	Traits        map[string]any `json:"traits"`
	CreatedAt     time.Time      `json:"created_at"`
}

// TraitsChanged (UserContextTraitsChanged) carries the whole traits after a
// merge, so readers replace rather than merge. Personal, like Created's.
type TraitsChanged struct {
	UserContextID uuid.UUID      `json:"user_context_id"`
	Traits        map[string]any `json:"traits"`
	ChangedAt     time.Time      `json:"changed_at"`
}

// Erased (UserContextErased) records who erased the person and when. Its key
// is destroyed: every personal field of this subject reads as null afterwards.
type Erased struct {
	UserContextID uuid.UUID `json:"user_context_id"`
	ErasedBy      string    `json:"erased_by"`
	ErasedAt      time.Time `json:"erased_at"`
}

// Reserved (UserReferenceReserved) gives a reference to a context.
type Reserved struct {
	UserContextID uuid.UUID `json:"user_context_id"`
}

// Released (UserReferenceReleased) frees a reference after erasure.
type Released struct {
	UserContextID uuid.UUID `json:"user_context_id"`
}

func (Created) EventType() string       { return TypeCreated }
func (TraitsChanged) EventType() string { return TypeTraitsChanged }
func (Erased) EventType() string        { return TypeErased }
func (Reserved) EventType() string      { return TypeReserved }
func (Released) EventType() string      { return TypeReleased }

// PersonalData marks traits and the reference (often an e-mail address or
// a customer number) as the context's personal data.
func (e Created) PersonalData() (string, []string) {
	return e.UserContextID.String(), []string{"user_reference", "traits"}
}

// PersonalData marks traits as the context's personal data.
func (e TraitsChanged) PersonalData() (string, []string) {
	return e.UserContextID.String(), []string{"traits"}
}

var events = domain.Events(Created{}, TraitsChanged{}, Erased{}, Reserved{}, Released{})

// Decode turns a stored event into a user context or reservation event; nil
// for other types.
func Decode(typ string, data []byte) (domain.Event, error) { return events.Decode(typ, data) }

// UserContext is the aggregate.
type UserContext struct {
	domain.Recorder
	id        uuid.UUID
	created   bool
	erased    bool
	erasedAt  time.Time
	reference string
	traits    map[string]any
}

// New returns a context with id and no history.
func New(id uuid.UUID) *UserContext { return &UserContext{id: id} }

// ID is the context's id.
func (u *UserContext) ID() uuid.UUID { return u.id }

// Exists tells whether the context was created and not erased.
func (u *UserContext) Exists() bool { return u.created && !u.erased }

// Created tells whether the context was ever created (erased or not).
func (u *UserContext) Created() bool { return u.created }

// ErasedAt is when the person was erased; zero if not.
func (u *UserContext) ErasedAt() time.Time { return u.erasedAt }

// Reference is the organization's user_reference.
func (u *UserContext) Reference() string { return u.reference }

// Traits are the person's current traits (a copy; empty once erased).
func (u *UserContext) Traits() map[string]any { return clone(u.traits) }

// Save creates the context with traits, or merges traits into the existing
// ones (RFC 7386: null removes a key, objects merge). It reports whether the
// context was created. A change that changes nothing records nothing.
func (u *UserContext) Save(ref string, traits map[string]any, at time.Time) (created bool, err error) {
	if u.erased {
		return false, ErrNotFound
	}
	if !u.created {
		u.record(Created{UserContextID: u.id, UserReference: ref, Traits: MergePatch(map[string]any{}, traits), CreatedAt: at.UTC()})
		return true, nil
	}
	if ref != u.reference {
		return false, ErrReferenceTaken
	}
	return false, u.Merge(traits, at)
}

// Merge merges traits into the existing ones (RFC 7386).
func (u *UserContext) Merge(traits map[string]any, at time.Time) error {
	if !u.Exists() {
		return ErrNotFound
	}
	next := MergePatch(clone(u.traits), traits)
	if reflect.DeepEqual(normalize(next), normalize(u.traits)) {
		return nil
	}
	u.record(TraitsChanged{UserContextID: u.id, Traits: next, ChangedAt: at.UTC()})
	return nil
}

// Erase forgets the person: by is the actor who asked for it.
func (u *UserContext) Erase(by string, at time.Time) error {
	if !u.Exists() {
		return ErrNotFound
	}
	u.record(Erased{UserContextID: u.id, ErasedBy: by, ErasedAt: at.UTC()})
	return nil
}

func (u *UserContext) record(e domain.Event) {
	u.Apply(e)
	u.Record(e)
}

// Apply changes state by one event, new or replayed. Traits of shredded
// events arrive as nil and are taken as empty.
func (u *UserContext) Apply(e domain.Event) {
	switch e := e.(type) {
	case Created:
		u.created, u.reference, u.traits = true, e.UserReference, orEmpty(e.Traits)
	case TraitsChanged:
		u.traits = orEmpty(e.Traits)
	case Erased:
		u.erased, u.erasedAt, u.traits = true, e.ErasedAt, map[string]any{}
	}
}

// Reservation is the state of one (organization, user_reference) reservation stream.
type Reservation struct {
	domain.Recorder
	holder   uuid.UUID
	released uuid.UUID
}

// Holder is the context holding the reference (uuid.Nil: free).
func (r *Reservation) Holder() uuid.UUID { return r.holder }

// Released is the last context that gave the reference up (by erasure),
// uuid.Nil if none: a retried DELETE by reference finds its erasure.
func (r *Reservation) Released() uuid.UUID { return r.released }

// Reserve gives the reference to id, if free; it returns the holder afterwards.
func (r *Reservation) Reserve(id uuid.UUID) uuid.UUID {
	if r.holder == uuid.Nil {
		r.Record(Reserved{UserContextID: id})
		r.holder = id
	}
	return r.holder
}

// Release frees the reference held by id.
func (r *Reservation) Release(id uuid.UUID) {
	if r.holder == id && id != uuid.Nil {
		r.Record(Released{UserContextID: id})
		r.holder, r.released = uuid.Nil, id
	}
}

// Apply changes state by one event.
func (r *Reservation) Apply(e domain.Event) {
	switch e := e.(type) {
	case Reserved:
		r.holder = e.UserContextID
	case Released:
		if r.holder == e.UserContextID {
			r.holder, r.released = uuid.Nil, e.UserContextID
		}
	}
}

// MergePatch applies patch to target as RFC 7386 JSON merge patch and returns
// target: null values remove keys, objects merge recursively, anything else replaces.
func MergePatch(target, patch map[string]any) map[string]any {
	if target == nil {
		target = map[string]any{}
	}
	for k, v := range patch {
		switch pv := v.(type) {
		case nil:
			delete(target, k)
		case map[string]any:
			tv, _ := target[k].(map[string]any)
			target[k] = MergePatch(clone(tv), pv)
		default:
			target[k] = v
		}
	}
	return target
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			v = clone(sub)
		}
		out[k] = v
	}
	return out
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// normalize round-trips through JSON so that numbers compare alike whether
// they came from a client or from a stored event.
func normalize(m map[string]any) any {
	b, _ := json.Marshal(m)
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}
