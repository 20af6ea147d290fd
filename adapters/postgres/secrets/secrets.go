// Package secrets keeps the platform's own secrets in PostgreSQL
// (platform_secrets): keys every instance must share and that live as long as
// the data, such as the widget-token signing key and the key that names
// user_reference reservation streams.
package secrets

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/companin/companin/domain/usercontext"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Get reads the named secret, creating a random 32-byte one if there is none
// yet; concurrent first starts of several instances all end up with the one
// that was stored first.
func Get(ctx context.Context, pool *pgxpool.Pool, name string) ([]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("platform secret %s: %w", name, err)
	}
	var (
		value []byte
		err   error
	)
	// An instance racing us may commit its secret after our statement's
	// snapshot was taken: then neither branch sees a row, and the second try does.
	for range 2 {
		err = pool.QueryRow(ctx, `
			WITH ins AS (
				INSERT INTO platform_secrets (name, value) VALUES ($1, $2)
				ON CONFLICT (name) DO NOTHING RETURNING value)
			SELECT value FROM ins UNION ALL SELECT value FROM platform_secrets WHERE name = $1
			LIMIT 1`, name, fresh).Scan(&value)
		if !errors.Is(err, pgx.ErrNoRows) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("platform secret %s: %w", name, err)
	}
	return value, nil
}

// referenceKeyName is the secret that keys the names of user_reference
// reservation streams (usercontext.References). Losing it would make
// existing reservations unfindable, so it is kept with the data (backed up
// with it) and never rotated.
const referenceKeyName = "user_reference_key"

// ReferenceKeys gives the keyed namer of reservation streams
// (commands.ReferenceKeys), reading the key once, on first use.
type ReferenceKeys struct {
	pool *pgxpool.Pool
	mu   sync.Mutex
	refs *usercontext.References
}

// NewReferenceKeys reads the key from pool; a nil pool names streams the
// legacy, unkeyed way (tests of pure HTTP behaviour).
func NewReferenceKeys(pool *pgxpool.Pool) *ReferenceKeys { return &ReferenceKeys{pool: pool} }

// References returns the namer, creating the key on first use.
func (k *ReferenceKeys) References(ctx context.Context) (usercontext.References, error) {
	if k.pool == nil {
		return usercontext.References{}, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.refs != nil {
		return *k.refs, nil
	}
	key, err := Get(ctx, k.pool, referenceKeyName)
	if err != nil {
		return usercontext.References{}, err
	}
	refs := usercontext.NewReferences(key)
	k.refs = &refs
	return refs, nil
}
