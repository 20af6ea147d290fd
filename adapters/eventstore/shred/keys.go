package shred

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/companin/companin/domain"
)

// ErrKeyNotFound means a subject has no key: none was ever needed, or it was
// destroyed. Readers treat both alike: what was sealed with it is erased.
var ErrKeyNotFound = errors.New("subject key not found")

// ErrErased means a subject's key was destroyed: nothing can be sealed for
// that subject any more, so that data written around or after the erasure
// (a message racing the DELETE, a late reply) cannot become readable under a
// new key. It wraps domain.ErrConflict: the API answers 409.
var ErrErased = fmt.Errorf("the data subject was erased: %w", domain.ErrConflict)

// KeyStore keeps one key per data subject, outside the event log, so that
// destroying the key erases the subject's personal data from every event
// without touching the log.
type KeyStore interface {
	// Key returns the subject's key. With create, a subject without a key gets
	// a new random one (concurrent callers all get the same); without create,
	// such a subject fails with ErrKeyNotFound. A destroyed subject fails
	// with ErrErased, and without create also with ErrKeyNotFound.
	Key(ctx context.Context, subject string, create bool) ([]byte, error)
	// Destroy forgets the subject's key for good and remembers that it did
	// (a tombstone), so that no later Key(create) makes a new one. It is
	// idempotent, and also tombstones a subject that never had a key.
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
	mu        sync.Mutex
	keys      map[string][]byte
	destroyed map[string]bool
}

// NewMemoryKeys returns an empty key store.
func NewMemoryKeys() *MemoryKeys {
	return &MemoryKeys{keys: map[string][]byte{}, destroyed: map[string]bool{}}
}

// Key implements KeyStore. It returns a copy, so that Destroy can wipe the original.
func (m *MemoryKeys) Key(_ context.Context, subject string, create bool) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[subject]
	if !ok {
		if create && m.destroyed[subject] {
			return nil, fmt.Errorf("shred: subject %q: %w", subject, ErrErased)
		}
		if !create && m.destroyed[subject] {
			return nil, fmt.Errorf("shred: subject %q: %w (%w)", subject, ErrKeyNotFound, ErrErased)
		}
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
	m.destroyed[subject] = true
	return nil
}
