package shred

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
)

// ErrKeyNotFound means a subject has no key: none was ever needed, or it was
// destroyed. Readers treat both alike: what was sealed with it is erased.
var ErrKeyNotFound = errors.New("subject key not found")

// KeyStore keeps one key per data subject, outside the event log, so that
// destroying the key erases the subject's personal data from every event
// without touching the log.
type KeyStore interface {
	// Key returns the subject's key. With create, a subject without a key gets
	// a new random one (concurrent callers all get the same); without create,
	// such a subject fails with ErrKeyNotFound.
	Key(ctx context.Context, subject string, create bool) ([]byte, error)
	// Destroy forgets the subject's key for good. It is idempotent. A later
	// Key(create) makes a new key, which cannot open what the old one sealed.
	Destroy(ctx context.Context, subject string) error
}

// newKey makes a random key.
func newKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("shred: new key: %w", err)
	}
	return k, nil
}

// MemoryKeys is a KeyStore in memory, for unit tests and the in-memory event
// store. It is safe for concurrent use.
type MemoryKeys struct {
	mu   sync.Mutex
	keys map[string][]byte
}

// NewMemoryKeys returns an empty key store.
func NewMemoryKeys() *MemoryKeys { return &MemoryKeys{keys: map[string][]byte{}} }

// Key implements KeyStore. It returns a copy, so that Destroy can wipe the original.
func (m *MemoryKeys) Key(_ context.Context, subject string, create bool) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[subject]
	if !ok {
		if !create {
			return nil, fmt.Errorf("shred: subject %q: %w", subject, ErrKeyNotFound)
		}
		var err error
		if k, err = newKey(); err != nil {
			return nil, err
		}
		m.keys[subject] = k
	}
	return append([]byte(nil), k...), nil
}

// Destroy implements KeyStore.
func (m *MemoryKeys) Destroy(_ context.Context, subject string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.keys[subject]; ok {
		clear(k)
		delete(m.keys, subject)
	}
	return nil
}
