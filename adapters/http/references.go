package httpapi

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

// referenceKeyName is the platform secret that keys the names of
// user_reference reservation streams (usercontext.References). Every
// instance reads the same one; losing it would make existing reservations
// unfindable, so it is kept with the data (backed up with it) and never
// rotated.
const referenceKeyName = "user_reference_key"

// referenceKeys caches the reservation naming key once read.
type referenceKeys struct {
	mu   sync.Mutex
	refs *usercontext.References
}

// references returns the keyed namer of reservation streams, creating the
// key on first use. Without a database (pure HTTP tests) streams are named
// the legacy, unkeyed way.
func (s *Server) references(ctx context.Context) (usercontext.References, error) {
	if s.deps.Pool == nil {
		return usercontext.References{}, nil
	}
	k := &s.refKeys
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.refs != nil {
		return *k.refs, nil
	}
	key, err := platformSecret(ctx, s.deps.Pool, referenceKeyName)
	if err != nil {
		return usercontext.References{}, err
	}
	refs := usercontext.NewReferences(key)
	k.refs = &refs
	return refs, nil
}

// platformSecret reads the named secret of platform_secrets, creating a
// random 32-byte one if there is none yet; concurrent first starts of
// several instances all end up with the one that was stored first.
func platformSecret(ctx context.Context, pool *pgxpool.Pool, name string) ([]byte, error) {
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
