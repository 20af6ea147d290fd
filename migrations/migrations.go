// Package migrations holds the SQL schema, embedded in the binary and applied
// with goose at start (`companin serve`) or on demand (`companin migrate`).
//
// Numbering leaves room per area so that work on one never renumbers another:
// 00001-00099 event store and consumers, 00100-00199 API read models,
// 00200-00299 knowledge, 00300-00399 answers, 00400-00499 widget.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

//go:embed *.sql
var files embed.FS

// Apply brings the database behind pool up to the newest schema. It is safe to
// call from several processes at once: goose takes a session lock.
func Apply(ctx context.Context, pool *pgxpool.Pool) error {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	return apply(ctx, db)
}

func apply(ctx context.Context, db *sql.DB) error {
	p, err := goose.NewProvider(goose.DialectPostgres, db, files,
		goose.WithSessionLocker(mustLocker()),
		goose.WithAllowOutofOrder(true),
	)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return nil
}
