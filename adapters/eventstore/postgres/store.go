// Package postgres is the PostgreSQL event store: the default home of the
// event log (schema in migrations/00001_event_store.sql).
//
// The global log is ordered by (epoch, transaction id, global position) and a
// reader only sees rows whose transaction id lies below the oldest running
// transaction. A bigserial alone would let a reader pass position 11 while a
// slower transaction still holds 10, and skip 10 for ever. Every append takes
// its stream's advisory lock before the transaction gets an id, so a stream's
// events reach readers in version order.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/companin/companin/adapters/postgres/notify"
	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Channel is the LISTEN/NOTIFY channel on which stores announce appends
// after their commits (at most one NOTIFY per notifyEvery per store).
const Channel = "companin_events"

// Store implements es.Store on PostgreSQL. It is safe for concurrent use and
// meant to be shared by the whole process: WaitForEvents hears other
// processes' appends through one notification listener, however many callers wait.
type Store struct {
	pool            *pgxpool.Pool
	idleFallback    time.Duration
	pendingFallback time.Duration
	listener        *notify.Listener
	ownListener     bool // started at the first wait, stopped by Close

	// background goroutines (the listener, the notifier) live until Close
	bg       context.Context
	stop     context.CancelFunc
	running  sync.WaitGroup
	listen1  sync.Once
	notify1  sync.Once
	announce chan struct{} // buffered 1: commits not yet announced to other processes

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever the log may have grown
	// orgChanged holds, per organization that some WaitForMatching waits
	// on, a channel closed when that organization's events may have grown.
	orgChanged map[string]chan struct{}
	// unannounced are the organizations of commits not yet announced (nil:
	// announce to all, as for an event without organization).
	unannounced map[string]struct{}
	announceAll bool
}

// Option tunes a Store.
type Option func(*Store)

// WithFallback bounds how long WaitForEvents waits without a notification:
// idle when the log holds nothing unread, pending when unread events exist
// but wait for an older transaction. That older transaction is often not an
// append at all (a projection's write, a rate-limit counter, any transaction
// on the server) and its commit notifies nobody, so pending is short: it is a
// bounded re-check while events are known to be on their way, not an idle poll.
func WithFallback(idle, pending time.Duration) Option {
	return func(s *Store) { s.idleFallback, s.pendingFallback = idle, pending }
}

// WithListener makes the store hear other processes' appends through l, the
// process's one notification listener, which the caller runs. Without it the
// store keeps a listening connection of its own from the first wait to Close.
func WithListener(l *notify.Listener) Option {
	return func(s *Store) { s.listener = l }
}

// New returns a store on a migrated database. Before anything is appended it
// checks the transaction-id epoch (see raiseEpochAfterRestore).
func New(ctx context.Context, pool *pgxpool.Pool, opts ...Option) (*Store, error) {
	s := &Store{
		pool:            pool,
		idleFallback:    30 * time.Second,
		pendingFallback: 10 * time.Millisecond,
		changed:         make(chan struct{}),
		orgChanged:      map[string]chan struct{}{},
		unannounced:     map[string]struct{}{},
		announce:        make(chan struct{}, 1),
	}
	s.bg, s.stop = context.WithCancel(context.Background())
	for _, o := range opts {
		o(s)
	}
	if err := raiseEpochAfterRestore(ctx, pool); err != nil {
		s.stop()
		return nil, err
	}
	if s.listener == nil {
		s.listener, s.ownListener = notify.New(pool.Config().ConnConfig, nil), true
	}
	s.listener.Subscribe(s, Channel)
	return s, nil
}

// raiseEpochAfterRestore keeps the global order after a logical dump and
// restore: the restored rows keep their transaction ids, but the new server
// hands out ids from a lower number, so new events would sort before old ones.
// A healthy server never holds a stored id at or above the next id it will
// hand out; when it does, the log was restored, and raising the epoch (the
// first part of the order) puts every new event after every restored one.
// Readers' checkpoints stay valid. It runs under an advisory lock so that
// processes starting together raise the epoch once.
func raiseEpochAfterRestore(ctx context.Context, pool *pgxpool.Pool) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('companin event store epoch'))"); err != nil {
			return fmt.Errorf("event store: epoch lock: %w", err)
		}
		var behind bool
		err := tx.QueryRow(ctx, `
			SELECT coalesce((
				SELECT e.transaction_id >= pg_snapshot_xmax(pg_current_snapshot())
				FROM events e, event_store_epoch s
				WHERE e.epoch = s.epoch
				ORDER BY e.epoch DESC, e.transaction_id DESC LIMIT 1), false)`).Scan(&behind)
		if err != nil {
			return fmt.Errorf("event store: check epoch (is the database migrated?): %w", err)
		}
		if behind {
			if _, err := tx.Exec(ctx, "UPDATE event_store_epoch SET epoch = epoch + 1"); err != nil {
				return fmt.Errorf("event store: raise epoch: %w", err)
			}
		}
		return nil
	})
}

// Close stops the listening connection and the notifier. Waiters return when
// their contexts end.
func (s *Store) Close() {
	s.stop()
	s.running.Wait()
}

// querier is what an append needs: the pool (one statement, one transaction)
// or an open transaction (tests pause and kill writers inside one).
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Append implements es.Store. The whole append is one call of the SQL
// function event_store_append: one round trip and one transaction.
func (s *Store) Append(ctx context.Context, stream string, expected es.ExpectedVersion, events ...es.NewEvent) (es.AppendResult, error) {
	res, err := s.append(ctx, s.pool, stream, expected, events)
	if err == nil && !res.Replayed && len(events) > 0 {
		s.committed(events)
	}
	return res, err
}

// committed announces an append after its commit: to the waiters of this
// process directly, and through a NOTIFY to the others. Both go through the
// notifier, which wakes waiters at most once per notifyEvery however many
// appends commit, so that a busy store does not make every waiter query the
// log once per append.
//
// The NOTIFY is not sent inside the append's transaction. PostgreSQL
// serialises the commits of all transactions that notify (a database-wide
// lock held until the commit record is flushed), which cut 16 writers on this
// machine to the rate of one (about 120 appends/s instead of 1,700). Sent
// afterwards, from a transaction without a transaction id, it costs no flush,
// and one NOTIFY announces every commit of a few milliseconds (notifyEvery).
// If the process dies between a commit and its NOTIFY, waiters in
// other processes find the event at their fallback timeout.
func (s *Store) committed(events []es.NewEvent) {
	s.mu.Lock()
	for _, e := range events {
		if e.Metadata.OrganizationID == "" {
			s.announceAll = true
		} else {
			s.unannounced[e.Metadata.OrganizationID] = struct{}{}
		}
	}
	s.mu.Unlock()
	s.notify1.Do(func() {
		s.running.Add(1)
		go s.notifier()
	})
	select {
	case s.announce <- struct{}{}:
	default: // a NOTIFY is pending already; it will cover this commit
	}
}

// notifyEvery bounds the announcements of one store: every commit within it
// is announced once at its end. Each NOTIFY is a statement of its own, and
// under load one per commit would cost as much as the appends.
const notifyEvery = 5 * time.Millisecond

func (s *Store) notifier() {
	defer s.running.Done()
	for {
		select {
		case <-s.bg.Done():
			return
		case <-s.announce:
		}
		sent := time.Now()
		s.mu.Lock()
		orgs, all := s.unannounced, s.announceAll
		s.unannounced, s.announceAll = map[string]struct{}{}, false
		s.mu.Unlock()
		if len(orgs) == 0 && !all {
			continue // announced already, with an earlier batch
		}
		s.broadcast(orgs, all)
		// An error leaves waiters elsewhere to their fallback timeout.
		_, _ = s.pool.Exec(s.bg, "SELECT pg_notify($1, $2)", Channel, payload(orgs, all))
		select {
		case <-s.bg.Done():
			return
		case <-time.After(time.Until(sent.Add(notifyEvery))):
		}
	}
}

func (s *Store) append(ctx context.Context, q querier, stream string, expected es.ExpectedVersion, events []es.NewEvent) (es.AppendResult, error) {
	if err := es.ValidateAppend(stream, events); err != nil {
		return es.AppendResult{}, err
	}
	n := len(events)
	ids := make([]uuid.UUID, n)
	types := make([]string, n)
	schemaVersions := make([]int32, n)
	data := make([]*string, n)
	metadata := make([]string, n)
	orgs := make([]string, n)
	for i, e := range events {
		ids[i], types[i], schemaVersions[i], orgs[i] = e.ID, e.Type, int32(max(e.SchemaVersion, 1)), e.Metadata.OrganizationID
		if len(e.Data) > 0 {
			d := string(e.Data)
			data[i] = &d
		}
		m, err := json.Marshal(e.Metadata)
		if err != nil {
			return es.AppendResult{}, fmt.Errorf("%w: metadata: %v", es.ErrInvalidEvent, err)
		}
		metadata[i] = string(m)
	}
	kind, version := expectation(expected)

	var (
		status string
		pos    position
	)
	var cur int64
	err := q.QueryRow(ctx,
		`SELECT status, version, epoch, transaction_id, global_position
		 FROM event_store_append($1, $2, $3, $4, $5, $6, $7, $8, $9, false)`,
		stream, kind, int64(version), ids, types, schemaVersions, data, metadata, orgs,
	).Scan(&status, &cur, &pos.epoch, &pos.txid, &pos.global)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			switch pgErr.ConstraintName {
			case "events_event_id_key":
				// Some id is stored already: a retry of this batch, or a conflict.
				return replay(ctx, q, stream, events)
			case "events_stream_version_key":
				return es.AppendResult{}, fmt.Errorf("append to %s: concurrent write: %w", stream, es.ErrWrongExpectedVersion)
			}
		}
		if errors.As(err, &pgErr) && pgErr.Code == "22P02" {
			return es.AppendResult{}, fmt.Errorf("append to %s: %w: %v", stream, es.ErrInvalidEvent, err)
		}
		return es.AppendResult{}, fmt.Errorf("append to %s: %w", stream, err)
	}
	switch status {
	case "ok":
		res := es.AppendResult{NextExpectedVersion: uint64(cur)}
		if pos.global > 0 {
			res.Position = pos.encode()
		}
		return res, nil
	case "wrong_version":
		return es.AppendResult{}, fmt.Errorf("append to %s: expected %s, stream at %d: %w", stream, expected, cur, es.ErrWrongExpectedVersion)
	case "stored":
		return replay(ctx, q, stream, events)
	default:
		return es.AppendResult{}, fmt.Errorf("append to %s: unknown status %q", stream, status)
	}
}

// replay decides an append some of whose ids are stored already: a retry of
// stored events (same stream, same content, all of them) returns the result
// of the first append; anything else is a conflict.
func replay(ctx context.Context, q querier, stream string, events []es.NewEvent) (es.AppendResult, error) {
	ids := make([]uuid.UUID, len(events))
	for i, e := range events {
		ids[i] = e.ID
	}
	stored, err := query(ctx, q, `SELECT `+columns+` FROM events WHERE event_id = ANY($1)`, ids)
	if err != nil {
		return es.AppendResult{}, fmt.Errorf("append to %s: read stored events: %w", stream, err)
	}
	byID := make(map[uuid.UUID]es.Event, len(stored))
	for _, e := range stored {
		byID[e.ID] = e
	}
	var last es.Event
	for _, n := range events {
		e, ok := byID[n.ID]
		if !ok {
			return es.AppendResult{}, fmt.Errorf("append to %s: batch partly stored already: %w", stream, es.ErrDuplicateEventID)
		}
		if e.Stream != stream || !e.SameContent(n) {
			return es.AppendResult{}, fmt.Errorf("append to %s: event %s: %w", stream, n.ID, es.ErrDuplicateEventID)
		}
		last = e
	}
	return es.AppendResult{NextExpectedVersion: last.Version, Position: last.Position, Replayed: true}, nil
}

func expectation(x es.ExpectedVersion) (kind int32, version uint64) {
	switch {
	case x.IsNoStream():
		return 1, 0
	case x.IsStreamExists():
		return 2, 0
	}
	if v, ok := x.ExactVersion(); ok {
		return 3, v
	}
	return 0, 0
}

// columns of an event. The transaction id leaves as text named txid: under
// its own name it would shadow the column in ORDER BY and sort as text.
const columns = `event_id, stream, version, epoch, transaction_id::text AS txid, global_position,
	type, schema_version, data, metadata, recorded_at`

func query(ctx context.Context, q querier, sql string, args ...any) ([]es.Event, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (es.Event, error) {
		var (
			e        es.Event
			pos      position
			version  int64
			sv       int32
			data     []byte
			metadata []byte
		)
		if err := r.Scan(&e.ID, &e.Stream, &version, &pos.epoch, &pos.txid, &pos.global,
			&e.Type, &sv, &data, &metadata, &e.RecordedAt); err != nil {
			return e, err
		}
		e.Version, e.SchemaVersion, e.Data = uint64(version), int(sv), data
		e.Position, e.GlobalPosition = pos.encode(), pos.global
		e.RecordedAt = e.RecordedAt.UTC()
		if err := json.Unmarshal(metadata, &e.Metadata); err != nil {
			return e, fmt.Errorf("event %s: metadata: %w", e.ID, err)
		}
		return e, nil
	})
}

// ReadStream implements es.Store.
func (s *Store) ReadStream(ctx context.Context, stream string, from uint64, limit int) ([]es.Event, error) {
	events, err := query(ctx, s.pool,
		`SELECT `+columns+` FROM events WHERE stream = $1 AND version >= $2 ORDER BY version LIMIT $3`,
		stream, int64(from), limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	if len(events) == 0 {
		var exists bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM events WHERE stream = $1)`, stream).Scan(&exists); err != nil {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
		if !exists {
			return nil, fmt.Errorf("read %s: %w", stream, es.ErrStreamNotFound)
		}
	}
	return events, nil
}

// visibleBelow is the reader's horizon: events of older epochs, and events of
// the current epoch whose transaction began before the oldest one running.
// Everything below it has committed or rolled back for good.
const visibleBelow = `(e.epoch, e.transaction_id) < (
	(SELECT s.epoch FROM event_store_epoch s),
	(SELECT pg_snapshot_xmin(pg_current_snapshot())))`

// ReadAll implements es.Store.
func (s *Store) ReadAll(ctx context.Context, after es.Position, limit int, f es.Filter) ([]es.Event, error) {
	p, err := parsePosition(after)
	if err != nil {
		return nil, err
	}
	sql, args := readAllSQL(p, limit, f)
	events, err := query(ctx, s.pool, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("read all after %q: %w", after, err)
	}
	return events, nil
}

func readAllSQL(p position, limit int, f es.Filter) (string, []any) {
	var sql strings.Builder
	sql.WriteString(`SELECT ` + columns + ` FROM events e
		WHERE (e.epoch, e.transaction_id, e.global_position) > ($1, $2::text::xid8, $3) AND ` + visibleBelow)
	args := filterSQL(&sql, []any{p.epoch, p.txid, p.global, limitArg(limit)}, f)
	sql.WriteString(" LIMIT $4")
	return sql.String(), args
}

// waitSQL tells whether an event after p passes f: 0 none, 1 readable, 2
// committed but held back by an older transaction.
func waitSQL(p position, f es.Filter) (string, []any) {
	var sql strings.Builder
	sql.WriteString(`SELECT coalesce((
			SELECT CASE WHEN ` + visibleBelow + ` THEN 1 ELSE 2 END
			FROM events e
			WHERE (e.epoch, e.transaction_id, e.global_position) > ($1, $2::text::xid8, $3)`)
	args := filterSQL(&sql, []any{p.epoch, p.txid, p.global}, f)
	sql.WriteString(" LIMIT 1), 0)")
	return sql.String(), args
}

// filterSQL appends f's conditions and the log order to a query of events e
// after a position, and returns args with f's values added. With an
// organization, the order is spelled so that the planner walks the
// organization's index (events_organization_position_idx): a reader of one
// organization reads its events only, however large the others' share.
func filterSQL(sql *strings.Builder, args []any, f es.Filter) []any {
	if len(f.Types) > 0 {
		args = append(args, f.Types)
		fmt.Fprintf(sql, " AND e.type = ANY($%d)", len(args))
	}
	if len(f.Streams) > 0 {
		args = append(args, f.Streams)
		fmt.Fprintf(sql, " AND e.stream = ANY($%d)", len(args))
	}
	if f.OrganizationID != "" {
		args = append(args, f.OrganizationID)
		fmt.Fprintf(sql, " AND e.organization_id = $%d", len(args))
		sql.WriteString(" ORDER BY e.organization_id, e.epoch, e.transaction_id, e.global_position")
	} else {
		sql.WriteString(" ORDER BY e.epoch, e.transaction_id, e.global_position")
	}
	return args
}

func limitArg(limit int) any {
	if limit <= 0 {
		return nil // LIMIT NULL: everything
	}
	return int64(limit)
}

// WaitForEvents implements es.Store. It returns as soon as a reader would find
// an event after the position, on a notification, or after a bounded fallback:
// an older transaction that rolls back sends no notification, yet it may have
// held back events that a reader can now see.
func (s *Store) WaitForEvents(ctx context.Context, after es.Position) error {
	return s.wait(ctx, after, es.Filter{})
}

// WaitForMatching implements es.FilteredWaiter: WaitForEvents for the events
// that pass f alone. With an organization it looks only at that
// organization's events (through its index) and wakes only on notifications
// naming it, so that a waiter costs nothing while other organizations write.
func (s *Store) WaitForMatching(ctx context.Context, after es.Position, f es.Filter) error {
	return s.wait(ctx, after, f)
}

func (s *Store) wait(ctx context.Context, after es.Position, f es.Filter) error {
	p, err := parsePosition(after)
	if err != nil {
		return err
	}
	changed := s.subscribe(f.OrganizationID)
	sql, args := waitSQL(p, f)
	var state int // 0 nothing after the position, 1 readable, 2 waiting for an older transaction
	err = s.pool.QueryRow(ctx, sql, args...).Scan(&state)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("wait for events after %q: %w", after, err)
	}
	if state == 1 {
		return nil
	}
	wait := s.idleFallback
	if state == 2 {
		wait = s.pendingFallback
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-changed:
		return nil
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// subscribe returns a channel closed at the next sign that the log grew
// (org "": any event; else that organization's), starting the listening
// connection on first use.
func (s *Store) subscribe(org string) <-chan struct{} {
	if s.ownListener {
		s.listen1.Do(func() {
			s.running.Add(1)
			go func() { defer s.running.Done(); s.listener.Run(s.bg) }()
		})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if org == "" {
		return s.changed
	}
	ch, ok := s.orgChanged[org]
	if !ok {
		ch = make(chan struct{})
		s.orgChanged[org] = ch
	}
	return ch
}

// broadcast wakes the waiters for any event, and those of the organizations
// named (all of them when all is set).
func (s *Store) broadcast(orgs map[string]struct{}, all bool) {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	for org, ch := range s.orgChanged {
		if _, ok := orgs[org]; ok || all {
			close(ch)
			delete(s.orgChanged, org) // the next subscriber makes a new one
		}
	}
	s.mu.Unlock()
}

// The payload of a NOTIFY names the organizations whose events committed,
// comma-separated, so that a process wakes only their waiters; empty means
// every waiter (older processes send it, and a NOTIFY carries at most 8000
// bytes).
const maxPayload = 7000

func payload(orgs map[string]struct{}, all bool) string {
	if all {
		return ""
	}
	var sb strings.Builder
	for org := range orgs {
		if sb.Len()+len(org)+1 > maxPayload || strings.Contains(org, ",") {
			return ""
		}
		if sb.Len() > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(org)
	}
	return sb.String()
}

func parsePayload(p string) (orgs map[string]struct{}, all bool) {
	if p == "" {
		return nil, true
	}
	orgs = map[string]struct{}{}
	for _, org := range strings.Split(p, ",") {
		orgs[org] = struct{}{}
	}
	return orgs, false
}

// Notify implements notify.Handler: another process (or this one) appended
// events of the organizations named.
func (s *Store) Notify(_, payload string) { s.broadcast(parsePayload(payload)) }

// Reset implements notify.Handler: notifications may have been lost, so every
// waiter looks at the log again.
func (s *Store) Reset(bool) { s.broadcast(nil, true) }

// position is an event's place in the global log: the epoch, the id of the
// transaction that wrote it, and its sequence number. Encoded as fixed-width
// hex, string order is log order.
type position struct {
	epoch  int32
	txid   string // decimal xid8, as PostgreSQL prints it
	global int64
}

func (p position) encode() es.Position {
	txid, _ := strconv.ParseUint(p.txid, 10, 64)
	return es.Position(fmt.Sprintf("%08x%016x%016x", uint32(p.epoch), txid, uint64(p.global)))
}

func parsePosition(p es.Position) (position, error) {
	if p == es.Start {
		return position{txid: "0"}, nil
	}
	s := string(p)
	bad := fmt.Errorf("event store: bad position %q", p)
	if len(s) != 40 {
		return position{}, bad
	}
	epoch, err1 := strconv.ParseUint(s[:8], 16, 32)
	txid, err2 := strconv.ParseUint(s[8:24], 16, 64)
	global, err3 := strconv.ParseUint(s[24:], 16, 63)
	if err1 != nil || err2 != nil || err3 != nil || epoch > 1<<31-1 {
		return position{}, bad
	}
	return position{epoch: int32(epoch), txid: strconv.FormatUint(txid, 10), global: int64(global)}, nil
}

var (
	_ es.Store          = (*Store)(nil)
	_ es.FilteredWaiter = (*Store)(nil)
)
