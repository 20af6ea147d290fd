package messaging

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestClassifyTellsTransientFromDeterministic(t *testing.T) {
	broker := errors.New("nats: wrong last sequence")
	for _, c := range []struct {
		err  error
		want failureKind
	}{
		{fmt.Errorf("publish: %w: %w", ErrTransient, broker), transient},
		{broker, unknown},
		{fmt.Errorf("apply: %w", ErrCannotApply), deterministic},
		{&pgconn.PgError{Code: "22P05"}, deterministic},
		{&pgconn.PgError{Code: "23505"}, deterministic},
		{&pgconn.PgError{Code: "40001"}, transient},
		{&pgconn.PgError{Code: "57P01"}, transient},
		// A consumer that says its failure is transient is believed, even
		// when the cause it wraps looks like bad data.
		{fmt.Errorf("%w: %w", ErrTransient, &pgconn.PgError{Code: "22P05"}), transient},
	} {
		if got := classify(c.err); got != c.want {
			t.Errorf("classify(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
