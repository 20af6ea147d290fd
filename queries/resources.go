package queries

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/companin/companin/domain"
	"github.com/jackc/pgx/v5"
)

// resourcesDB is what the resource queries need; *pgxpool.Pool has it.
type resourcesDB interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Page is one request's window on a list: limit (1-100, checked by the HTTP
// layer) and the opaque cursor a previous page returned ("" for the first).
type Page struct {
	Limit  int
	Cursor string
}

func (p Page) limit() int {
	if p.Limit < 1 || p.Limit > 100 {
		return 20
	}
	return p.Limit
}

// seqCursor encodes a position in a list ordered by a sequence number.
func seqCursor(kind string, seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + strconv.FormatInt(seq, 10)))
}

// parseSeqCursor decodes a cursor made by seqCursor for the same kind of list;
// "" is the start (ok=false).
func parseSeqCursor(kind, c string) (seq int64, ok bool, err error) {
	if c == "" {
		return 0, false, nil
	}
	bad := domain.Invalid("cursor", "is not a cursor this API returned")
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, false, bad
	}
	k, n, found := strings.Cut(string(b), ":")
	if !found || k != kind {
		return 0, false, bad
	}
	seq, err = strconv.ParseInt(n, 10, 64)
	if err != nil || seq < 0 {
		return 0, false, bad
	}
	return seq, true, nil
}
