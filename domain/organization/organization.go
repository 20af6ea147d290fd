// Package organization is the tenant: a company using Companin, the origins
// its widget may run on, and the API credentials it calls with. Everything
// else in Companin belongs to exactly one organization.
package organization

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
)

// Errors of this package; they wrap the kinds of package domain.
var (
	ErrInvalidName   = fmt.Errorf("organization name must be 1 to %d characters: %w", MaxNameLength, domain.ErrInvalid)
	ErrInvalidOrigin = fmt.Errorf("allowed origin must be scheme://host[:port], e.g. https://shop.example.com: %w", domain.ErrInvalid)
	ErrAlreadyExists = fmt.Errorf("organization already exists: %w", domain.ErrConflict)
	ErrNotFound      = fmt.Errorf("organization not found: %w", domain.ErrNotFound)
)

// MaxNameLength bounds an organization's name.
const MaxNameLength = 200

// Event types: stable names, never renamed.
const (
	OrganizationCreatedType  = "OrganizationCreated"
	CredentialsIssuedType    = "CredentialsIssued"
	CredentialsRevokedType   = "CredentialsRevoked"
	AllowedOriginAddedType   = "AllowedOriginAdded"
	AllowedOriginRemovedType = "AllowedOriginRemoved"
)

// OrganizationCreated starts an organization's stream.
type OrganizationCreated struct {
	OrganizationID uuid.UUID `json:"organization_id"`
	Name           string    `json:"name"`
	AllowedOrigins []string  `json:"allowed_origins"`
	CreatedAt      time.Time `json:"created_at"`
}

// CredentialsIssued records an API key pair. Only a hash of the secret is
// recorded: the secret is shown once to whoever issued it and never stored.
type CredentialsIssued struct {
	OrganizationID uuid.UUID `json:"organization_id"`
	ClientID       string    `json:"client_id"`
	// SecretHash is hex SHA-256 of the secret. The secret is 256 random bits,
	// so a fast hash is enough; a slow password hash would cost every request.
	SecretHash string    `json:"secret_hash"`
	IssuedAt   time.Time `json:"issued_at"`
}

// CredentialsRevoked records that an API key pair no longer authenticates
// anything, neither the secret nor widget tokens issued for its client id.
type CredentialsRevoked struct {
	OrganizationID uuid.UUID `json:"organization_id"`
	ClientID       string    `json:"client_id"`
	RevokedAt      time.Time `json:"revoked_at"`
}

// AllowedOriginAdded records a browser origin the widget may now run on.
type AllowedOriginAdded struct {
	OrganizationID uuid.UUID `json:"organization_id"`
	Origin         string    `json:"origin"`
	At             time.Time `json:"at"`
}

// AllowedOriginRemoved records a browser origin the widget may no longer run
// on. Removing the last one allows every origin again, as an organization
// created without any.
type AllowedOriginRemoved struct {
	OrganizationID uuid.UUID `json:"organization_id"`
	Origin         string    `json:"origin"`
	At             time.Time `json:"at"`
}

// ErrCredentialsNotFound: the organization has no credentials with this client id.
var ErrCredentialsNotFound = fmt.Errorf("no credentials with this client id in the organization: %w", domain.ErrNotFound)

// StreamName is the stream of organization id.
func StreamName(id uuid.UUID) string { return "organization-" + id.String() }

// Name is a validated organization name.
type Name struct{ s string }

// ParseName trims s and checks its length.
func ParseName(s string) (Name, error) {
	s = strings.TrimSpace(s)
	if s == "" || utf8.RuneCountInString(s) > MaxNameLength {
		return Name{}, ErrInvalidName
	}
	return Name{s: s}, nil
}

func (n Name) String() string { return n.s }

// ParseOrigin normalizes a browser origin ("https://Shop.example.com/" ->
// "https://shop.example.com") as browsers send it in the Origin header.
func ParseOrigin(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q: %w", s, ErrInvalidOrigin)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// HashSecret is how a client secret is stored and compared.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return fmt.Sprintf("%x", sum)
}

// SecretMatches compares a presented secret with a stored hash in constant time.
func SecretMatches(secret, hash string) bool {
	return subtle.ConstantTimeCompare([]byte(HashSecret(secret)), []byte(hash)) == 1
}

// Organization is the aggregate. Its invariants are few: a valid name and
// origins, and client ids that are unique within it.
type Organization struct {
	id       uuid.UUID
	version  uint64
	created  bool
	name     string
	origins  []string
	clients  map[string]bool // client id -> active (false: revoked)
	recorded []es.NewEvent
}

// New starts an organization.
func New(id uuid.UUID, name Name, allowedOrigins []string, at time.Time) (*Organization, error) {
	if name.s == "" {
		return nil, ErrInvalidName
	}
	origins := make([]string, 0, len(allowedOrigins))
	for _, o := range allowedOrigins {
		norm, err := ParseOrigin(o)
		if err != nil {
			return nil, err
		}
		if !contains(origins, norm) {
			origins = append(origins, norm)
		}
	}
	o := &Organization{id: id}
	o.record(OrganizationCreatedType, OrganizationCreated{OrganizationID: id, Name: name.s, AllowedOrigins: origins, CreatedAt: at.UTC()})
	return o, nil
}

// IssueCredentials records a new API key pair; secretHash is HashSecret(secret).
func (o *Organization) IssueCredentials(clientID, secretHash string, at time.Time) error {
	if !o.created {
		return ErrNotFound
	}
	if clientID == "" || secretHash == "" {
		return fmt.Errorf("credentials need a client id and a secret hash: %w", domain.ErrInvalid)
	}
	if _, issued := o.clients[clientID]; issued {
		return fmt.Errorf("client id %s already issued: %w", clientID, domain.ErrConflict)
	}
	o.record(CredentialsIssuedType, CredentialsIssued{OrganizationID: o.id, ClientID: clientID, SecretHash: secretHash, IssuedAt: at.UTC()})
	return nil
}

// RevokeCredentials stops clientID from authenticating. Revoking a revoked
// client records nothing: the command can be retried.
func (o *Organization) RevokeCredentials(clientID string, at time.Time) error {
	active, ok := o.clients[clientID]
	if !ok {
		return fmt.Errorf("%s: %w", clientID, ErrCredentialsNotFound)
	}
	if active {
		o.record(CredentialsRevokedType, CredentialsRevoked{OrganizationID: o.id, ClientID: clientID, RevokedAt: at.UTC()})
	}
	return nil
}

// AddAllowedOrigin lets the widget run on origin; an origin already listed
// records nothing.
func (o *Organization) AddAllowedOrigin(origin string, at time.Time) error {
	norm, err := ParseOrigin(origin)
	if err != nil {
		return err
	}
	if !contains(o.origins, norm) {
		o.record(AllowedOriginAddedType, AllowedOriginAdded{OrganizationID: o.id, Origin: norm, At: at.UTC()})
	}
	return nil
}

// RemoveAllowedOrigin stops the widget from running on origin; an origin not
// listed records nothing.
func (o *Organization) RemoveAllowedOrigin(origin string, at time.Time) error {
	norm, err := ParseOrigin(origin)
	if err != nil {
		return err
	}
	if contains(o.origins, norm) {
		o.record(AllowedOriginRemovedType, AllowedOriginRemoved{OrganizationID: o.id, Origin: norm, At: at.UTC()})
	}
	return nil
}

// Credential is a client id of the organization and whether it still works.
type Credential struct {
	ClientID string
	Active   bool
}

// Credentials lists the organization's client ids in no particular order.
func (o *Organization) Credentials() []Credential {
	out := make([]Credential, 0, len(o.clients))
	for id, active := range o.clients {
		out = append(out, Credential{ClientID: id, Active: active})
	}
	return out
}

// Load rebuilds an organization from its stream.
func Load(events []es.Event) (*Organization, error) {
	o := &Organization{}
	for _, e := range events {
		if err := o.apply(e.Type, e.Data); err != nil {
			return nil, err
		}
		o.version = e.Version
	}
	if !o.created {
		return nil, ErrNotFound
	}
	return o, nil
}

// ID, Name, AllowedOrigins and Version describe the organization.
func (o *Organization) ID() uuid.UUID            { return o.id }
func (o *Organization) Name() string             { return o.name }
func (o *Organization) AllowedOrigins() []string { return append([]string(nil), o.origins...) }

// Version is the stream version the aggregate was loaded at: the expected
// version for appending its recorded events.
func (o *Organization) Version() uint64 { return o.version }

// Recorded returns the events recorded since loading, to be appended, and forgets them.
func (o *Organization) Recorded() []es.NewEvent {
	r := o.recorded
	o.recorded = nil
	return r
}

func (o *Organization) record(typ string, payload any) {
	data, err := json.Marshal(payload)
	if err != nil {
		panic(fmt.Sprintf("organization: marshal %s: %v", typ, err)) // our own structs always marshal
	}
	if err := o.apply(typ, data); err != nil {
		panic(fmt.Sprintf("organization: apply %s: %v", typ, err))
	}
	o.recorded = append(o.recorded, es.NewEvent{ID: uuid.New(), Type: typ, SchemaVersion: 1, Data: data})
}

func (o *Organization) apply(typ string, data json.RawMessage) error {
	switch typ {
	case OrganizationCreatedType:
		var e OrganizationCreated
		if err := json.Unmarshal(data, &e); err != nil {
			return fmt.Errorf("decode %s: %w", typ, err)
		}
		o.id, o.name, o.origins, o.created = e.OrganizationID, e.Name, e.AllowedOrigins, true
		o.clients = map[string]bool{}
	case CredentialsIssuedType:
		var e CredentialsIssued
		if err := json.Unmarshal(data, &e); err != nil {
			return fmt.Errorf("decode %s: %w", typ, err)
		}
		o.clients[e.ClientID] = true
	case CredentialsRevokedType:
		var e CredentialsRevoked
		if err := json.Unmarshal(data, &e); err != nil {
			return fmt.Errorf("decode %s: %w", typ, err)
		}
		o.clients[e.ClientID] = false
	case AllowedOriginAddedType:
		var e AllowedOriginAdded
		if err := json.Unmarshal(data, &e); err != nil {
			return fmt.Errorf("decode %s: %w", typ, err)
		}
		if !contains(o.origins, e.Origin) {
			o.origins = append(o.origins, e.Origin)
		}
	case AllowedOriginRemovedType:
		var e AllowedOriginRemoved
		if err := json.Unmarshal(data, &e); err != nil {
			return fmt.Errorf("decode %s: %w", typ, err)
		}
		o.origins = slices.DeleteFunc(o.origins, func(x string) bool { return x == e.Origin })
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
