package shred_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/companin/companin/adapters/eventstore/memory"
	"github.com/companin/companin/adapters/eventstore/postgres"
	"github.com/companin/companin/adapters/eventstore/shred"
	"github.com/companin/companin/adapters/postgres/pgtest"
	"github.com/companin/companin/domain/es"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestPostgresKeysLifecycle(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	k, err := shred.NewPostgresKeys(pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Key(ctx, alice, false); !errors.Is(err, shred.ErrKeyNotFound) {
		t.Errorf("missing key: err = %v, want ErrKeyNotFound", err)
	}

	// Racing creators all get the one key that was stored.
	const racers = 8
	got := make([][]byte, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			key, err := k.Key(ctx, alice, true)
			if err != nil {
				t.Error(err)
			}
			got[i] = key
		})
	}
	wg.Wait()
	for i := range got {
		if len(got[i]) != shred.KeySize || !bytes.Equal(got[i], got[0]) {
			t.Fatalf("racer %d got key %x, racer 0 %x", i, got[i], got[0])
		}
	}
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM subject_keys`).Scan(&rows); err != nil || rows != 1 {
		t.Fatalf("subject_keys holds %d rows (%v), want 1", rows, err)
	}
	bobs, err := k.Key(ctx, bob, true)
	if err != nil || bytes.Equal(bobs, got[0]) {
		t.Fatalf("bob's key %x (%v) must differ from alice's", bobs, err)
	}

	if err := k.Destroy(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Key(ctx, alice, false); !errors.Is(err, shred.ErrKeyNotFound) {
		t.Errorf("destroyed key: err = %v, want ErrKeyNotFound", err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM subject_keys WHERE subject = $1 AND secret IS NOT NULL`, alice).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("alice's key is still there: %d (%v)", rows, err)
	}
	if again, err := k.Key(ctx, bob, false); err != nil || !bytes.Equal(again, bobs) {
		t.Errorf("bob's key changed by alice's erasure: %x (%v)", again, err)
	}
	if err := k.Destroy(ctx, alice); err != nil {
		t.Errorf("second destroy: %v", err)
	}
	if _, err := k.Key(ctx, alice, true); !errors.Is(err, shred.ErrErased) {
		t.Errorf("create after destroy: err = %v, want ErrErased", err)
	}
	// A subject that never had a key can be destroyed too (an erasure that
	// crashed before its first write, retried): it is tombstoned.
	if err := k.Destroy(ctx, "usercontext-never"); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Key(ctx, "usercontext-never", true); !errors.Is(err, shred.ErrErased) {
		t.Errorf("create after destroy of a keyless subject: err = %v, want ErrErased", err)
	}
}

// rawPages returns the bytes of every page of a relation, as PostgreSQL
// stores them: dead rows included. It skips the test where the pageinspect
// extension cannot be installed (it needs a superuser).
func rawPages(t *testing.T, pool *pgxpool.Pool, relation string) []byte {
	t.Helper()
	ctx := context.Background()
	if _, err := pool.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS pageinspect`); err != nil {
		t.Skipf("cannot inspect raw pages here (pageinspect: %v)", err)
	}
	var out []byte
	rows, err := pool.Query(ctx, `
		SELECT get_raw_page($1::text, 'main', n)
		FROM generate_series(0, (pg_relation_size($1::text::regclass) / current_setting('block_size')::int) - 1) AS n`, relation)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var page []byte
		if err := rows.Scan(&page); err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// A row updated or deleted stays in the table's pages until they are
// rewritten: Destroy makes the key unreadable at once, and Scrub removes its
// bytes.
func TestPostgresKeysScrubLeavesNoCopy(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	k, err := shred.NewPostgresKeys(pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"usercontext-x", "usercontext-y", "usercontext-z"} {
		if _, err := k.Key(ctx, s, true); err != nil {
			t.Fatal(err)
		}
	}
	key, err := k.Key(ctx, alice, true)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(rawPages(t, pool, "subject_keys"), key) {
		t.Fatal("the key is not found in the raw pages before Destroy: this test could not see a leftover copy")
	}
	if pending, err := k.Pending(ctx); err != nil || pending {
		t.Fatalf("pending before any erasure: %v %v", pending, err)
	}
	if err := k.Destroy(ctx, alice); err != nil {
		t.Fatal(err)
	}
	if pending, err := k.Pending(ctx); err != nil || !pending {
		t.Fatalf("pending after an erasure: %v %v", pending, err)
	}
	scrubbed(t, k)
	if bytes.Contains(rawPages(t, pool, "subject_keys"), key) {
		t.Error("a copy of the destroyed key is left in subject_keys' pages")
	}
	if pending, err := k.Pending(ctx); err != nil || pending {
		t.Errorf("pending after a complete scrub: %v %v", pending, err)
	}
	if _, err := k.Key(ctx, "usercontext-y", false); err != nil {
		t.Errorf("other subjects' keys must survive the rewrite: %v", err)
	}
}

// scrubbed runs Scrub until it is done. Other tests' transactions on the
// same server can hold the rewrite back for a moment (VACUUM's horizon spans
// databases), so it retries, with a generous deadline.
func scrubbed(t *testing.T, k *shred.PostgresKeys) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		done, err := k.Scrub(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("Scrub was not done within a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestPostgresKeysWrappedWithMasterKey(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	master := bytes.Repeat([]byte{7}, shred.KeySize)
	k, err := shred.NewPostgresKeys(pool, master)
	if err != nil {
		t.Fatal(err)
	}
	key, err := k.Key(ctx, alice, true)
	if err != nil {
		t.Fatal(err)
	}
	var (
		secret  []byte
		wrapped bool
	)
	if err := pool.QueryRow(ctx, `SELECT secret, wrapped FROM subject_keys WHERE subject = $1`, alice).Scan(&secret, &wrapped); err != nil {
		t.Fatal(err)
	}
	if !wrapped || bytes.Contains(secret, key) {
		t.Errorf("stored secret %x (wrapped %v) holds the key %x in the clear", secret, wrapped, key)
	}
	if again, err := k.Key(ctx, alice, false); err != nil || !bytes.Equal(again, key) {
		t.Errorf("unwrapped key %x (%v), want %x", again, err, key)
	}

	other, _ := shred.NewPostgresKeys(pool, bytes.Repeat([]byte{8}, shred.KeySize))
	if _, err := other.Key(ctx, alice, false); err == nil || errors.Is(err, shred.ErrKeyNotFound) {
		t.Errorf("wrong master key: err = %v, want a failure that is not 'not found'", err)
	}
	none, _ := shred.NewPostgresKeys(pool, nil)
	if _, err := none.Key(ctx, alice, false); err == nil || errors.Is(err, shred.ErrKeyNotFound) {
		t.Errorf("no master key for a wrapped key: err = %v", err)
	}
	// A ciphertext moved to another subject's row does not open.
	if _, err := pool.Exec(ctx, `INSERT INTO subject_keys (subject, secret, wrapped) VALUES ($1, $2, true)`, bob, secret); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Key(ctx, bob, false); err == nil {
		t.Error("alice's wrapped key opened as bob's")
	}
	if _, err := shred.NewPostgresKeys(pool, []byte("short")); err == nil {
		t.Error("short master key accepted")
	}
}

func TestParseMasterKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xab}, shred.KeySize)
	for _, s := range []string{
		hex.EncodeToString(raw),
		base64.StdEncoding.EncodeToString(raw),
		base64.RawURLEncoding.EncodeToString(raw),
		" " + base64.StdEncoding.EncodeToString(raw) + "\n",
	} {
		got, err := shred.ParseMasterKey(s)
		if err != nil || !bytes.Equal(got, raw) {
			t.Errorf("ParseMasterKey(%q) = %x, %v", s, got, err)
		}
	}
	if got, err := shred.ParseMasterKey(""); got != nil || err != nil {
		t.Errorf("empty: %x, %v; want no key", got, err)
	}
	for _, s := range []string{"secret", base64.StdEncoding.EncodeToString(raw[:16]), strings.Repeat("z", 64)} {
		if _, err := shred.ParseMasterKey(s); err == nil {
			t.Errorf("ParseMasterKey(%q): no error", s)
		}
	}
}

// End to end with the production key store: after erasure the personal data
// is in no event, and the events still read and replay.
func TestEraseWithPostgresKeys(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	keys, err := shred.NewPostgresKeys(pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	inner := memory.New()
	s := shred.New(inner, keys)
	e := personal(alice, "Alice Liddell", "alice@example.org")
	if _, err := s.Append(ctx, "usercontext-1", es.NoStream, e); err != nil {
		t.Fatal(err)
	}
	if err := s.Erase(ctx, alice); err != nil {
		t.Fatal(err)
	}
	evs, err := s.ReadAll(ctx, es.Start, 0, es.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Metadata.Extra[shred.Erased] != "true" {
		t.Fatalf("after erasure: %+v", evs)
	}
	var m map[string]any
	if err := json.Unmarshal(evs[0].Data, &m); err != nil || m["name"] != nil || m["traits"] != nil || m["plan"] != "pro" {
		t.Errorf("after erasure: data %s (%v)", evs[0].Data, err)
	}
	if raw := rawLog(t, inner); strings.Contains(raw, "Alice Liddell") || strings.Contains(raw, "alice@example.org") {
		t.Errorf("personal data in the log: %s", raw)
	}
}

// The whole production path: the PostgreSQL event store behind the
// decorator, keys in subject_keys. The events table never holds the personal
// values; after erasure nothing can decrypt them, and the log still replays.
func TestErasureOnThePostgresEventStore(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	inner, err := postgres.New(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inner.Close)
	keys, err := shred.NewPostgresKeys(pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := shred.New(inner, keys)
	a := personal(alice, "Alice Liddell", "alice@example.org")
	b := personal(bob, "Bob Builder", "bob@example.org")
	if _, err := s.Append(ctx, "usercontext-a", es.NoStream, a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "usercontext-b", es.NoStream, b); err != nil {
		t.Fatal(err)
	}
	// An idempotent retry through the decorator is recognised by the store.
	if res, err := s.Append(ctx, "usercontext-a", es.NoStream, a); err != nil || !res.Replayed {
		t.Fatalf("retry: %+v, %v; want replayed", res, err)
	}

	table := func() string {
		rows, err := pool.Query(ctx, `SELECT coalesce(data::text, '') || metadata::text FROM events ORDER BY global_position`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var all strings.Builder
		for rows.Next() {
			var row string
			if err := rows.Scan(&row); err != nil {
				t.Fatal(err)
			}
			all.WriteString(row)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return all.String()
	}
	for _, secret := range []string{"Alice Liddell", "alice@example.org", "Bob Builder", "bob@example.org", `"age"`} {
		if strings.Contains(table(), secret) {
			t.Errorf("events table holds %q in the clear", secret)
		}
	}

	if err := s.Erase(ctx, alice); err != nil {
		t.Fatal(err)
	}
	byStream, err := s.ReadStream(ctx, "usercontext-a", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	all := readAllOf(t, s, 2)
	if len(byStream) != 1 || len(all) != 2 {
		t.Fatalf("the log must stay whole: %d in the stream, %d in all", len(byStream), len(all))
	}
	for _, e := range []es.Event{byStream[0], all[0]} {
		if got := fields(t, e.Data); got["name"] != nil || got["traits"] != nil || got["plan"] != "pro" || e.Metadata.Extra[shred.Erased] != "true" {
			t.Errorf("alice's event after erasure: %s %+v", e.Data, e.Metadata)
		}
	}
	if !all[1].SameContent(b) || all[1].Metadata.Extra[shred.Erased] != "" {
		t.Errorf("bob's event: %s", all[1].Data)
	}
	// Not even the raw table and the key table together give Alice back.
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM subject_keys WHERE subject = $1 AND secret IS NOT NULL`, alice).Scan(&left); err != nil || left != 0 {
		t.Errorf("alice's key row: %d (%v)", left, err)
	}
	if raw := table(); strings.Contains(raw, "Alice Liddell") || strings.Contains(raw, "alice@example.org") {
		t.Error("events table holds alice's data after erasure")
	}
}

// readAllOf reads the whole log once it holds want events: the PostgreSQL
// store shows an event to readers only once no older transaction is running
// (in any database of the server), which other tests may delay.
func readAllOf(t *testing.T, s es.Store, want int) []es.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		all, err := s.ReadAll(ctx, es.Start, 0, es.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) >= want {
			return all
		}
		after := es.Start
		if len(all) > 0 {
			after = all[len(all)-1].Position
		}
		if err := s.WaitForEvents(ctx, after); err != nil {
			t.Fatalf("the log shows %d of %d events: %v", len(all), want, err)
		}
	}
}

// Erasure must not wait for long transactions (a pg_dump, a report in
// REPEATABLE READ that has read subject_keys): Destroy answers at once, the
// key is gone for every read that starts afterwards, and other subjects'
// keys are created and read meanwhile. Only the scrub of the old row
// version waits for that transaction to end.
func TestPostgresKeysDestroyDoesNotWaitForLongTransactions(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	k, err := shred.NewPostgresKeys(pool, nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := k.Key(ctx, alice, true)
	if err != nil {
		t.Fatal(err)
	}
	reader, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Rollback(context.Background()) // a no-op after Commit; frees the connection when the test fails
	// Its snapshot holds alice's row, and it holds a lock on the table as a
	// pg_dump does.
	var seen []byte
	if err := reader.QueryRow(ctx, `SELECT secret FROM subject_keys WHERE subject = $1`, alice).Scan(&seen); err != nil || !bytes.Equal(seen, key) {
		t.Fatalf("reader: %x %v", seen, err)
	}

	// A hang detector, not a timing assertion: Destroy must not wait for the reader.
	bounded, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := k.Destroy(bounded, alice); err != nil {
		t.Fatalf("Destroy while a long transaction runs: %v", err)
	}
	if _, err := k.Key(bounded, alice, false); !errors.Is(err, shred.ErrKeyNotFound) {
		t.Errorf("key after Destroy: err = %v, want ErrKeyNotFound", err)
	}
	if _, err := k.Key(bounded, bob, true); err != nil {
		t.Errorf("another subject's key while the long transaction runs: %v", err)
	}
	// The rewrite cannot take its lock, or would have to keep the row the
	// reader may still see: not done, and it says so rather than wait.
	if done, err := k.Scrub(bounded); err != nil || done {
		t.Errorf("Scrub while the reader runs: done %v, err %v; want not done", done, err)
	}
	if err := reader.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	scrubbed(t, k)
	if bytes.Contains(rawPages(t, pool, "subject_keys"), key) {
		t.Error("a copy of the destroyed key is left in subject_keys' pages")
	}
}

// BenchmarkDestroyAndScrub measures the two halves of an erasure with
// 100,000 other subjects' keys in the table: Destroy (the request path, one
// row update) and Scrub (the background rewrite, during which key lookups
// wait).
//
//	go test ./adapters/eventstore/shred/ -run '^$' -bench DestroyAndScrub -benchtime 20x
func BenchmarkDestroyAndScrub(b *testing.B) {
	ctx := context.Background()
	pool := pgtest.NewPool(b)
	k, err := shred.NewPostgresKeys(pool, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
		INSERT INTO subject_keys (subject, secret)
		SELECT 'usercontext-' || gen_random_uuid(), gen_random_bytes(32) FROM generate_series(1, 100000)`); err != nil {
		// gen_random_bytes needs pgcrypto; fall back to md5 bytes.
		if _, err := pool.Exec(ctx, `
			INSERT INTO subject_keys (subject, secret)
			SELECT 'usercontext-' || gen_random_uuid(), decode(md5(random()::text) || md5(random()::text), 'hex') FROM generate_series(1, 100000)`); err != nil {
			b.Fatal(err)
		}
	}
	var destroy, scrub time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		subject := "usercontext-bench-" + strconv.Itoa(i)
		if _, err := k.Key(ctx, subject, true); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if err := k.Destroy(ctx, subject); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := k.Scrub(ctx); err != nil {
			b.Fatal(err)
		}
		destroy += t1.Sub(t0)
		scrub += time.Since(t1)
	}
	b.ReportMetric(float64(destroy.Microseconds())/1000/float64(b.N), "destroy-ms/op")
	b.ReportMetric(float64(scrub.Microseconds())/1000/float64(b.N), "scrub-ms/op")
}
