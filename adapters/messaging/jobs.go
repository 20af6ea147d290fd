package messaging

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// A worker's events reach it in two steps. Its dispatcher, a log consumer led
// by one process, inserts a job per matching event in the same transaction as
// its checkpoint (so no event is lost or queued twice). Then every process
// claims jobs with FOR UPDATE SKIP LOCKED and a lease, and runs the handler
// outside any transaction.
//
// Ordering: jobs of one stream run one at a time in log order (a job is not
// claimable while an earlier job of its stream is pending), jobs of different
// streams in any order and in parallel. A job that keeps failing blocks the
// later jobs of its own stream until it is parked as failed after the maximum
// number of attempts; from then on the stream's later jobs run without it.
// Other streams are never blocked by it.
type worker struct {
	r      *Runtime
	name   string
	filter es.Filter
	handle WorkerFunc
	disp   *logConsumer
	// onParked, when set, is told about each job parked as failed (OnParked).
	onParked func(ctx context.Context, e es.Event, reason string) error

	purgeMu sync.Mutex
	purged  time.Time
}

func newWorker(r *Runtime, name string, filter es.Filter, handle WorkerFunc) *worker {
	w := &worker{r: r, name: name, filter: filter, handle: handle}
	w.disp = &logConsumer{name: name, kind: "dispatcher", filter: filter, apply: w.enqueue, grant: make(chan context.Context, 1)}
	return w
}

// enqueue is the dispatcher's effect: one job per event, once.
func (w *worker) enqueue(ctx context.Context, tx pgx.Tx, e es.Event) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO consumer_jobs (worker, event_id, event_type, stream, stream_version, position)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (worker, event_id) DO NOTHING`,
		w.name, e.ID, e.Type, e.Stream, int64(e.Version), string(e.Position))
	if err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	_, err = tx.Exec(ctx, `SELECT pg_notify('`+jobsChannel+`', $1)`, w.name)
	return err
}

type job struct {
	id       int64
	eventID  uuid.UUID
	stream   string
	version  uint64
	attempts int
	deadline time.Time
	// claimed is when the claim was sent: its lease runs from no earlier.
	claimed time.Time
}

// claim takes the next claimable job of the worker, if any, with a lease.
func (w *worker) claim(ctx context.Context) (*job, error) {
	var j job
	var version int64
	j.claimed = time.Now()
	err := w.r.pool.QueryRow(ctx, `
		UPDATE consumer_jobs j
		SET attempts = j.attempts + 1, claimed_by = $2, claimed_until = now() + $3 * interval '1 millisecond'
		WHERE j.id = (
			SELECT c.id FROM consumer_jobs c
			WHERE c.worker = $1 AND c.status = 'pending' AND c.available_at <= now()
			  AND (c.claimed_until IS NULL OR c.claimed_until <= now())
			  AND NOT EXISTS (
				SELECT 1 FROM consumer_jobs p
				WHERE p.worker = c.worker AND p.stream = c.stream AND p.status = 'pending' AND p.id < c.id)
			ORDER BY c.id
			LIMIT 1
			FOR UPDATE SKIP LOCKED)
		RETURNING j.id, j.event_id, j.stream, j.stream_version, j.attempts`,
		w.name, w.r.cfg.processIdentity, w.r.cfg.lease.Milliseconds(),
	).Scan(&j.id, &j.eventID, &j.stream, &version, &j.attempts)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("worker %s: claim: %w", w.name, err)
	}
	j.version = uint64(version)
	// The handler's bound; the lease itself is renewed while it runs (heartbeat).
	j.deadline = time.Now().Add(w.r.cfg.jobTimeout)
	return &j, nil
}

// nextDue returns when the earliest job that is waiting for time (a backoff
// or someone else's lease) becomes claimable, or zero if none.
func (w *worker) nextDue(ctx context.Context) (time.Time, error) {
	var at *time.Time
	err := w.r.pool.QueryRow(ctx, `
		SELECT min(GREATEST(available_at, COALESCE(claimed_until, available_at)))
		FROM consumer_jobs
		WHERE worker = $1 AND status = 'pending' AND GREATEST(available_at, COALESCE(claimed_until, available_at)) > now()`,
		w.name).Scan(&at)
	if err != nil || at == nil {
		return time.Time{}, err
	}
	return *at, nil
}

// complete marks the job done, unless its lease was lost and it was claimed
// again since (the attempt number fences stale owners).
func (w *worker) complete(ctx context.Context, j *job) error {
	_, err := w.r.pool.Exec(ctx, `
		WITH u AS (
			UPDATE consumer_jobs SET status = 'done', finished_at = now(), claimed_until = NULL, last_error = NULL
			WHERE id = $1 AND attempts = $2 AND status = 'pending' RETURNING worker)
		SELECT pg_notify('`+jobsChannel+`', worker) FROM u`, j.id, j.attempts)
	return err
}

// fail records a failed attempt: the job is tried again after a backoff, or
// parked as failed once it has had its attempts. It reports whether it parked.
func (w *worker) fail(ctx context.Context, j *job, cause string) (bool, error) {
	backoff := w.r.cfg.jobBackoff << min(j.attempts-1, 20)
	backoff = min(backoff, w.r.cfg.jobBackoffMax)
	var status string
	err := w.r.pool.QueryRow(ctx, `
		WITH u AS (
			UPDATE consumer_jobs SET
				last_error = $3, claimed_until = NULL,
				status = CASE WHEN attempts >= $4 THEN 'failed' ELSE 'pending' END,
				finished_at = CASE WHEN attempts >= $4 THEN now() END,
				available_at = now() + $5 * interval '1 millisecond'
			WHERE id = $1 AND attempts = $2 AND status = 'pending' RETURNING worker, status)
		SELECT status, pg_notify('`+jobsChannel+`', worker) FROM u`,
		j.id, j.attempts, cause, w.r.cfg.maxAttempts, backoff.Milliseconds()).Scan(&status, new(any))
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return status == "failed", err
}

// jobSubscriber is a watermill Subscriber over a worker's jobs: each of its
// loops claims a job, delivers it and waits for the ack (done) or nack (failed attempt).
type jobSubscriber struct {
	w       *worker
	closing chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

// Subscribe implements message.Subscriber.
func (s *jobSubscriber) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	out := make(chan *message.Message)
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	var loops sync.WaitGroup
	for range s.w.r.concurrencyOf(s.w.name) {
		loops.Add(1)
		go func() {
			defer loops.Done()
			s.loop(ctx, out)
		}()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		loops.Wait()
		cancel()
		close(out)
	}()
	return out, nil
}

// Close implements message.Subscriber.
func (s *jobSubscriber) Close() error {
	s.once.Do(func() { close(s.closing) })
	s.wg.Wait()
	return nil
}

func (s *jobSubscriber) loop(ctx context.Context, out chan<- *message.Message) {
	w, r := s.w, s.w.r
	log := r.log.With("worker", w.name)
	delay := time.Duration(0)
	for ctx.Err() == nil {
		wake := r.notify.jobsFor(w.name)
		j, err := w.claim(ctx)
		if err != nil {
			if ctx.Err() == nil {
				log.Error("messaging: claim job", "error", err)
				delay = nextDelay(delay, 5*time.Second)
				sleep(ctx, delay)
			}
			continue
		}
		delay = 0
		if j == nil {
			w.purge(ctx)
			s.idle(ctx, wake)
			continue
		}
		if j.attempts > r.cfg.maxAttempts {
			// Its leases kept expiring: a handler that hangs or kills the process.
			reason := "lease expired " + strconv.Itoa(j.attempts-1) + " times"
			if parked, err := w.fail(ctx, j, reason); err == nil && parked {
				r.metrics.parkedJob(w.name)
				log.Error("messaging: job parked", "job_id", j.id, "event_id", j.eventID, "attempts", j.attempts-1)
				w.parked(ctx, j, nil, reason)
			}
			continue
		}
		s.deliver(ctx, j, out, log)
	}
}

// purge deletes done jobs past the retention, at most once an hour per
// process and worker, in bounded chunks.
func (w *worker) purge(ctx context.Context) {
	if w.r.cfg.retention <= 0 {
		return
	}
	w.purgeMu.Lock()
	due := time.Since(w.purged) > time.Hour
	if due {
		w.purged = time.Now()
	}
	w.purgeMu.Unlock()
	if !due {
		return
	}
	_, err := w.r.pool.Exec(ctx, `
		DELETE FROM consumer_jobs WHERE id IN (
			SELECT id FROM consumer_jobs
			WHERE worker = $1 AND status = 'done' AND finished_at < now() - $2 * interval '1 millisecond'
			LIMIT 10000)`, w.name, w.r.cfg.retention.Milliseconds())
	if err != nil && ctx.Err() == nil {
		w.r.log.Warn("messaging: purge done jobs", "worker", w.name, "error", err)
	}
}

// idle waits until the worker's jobs change (notification) or a job waiting
// for time becomes due.
func (s *jobSubscriber) idle(ctx context.Context, wake <-chan struct{}) {
	var timer <-chan time.Time
	if at, err := s.w.nextDue(ctx); err == nil && !at.IsZero() {
		t := time.NewTimer(max(time.Until(at), time.Millisecond))
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-wake:
	case <-timer:
	case <-ctx.Done():
	}
}

func (s *jobSubscriber) deliver(ctx context.Context, j *job, out chan<- *message.Message, log interface {
	Error(string, ...any)
	Warn(string, ...any)
}) {
	w, r := s.w, s.w.r
	var event *es.Event
	failed := func(cause string) {
		r.metrics.failed(w.name)
		parked, err := w.fail(context.WithoutCancel(ctx), j, cause)
		if err != nil {
			log.Error("messaging: record job failure", "job_id", j.id, "error", err)
		}
		if parked {
			r.metrics.parkedJob(w.name)
			log.Error("messaging: job parked", "job_id", j.id, "event_id", j.eventID, "attempts", j.attempts, "error", cause)
			w.parked(context.WithoutCancel(ctx), j, event, cause)
		}
	}
	events, err := r.store.ReadStream(ctx, j.stream, j.version, 1)
	if err != nil || len(events) == 0 || events[0].ID != j.eventID {
		if ctx.Err() != nil {
			return
		}
		failed(fmt.Sprintf("read event %s (%s@%d): %v", j.eventID, j.stream, j.version, err))
		return
	}
	e := events[0]
	event = &e
	hctx, cancel := context.WithDeadline(ctx, j.deadline)
	defer cancel()
	beating := w.heartbeat(hctx, j, cancel)
	defer beating.Wait()
	defer cancel()
	d := &jobDelivery{event: e}
	msg := eventMessage(hctx, w.name, e, jobKey{}, d)
	select {
	case out <- msg:
	case <-ctx.Done():
		return
	}
	select {
	case <-msg.Acked():
		if err := w.complete(context.WithoutCancel(ctx), j); err != nil {
			log.Error("messaging: mark job done", "job_id", j.id, "error", err)
		}
		r.metrics.done(w.name, e, e.GlobalPosition)
	case <-msg.Nacked():
		failed(d.cause())
	case <-ctx.Done():
		// The process stops: the lease runs out and another process takes the job.
	case <-hctx.Done():
		// The lease is over: the job may be someone else's now. This slot
		// stays taken until the handler returns (its context is cancelled), so
		// a hung handler costs this process capacity instead of piling up
		// goroutines; its late ack marks the job done only if nobody claimed it since.
		if ctx.Err() == nil {
			log.Warn("messaging: job lease expired while handling", "job_id", j.id, "event_id", j.eventID)
		}
		select {
		case <-msg.Acked():
			if err := w.complete(context.WithoutCancel(ctx), j); err != nil {
				log.Error("messaging: mark job done", "job_id", j.id, "error", err)
			}
		case <-msg.Nacked():
			failed(d.cause())
		case <-ctx.Done():
		}
	}
}

// heartbeat renews j's lease every third of it until ctx ends. When the
// job is no longer this process's (taken over after a lease ran out, parked)
// or the lease could not be renewed for 90% of it, it calls lost: the
// handler's context ends before anyone else may take the job. Measured from
// before each renewal was sent, like the claim.
func (w *worker) heartbeat(ctx context.Context, j *job, lost context.CancelFunc) *sync.WaitGroup {
	var wg sync.WaitGroup
	lease := w.r.cfg.lease
	renewed := j.claimed
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(max(lease/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			sent := time.Now()
			rctx, cancel := context.WithTimeout(ctx, max(lease/3, 100*time.Millisecond))
			tag, err := w.r.pool.Exec(rctx, `
				UPDATE consumer_jobs SET claimed_until = now() + $3 * interval '1 millisecond'
				WHERE id = $1 AND attempts = $2 AND status = 'pending' AND claimed_by = $4`,
				j.id, j.attempts, lease.Milliseconds(), w.r.cfg.processIdentity)
			cancel()
			switch {
			case ctx.Err() != nil:
				return
			case err == nil && tag.RowsAffected() == 1:
				renewed = sent
			case err == nil:
				w.r.log.Warn("messaging: job taken over while handling", "worker", w.name, "job_id", j.id, "event_id", j.eventID)
				lost()
				return
			case time.Since(renewed) > lease*9/10:
				w.r.log.Warn("messaging: job lease not renewed in time", "worker", w.name, "job_id", j.id, "error", err)
				lost()
				return
			}
		}
	}()
	return &wg
}

// parked tells the worker's OnParked hook that job j was given up, with its
// event (read here when nil). A few attempts, then the failure is logged:
// the job stays parked either way.
func (w *worker) parked(ctx context.Context, j *job, e *es.Event, reason string) {
	if w.onParked == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var err error
	for attempt, delay := 0, 100*time.Millisecond; attempt < 5; attempt, delay = attempt+1, delay*4 {
		if attempt > 0 && !sleep(ctx, delay) {
			break
		}
		if e == nil {
			events, rerr := w.r.store.ReadStream(ctx, j.stream, j.version, 1)
			if rerr != nil || len(events) == 0 || events[0].ID != j.eventID {
				err = fmt.Errorf("read event %s (%s@%d): %v", j.eventID, j.stream, j.version, rerr)
				continue
			}
			e = &events[0]
		}
		hctx := es.WithMetadata(ctx, es.Metadata{
			OrganizationID: e.Metadata.OrganizationID, Actor: "system:" + w.name,
			CorrelationID: cmp.Or(e.Metadata.CorrelationID, e.ID.String()), CausationID: e.ID.String(),
		})
		if err = w.onParked(hctx, *e, reason); err == nil {
			return
		}
	}
	w.r.log.Error("messaging: the parked job's hook failed", "worker", w.name, "job_id", j.id, "event_id", j.eventID, "error", err)
}

// jobDelivery is what the job subscriber hands the handler (in the message's
// context, in process): the job's event as read, and, once the handler has
// failed, why.
type jobDelivery struct {
	event es.Event
	err   error // set by the handler before the message is nacked
}

type jobKey struct{}

// cause is the failure recorded on the job after a nack.
func (d *jobDelivery) cause() string {
	if d.err == nil {
		return "the handler failed without an error"
	}
	return d.err.Error()
}

// handler runs the worker's function for a job message, outside any
// transaction. A panic is a failed attempt like an error.
func (w *worker) handler(msg *message.Message) (err error) {
	d, ok := msg.Context().Value(jobKey{}).(*jobDelivery)
	if !ok {
		return fmt.Errorf("messaging: worker %s: message %s carries no job", w.name, msg.UUID)
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
		d.err = err
	}()
	e := d.event
	corr := e.Metadata.CorrelationID
	if corr == "" {
		corr = e.ID.String()
	}
	ctx := es.WithMetadata(msg.Context(), es.Metadata{
		OrganizationID: e.Metadata.OrganizationID,
		Actor:          "system:" + w.name,
		CorrelationID:  corr,
		CausationID:    e.ID.String(),
	})
	return w.handle(ctx, e)
}
