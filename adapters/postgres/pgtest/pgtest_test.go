package pgtest_test

import (
	"context"
	"testing"

	"github.com/companin/companin/adapters/postgres/pgtest"
)

func TestNewPoolGivesAMigratedDatabaseOfItsOwn(t *testing.T) {
	a, b := pgtest.NewPool(t), pgtest.NewPool(t)
	ctx := context.Background()
	if _, err := a.Exec(ctx, "CREATE TABLE only_in_a (id int)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("databases are shared: b sees a's table")
	}
	if err := a.QueryRow(ctx, "SELECT count(*) FROM goose_db_version").Scan(&n); err != nil {
		t.Fatalf("not migrated: %v", err)
	}
}
