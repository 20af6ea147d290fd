package commands

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/organization"
	"github.com/google/uuid"
)

// CreateOrganization registers a tenant and issues its first API credentials
// (`companin org create`).
type CreateOrganization struct {
	Name           string
	AllowedOrigins []string
}

// CreatedOrganization is shown once: the client secret is not stored, only its hash.
type CreatedOrganization struct {
	OrganizationID uuid.UUID `json:"organization_id"`
	ClientID       string    `json:"client_id"`
	ClientSecret   string    `json:"client_secret"`
	// Position is where the events landed in the log, for waiting on projections.
	Position es.Position `json:"-"`
}

// CreateOrganizationHandler appends the organization's first events.
type CreateOrganizationHandler struct {
	store es.Store
	now   func() time.Time
}

// NewCreateOrganizationHandler writes to store.
func NewCreateOrganizationHandler(store es.Store) CreateOrganizationHandler {
	return CreateOrganizationHandler{store: store, now: time.Now}
}

// Handle creates the organization and its credentials in one append.
func (h CreateOrganizationHandler) Handle(ctx context.Context, cmd CreateOrganization) (CreatedOrganization, error) {
	name, err := organization.ParseName(cmd.Name)
	if err != nil {
		return CreatedOrganization{}, err
	}
	id := uuid.New()
	now := h.now()
	org, err := organization.New(id, name, cmd.AllowedOrigins, now)
	if err != nil {
		return CreatedOrganization{}, err
	}
	clientID, secret, err := NewClientCredentials()
	if err != nil {
		return CreatedOrganization{}, err
	}
	if err := org.IssueCredentials(clientID, organization.HashSecret(secret), now); err != nil {
		return CreatedOrganization{}, err
	}
	md := es.MetadataFrom(ctx)
	md.OrganizationID = id.String()
	if md.Actor == "" {
		md.Actor = "cli"
	}
	events := org.Recorded()
	for i := range events {
		events[i].Metadata = md
	}
	res, err := h.store.Append(ctx, organization.StreamName(id), es.NoStream, events...)
	if err != nil {
		return CreatedOrganization{}, fmt.Errorf("create organization: %w", err)
	}
	return CreatedOrganization{OrganizationID: id, ClientID: clientID, ClientSecret: secret, Position: res.Position}, nil
}

// NewClientCredentials makes a client id (128 random bits, public) and a
// client secret (256 random bits, shown once).
func NewClientCredentials() (clientID, secret string, err error) {
	var id [16]byte
	var sec [32]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", "", fmt.Errorf("client id: %w", err)
	}
	if _, err := rand.Read(sec[:]); err != nil {
		return "", "", fmt.Errorf("client secret: %w", err)
	}
	return "ci_" + hex.EncodeToString(id[:]), "cs_" + base64.RawURLEncoding.EncodeToString(sec[:]), nil
}
