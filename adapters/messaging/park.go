package messaging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/companin/companin/domain/es"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrCannotApply is what a projection wraps to say that an event can never be
// applied as it is (its data is not what the projection can store): the event
// is parked at once instead of retried. es.ErrInvalidEvent counts the same.
var ErrCannotApply = errors.New("cannot apply event")

// ErrTransient is what a consumer wraps to say that a failure lies outside the
// event (a broker that is down, a stale view of it): the event is retried with
// backoff for as long as that lasts, and never parked, because parking it
// would drop it from what the consumer feeds.
var ErrTransient = errors.New("transient failure")

// A Marker is implemented by projections whose read model can show that an
// event about one of its entities was parked: the knowledge source `failed`
// with the reason, a conversation `degraded`. MarkParked runs in the
// transaction that parks e (inside a savepoint: if it fails, the event is
// parked unmarked); ClearParked runs before a retry applies e again, so that
// the retry starts from what the read model held before the mark.
type Marker interface {
	MarkParked(ctx context.Context, tx pgx.Tx, e es.Event, reason string) error
	ClearParked(ctx context.Context, tx pgx.Tx, e es.Event) error
}

// failureKind says what to do with a failed event.
type failureKind int

const (
	// transient: the database or the network failed; the same event will
	// succeed later. Retried with backoff for as long as it takes.
	transient failureKind = iota
	// deterministic: the event itself cannot be applied; retrying changes
	// nothing. Parked at once.
	deterministic
	// unknown: an error nobody classified (a bug, a panic). Retried, and
	// parked after the configured number of attempts (WithParkAfter).
	unknown
)

// classify tells transient failures from deterministic ones. The PostgreSQL
// classes follow https://www.postgresql.org/docs/current/errcodes-appendix.html.
func classify(err error) failureKind {
	if err == nil || errors.Is(err, ErrTransient) {
		return transient
	}
	if errors.Is(err, ErrCannotApply) || errors.Is(err, es.ErrInvalidEvent) {
		return deterministic
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "22"), // data exception: bad encoding, NUL, out of range, bad JSON
			strings.HasPrefix(pgErr.Code, "23"): // integrity constraint violation
			return deterministic
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "40"), // serialization failure, deadlock
			strings.HasPrefix(pgErr.Code, "53"), // insufficient resources
			strings.HasPrefix(pgErr.Code, "57"), // admin shutdown, query canceled, cannot connect now
			strings.HasPrefix(pgErr.Code, "58"), // system error (I/O)
			pgErr.Code == "55P03",               // lock not available
			pgErr.Code == "25P03":               // idle in transaction timeout
			return transient
		}
		return unknown
	}
	var (
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	if errors.As(err, &syntaxErr) || errors.As(err, &typeErr) {
		return deterministic // a stored event that does not decode
	}
	var netErr net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &netErr) ||
		pgconn.Timeout(err) || pgconn.SafeToRetry(err) || isConnClosed(err) {
		return transient
	}
	return unknown
}

func isConnClosed(err error) bool {
	var ce *pgconn.ConnectError
	return errors.As(err, &ce) || strings.Contains(err.Error(), "conn closed") ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe")
}

func (k failureKind) String() string {
	switch k {
	case deterministic:
		return "deterministic"
	case unknown:
		return "unknown"
	}
	return "transient"
}

// eventFailure is an event that failed inside applyTx: which one of the
// batch, and why.
type eventFailure struct {
	index int
	event es.Event
	err   error
}

func (f *eventFailure) Error() string {
	return fmt.Sprintf("event %s (%s at %s): %v", f.event.ID, f.event.Type, f.event.Position, f.err)
}

func (f *eventFailure) Unwrap() error { return f.err }

// reasonText is a cause as it is stored and shown: valid UTF-8 without NUL
// (so that the dead-letter row itself can always be written), bounded.
func reasonText(err error) string {
	s := strings.ToValidUTF8(err.Error(), "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", `\u0000`)
	const limit = 2000
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// parking is the last event of an applyTx batch, to be parked instead of applied.
type parking struct {
	reason string
}

// park records e as a dead letter of consumer and lets mark note it in the
// read model, inside tx (a savepoint keeps a failing mark from aborting it).
func park(ctx context.Context, tx pgx.Tx, consumer string, mark Marker, e es.Event, reason string) error {
	if mark != nil {
		sp, err := tx.Begin(ctx)
		if err != nil {
			return fmt.Errorf("%s: savepoint: %w", consumer, err)
		}
		if err := mark.MarkParked(ctx, sp, e, reason); err != nil {
			if rerr := sp.Rollback(ctx); rerr != nil {
				return fmt.Errorf("%s: roll back mark: %w", consumer, rerr)
			}
		} else if err := sp.Commit(ctx); err != nil {
			return fmt.Errorf("%s: release savepoint: %w", consumer, err)
		}
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO consumer_dead_letters (consumer, position, event_id, event_type, stream, stream_version, organization_id, reason)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (consumer, event_id) DO UPDATE SET position = $2, reason = $8,
			attempts = consumer_dead_letters.attempts + 1, parked_at = now(), resolved_at = NULL`,
		consumer, string(e.Position), e.ID, e.Type, e.Stream, int64(e.Version), e.Metadata.OrganizationID, reason)
	if err != nil {
		return fmt.Errorf("%s: park %s: %w", consumer, e.ID, err)
	}
	return nil
}

// target is what applies events for a consumer: its name (checkpoint), what
// it does with one event, and how it marks a parked one (optional).
type target struct {
	name  string
	apply applyFunc
	mark  Marker
}

// applyOrPark applies events after prev like applyTx, but parks an event
// that fails deterministically instead of stopping on it: the events before
// it are applied and it is parked in one transaction that moves the
// checkpoint past it, then the rest go on. It returns the new checkpoint,
// the events it parked, and the first error it could not park (transient,
// unknown, or errCheckpointMoved).
func applyOrPark(ctx context.Context, pool *pgxpool.Pool, cfg txConfig, t target, shared bool,
	prev es.Position, events []es.Event, forcePark func(es.Event, error) (string, bool)) (es.Position, []DeadLetter, error) {
	var parked []DeadLetter
	todo := events
	var p *parking
	sync := false
	for len(events) > 0 {
		err := applyTx(ctx, pool, cfg, t, shared, prev, todo, p, sync)
		var f *eventFailure
		var u *unpinnedFailure
		switch {
		case err == nil:
			if p != nil {
				last := todo[len(todo)-1]
				parked = append(parked, DeadLetter{Consumer: t.name, EventID: last.ID.String(), EventType: last.Type,
					Stream: last.Stream, StreamVersion: last.Version, Position: string(last.Position), Reason: p.reason})
			}
			prev = todo[len(todo)-1].Position
			events = events[len(todo):]
			todo, p = events, nil
		case errors.As(err, &u) && !sync && ctx.Err() == nil:
			// Again, each statement on its own: the failure then names its event.
			sync = true
		case errors.As(err, &f) && classify(f.err) == deterministic:
			todo, p = todo[:f.index+1], &parking{reason: reasonText(f.err)}
		case errors.As(err, &f) && forcePark != nil && p == nil:
			if reason, ok := forcePark(f.event, f.err); ok {
				todo, p = todo[:f.index+1], &parking{reason: reason}
				continue
			}
			return commitPrefix(ctx, pool, cfg, t, shared, prev, todo[:f.index], parked, err, sync)
		case errors.As(err, &f) && p == nil:
			return commitPrefix(ctx, pool, cfg, t, shared, prev, todo[:f.index], parked, err, sync)
		default:
			return prev, parked, err
		}
	}
	return prev, parked, nil
}

// commitPrefix commits the events of a batch before the one that failed with
// cause (to be retried), so that a retry starts at the failing event and a
// failure of one event never undoes the others. It returns the checkpoint
// reached and cause.
func commitPrefix(ctx context.Context, pool *pgxpool.Pool, cfg txConfig, t target, shared bool,
	prev es.Position, prefix []es.Event, parked []DeadLetter, cause error, sync bool) (es.Position, []DeadLetter, error) {
	if len(prefix) == 0 || ctx.Err() != nil {
		return prev, parked, cause
	}
	if err := applyTx(ctx, pool, cfg, t, shared, prev, prefix, nil, sync); err != nil {
		return prev, parked, cause
	}
	return prefix[len(prefix)-1].Position, parked, cause
}

// DeadLetter is a parked event as operators see it (companin projections parked).
type DeadLetter struct {
	ID             int64      `json:"id"`
	Consumer       string     `json:"consumer"`
	Position       string     `json:"position"`
	EventID        string     `json:"event_id"`
	EventType      string     `json:"event_type"`
	Stream         string     `json:"stream"`
	StreamVersion  uint64     `json:"stream_version"`
	OrganizationID string     `json:"organization_id,omitempty"`
	Reason         string     `json:"reason"`
	Attempts       int        `json:"attempts"`
	ParkedAt       time.Time  `json:"parked_at"`
	RetriedAt      *time.Time `json:"retried_at,omitempty"`
}
