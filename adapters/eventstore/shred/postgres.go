package shred

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresKeys is the KeyStore of production: table subject_keys (migration
// 00040), shared by every process, with no key cached in any of them.
//
// With a master key, new keys are stored sealed with it (AES-256-GCM, bound
// to the subject), so that a copy of the database alone reveals no key. Keys
// stored before a master key was configured stay readable as they are.
//
// Destroy deletes the row and then rewrites the table with VACUUM FULL: a
// plain DELETE, even followed by VACUUM, leaves the key's bytes in the
// table's pages. What the database cannot take back is outside its reach:
// WAL segments not yet recycled, WAL archives and backups keep the key until
// they expire, and the file system may keep the old file's blocks. Keep
// backup retention within the erasure deadline you promise.
type PostgresKeys struct {
	pool   *pgxpool.Pool
	master cipher.AEAD // nil: keys are stored as they are
}

// NewPostgresKeys returns a key store on pool. masterKey is optional (nil or
// empty: keys are not wrapped); otherwise it must be KeySize bytes, see
// ParseMasterKey.
func NewPostgresKeys(pool *pgxpool.Pool, masterKey []byte) (*PostgresKeys, error) {
	k := &PostgresKeys{pool: pool}
	if len(masterKey) == 0 {
		return k, nil
	}
	if len(masterKey) != KeySize {
		return nil, fmt.Errorf("shred: master key of %d bytes, want %d", len(masterKey), KeySize)
	}
	block, err := aes.NewCipher(masterKey)
	if err != nil {
		return nil, fmt.Errorf("shred: master key: %w", err)
	}
	if k.master, err = cipher.NewGCM(block); err != nil {
		return nil, fmt.Errorf("shred: master key: %w", err)
	}
	return k, nil
}

// ParseMasterKey reads COMPANIN_MASTER_KEY: 32 bytes as 64 hex digits or as
// base64 (standard or URL alphabet, padded or not). An empty string is no
// master key (nil, nil). Generate one with `openssl rand -base64 32`.
func ParseMasterKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if len(s) == 2*KeySize {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != KeySize {
				return nil, fmt.Errorf("shred: master key of %d bytes, want %d", len(b), KeySize)
			}
			return b, nil
		}
	}
	return nil, errors.New("shred: master key is neither 64 hex digits nor base64 of 32 bytes")
}

func wrapAD(subject string) []byte { return []byte("companin/shred/v1/subject-key\x00" + subject) }

func (k *PostgresKeys) wrap(subject string, key []byte) ([]byte, error) {
	nonce := make([]byte, k.master.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("shred: wrap key: %w", err)
	}
	return k.master.Seal(nonce, nonce, key, wrapAD(subject)), nil
}

func (k *PostgresKeys) unwrap(subject string, secret []byte, wrapped bool) ([]byte, error) {
	if !wrapped {
		return secret, nil
	}
	if k.master == nil {
		return nil, fmt.Errorf("shred: key of %s is wrapped with a master key, and none is configured (COMPANIN_MASTER_KEY)", subject)
	}
	n := k.master.NonceSize()
	if len(secret) < n {
		return nil, fmt.Errorf("shred: key of %s: wrapped key too short", subject)
	}
	key, err := k.master.Open(nil, secret[:n], secret[n:], wrapAD(subject))
	if err != nil {
		return nil, fmt.Errorf("shred: key of %s does not open with the configured master key: %w", subject, err)
	}
	return key, nil
}

// Key implements KeyStore. Concurrent creators race on the primary key;
// every one of them returns the row that won.
func (k *PostgresKeys) Key(ctx context.Context, subject string, create bool) ([]byte, error) {
	key, err := k.load(ctx, subject)
	if !errors.Is(err, ErrKeyNotFound) || !create {
		return key, err
	}
	fresh, err := newKey()
	if err != nil {
		return nil, err
	}
	secret, wrapped := fresh, false
	if k.master != nil {
		if secret, err = k.wrap(subject, fresh); err != nil {
			return nil, err
		}
		wrapped = true
	}
	if _, err := k.pool.Exec(ctx,
		`INSERT INTO subject_keys (subject, secret, wrapped) VALUES ($1, $2, $3) ON CONFLICT (subject) DO NOTHING`,
		subject, secret, wrapped); err != nil {
		return nil, fmt.Errorf("shred: store key of %s: %w", subject, err)
	}
	return k.load(ctx, subject)
}

func (k *PostgresKeys) load(ctx context.Context, subject string) ([]byte, error) {
	var (
		secret  []byte
		wrapped bool
	)
	err := k.pool.QueryRow(ctx, `SELECT secret, wrapped FROM subject_keys WHERE subject = $1`, subject).Scan(&secret, &wrapped)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("shred: subject %q: %w", subject, ErrKeyNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("shred: load key of %s: %w", subject, err)
	}
	return k.unwrap(subject, secret, wrapped)
}

// vacuumLockTimeout bounds how long Destroy waits for the table lock that
// VACUUM FULL needs, so that one erasure stuck behind a long transaction does
// not queue every key lookup behind it. Destroy then fails, and a retry
// finishes the job.
const vacuumLockTimeout = "5s"

// Destroy implements KeyStore: it deletes the row, then rewrites the table
// so that the key's bytes leave its pages (see PostgresKeys). It is
// idempotent; retry it when it fails.
func (k *PostgresKeys) Destroy(ctx context.Context, subject string) error {
	if _, err := k.pool.Exec(ctx, `DELETE FROM subject_keys WHERE subject = $1`, subject); err != nil {
		return fmt.Errorf("shred: destroy key of %s: %w", subject, err)
	}
	conn, err := k.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("shred: destroy key of %s: %w", subject, err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET lock_timeout = '`+vacuumLockTimeout+`'`); err != nil {
		return fmt.Errorf("shred: destroy key of %s: %w", subject, err)
	}
	_, err = conn.Exec(ctx, `VACUUM FULL subject_keys`)
	if _, rerr := conn.Exec(context.WithoutCancel(ctx), `RESET lock_timeout`); rerr != nil {
		// A connection whose settings are unknown must not go back to the pool.
		_ = conn.Conn().Close(context.WithoutCancel(ctx))
	}
	if err != nil {
		return fmt.Errorf("shred: destroy key of %s: rewrite subject_keys: %w", subject, err)
	}
	return nil
}
