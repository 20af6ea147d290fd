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
// Destroy overwrites the key with a tombstone in one row update, without a
// table lock, so that erasure completes while long transactions run; Scrub
// (run by ScrubEvery) later rewrites the table to remove the old row
// versions' bytes. See Destroy for what stays where until then.
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
	key, err := k.load(ctx, subject, create)
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
	return k.load(ctx, subject, create)
}

// load reads the subject's key. A tombstone (destroyed key) is
// ErrKeyNotFound and ErrErased for readers, ErrErased for creators.
func (k *PostgresKeys) load(ctx context.Context, subject string, create bool) ([]byte, error) {
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
	if secret == nil {
		if create {
			return nil, fmt.Errorf("shred: subject %q: %w", subject, ErrErased)
		}
		return nil, fmt.Errorf("shred: subject %q: %w (%w)", subject, ErrKeyNotFound, ErrErased)
	}
	return k.unwrap(subject, secret, wrapped)
}

// Destroy implements KeyStore. It overwrites the key with NULL in one short
// UPDATE (a tombstone that also stops Key(create) from making a new key), so
// that it needs no table lock: it neither waits for long transactions (a
// pg_dump, a REPEATABLE READ report) nor blocks other subjects' lookups.
// From its commit on, no new read finds the key.
//
// What the UPDATE cannot take back at once (PostgreSQL never overwrites a
// row in place): the old row version, with the key's bytes, stays in the
// table's page until no running transaction can see it any more and a
// VACUUM (autovacuum, or Scrub) removes it; pruning leaves its bytes in the
// page's free space until they are overwritten, which is what Scrub's
// rewrite is for. Until then a transaction that began before the erasure
// can still read the key, and so can anyone who reads the data files. WAL
// (its full-page images) and WAL archives and backups keep it until they are
// recycled or expire: keep their retention within the erasure deadline you
// promise. With COMPANIN_MASTER_KEY the leftover bytes are the key sealed
// with the master key, useless without it.
func (k *PostgresKeys) Destroy(ctx context.Context, subject string) error {
	if _, err := k.pool.Exec(ctx, `
		INSERT INTO subject_keys (subject, secret, wrapped, destroyed_at) VALUES ($1, NULL, false, now())
		ON CONFLICT (subject) DO UPDATE SET secret = NULL, wrapped = false, destroyed_at = now()
		WHERE subject_keys.secret IS NOT NULL`, subject); err != nil {
		return fmt.Errorf("shred: destroy key of %s: %w", subject, err)
	}
	return nil
}

// scrubLockTimeout bounds how long Scrub waits for the table lock that
// VACUUM FULL needs: key lookups queue behind it meanwhile.
const scrubLockTimeout = "200ms"

// recentlyDead reads VACUUM VERBOSE's count of deleted rows that some running
// transaction may still see, and that the rewrite therefore had to copy.
var recentlyDead = regexp.MustCompile(`(\d+) dead row versions cannot be removed yet`)

// Pending tells whether keys were destroyed since the last complete Scrub.
func (k *PostgresKeys) Pending(ctx context.Context) (bool, error) {
	var pending bool
	err := k.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM subject_keys WHERE secret IS NULL AND scrubbed_at IS NULL)`).Scan(&pending)
	if err != nil {
		return false, fmt.Errorf("shred: scrub: %w", err)
	}
	return pending, nil
}

// Scrub removes the bytes of destroyed keys from subject_keys' pages: it
// rewrites the table (VACUUM FULL) once, waiting at most scrubLockTimeout for
// its lock, and reports done when the rewrite copied no old row version
// (none was still visible to a running transaction). It is safe to call at
// any time and from several processes; not done means "try again later",
// e.g. after a pg_dump ends. Erasure does not depend on it: the key is
// unreadable from Destroy on.
//
// The check reads the server's English VACUUM VERBOSE report; on a server
// with other lc_messages it cannot tell, and reports done after one rewrite.
func (k *PostgresKeys) Scrub(ctx context.Context) (done bool, err error) {
	// A transaction of this database that began before the newest pending
	// destroy may still see the old row: the rewrite would have to copy it.
	// Do not rewrite (and lock) for nothing; VACUUM's own report below is
	// the authority when this cannot tell (other roles' sessions are hidden
	// without pg_read_all_stats).
	var (
		started time.Time
		older   bool
	)
	if err := k.pool.QueryRow(ctx, `
		SELECT now(), EXISTS (
			SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_xmin IS NOT NULL
			  AND xact_start <= (SELECT max(destroyed_at) FROM subject_keys WHERE secret IS NULL AND scrubbed_at IS NULL))`).Scan(&started, &older); err != nil {
		return false, fmt.Errorf("shred: scrub: %w", err)
	}
	if older {
		return false, nil
	}
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
		return false, fmt.Errorf("shred: scrub: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `SET lock_timeout = '`+scrubLockTimeout+`'`); err != nil {
		return false, fmt.Errorf("shred: scrub: %w", err)
	}
	if _, err := conn.Exec(ctx, `VACUUM (FULL, VERBOSE) subject_keys`); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55P03" { // lock_not_available
			return false, nil
		}
		return false, fmt.Errorf("shred: scrub: %w", err)
	}
	if kept > 0 {
		return false, nil
	}
	if _, err := conn.Exec(ctx, `UPDATE subject_keys SET scrubbed_at = now() WHERE secret IS NULL AND scrubbed_at IS NULL AND destroyed_at < $1`, started); err != nil {
		return false, fmt.Errorf("shred: scrub: %w", err)
	}
	return true, nil
}

// ScrubEvery runs Scrub every interval while keys wait for it, until ctx
// ends. Failures are reported to logf and retried at the next tick.
func (k *PostgresKeys) ScrubEvery(ctx context.Context, interval time.Duration, logf func(msg string, args ...any)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pending, err := k.Pending(ctx)
		if err == nil && pending {
			_, err = k.Scrub(ctx)
		}
		if err != nil && ctx.Err() == nil {
			logf("scrub destroyed subject keys", "err", err)
		}
	}
}
