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
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

// rewriteAttempts bounds how often Destroy rewrites the table while running
// transactions still see the deleted row (about a minute with the back-off).
const rewriteAttempts = 35

// recentlyDead reads VACUUM VERBOSE's count of deleted rows that some running
// transaction may still see, and that the rewrite therefore had to copy.
var recentlyDead = regexp.MustCompile(`(\d+) dead row versions cannot be removed yet`)

// Destroy implements KeyStore: it deletes the row, then rewrites the table
// until the rewrite copied no deleted row, so that the key's bytes leave its
// pages (see PostgresKeys). A transaction that began before the delete may
// still see the row, and the rewrite must keep it for that transaction:
// Destroy waits for such transactions, with back-off, up to ctx's end or
// rewriteAttempts, and then fails. It is idempotent; retry it when it fails.
//
// The check reads the server's English VACUUM VERBOSE report; on a server
// with other lc_messages it cannot tell, and one rewrite is all it does.
func (k *PostgresKeys) Destroy(ctx context.Context, subject string) error {
	if _, err := k.pool.Exec(ctx, `DELETE FROM subject_keys WHERE subject = $1`, subject); err != nil {
		return fmt.Errorf("shred: destroy key of %s: %w", subject, err)
	}
	if err := k.rewrite(ctx); err != nil {
		return fmt.Errorf("shred: destroy key of %s: rewrite subject_keys: %w", subject, err)
	}
	return nil
}

func (k *PostgresKeys) rewrite(ctx context.Context) error {
	// A connection of its own, to read VACUUM's report (notices are
	// configured per connection).
	cfg := k.pool.Config().ConnConfig.Copy()
	kept := 0
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if m := recentlyDead.FindStringSubmatch(n.Detail); m != nil {
			kept, _ = strconv.Atoi(m[1])
		}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `SET lock_timeout = '`+vacuumLockTimeout+`'`); err != nil {
		return err
	}
	delay := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		kept = 0
		if _, err := conn.Exec(ctx, `VACUUM (FULL, VERBOSE) subject_keys`); err != nil {
			return err
		}
		if kept == 0 {
			return nil
		}
		if attempt == rewriteAttempts {
			return fmt.Errorf("%d deleted rows still visible to running transactions after %d rewrites; retry", kept, attempt)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d deleted rows still visible to running transactions: %w", kept, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}
