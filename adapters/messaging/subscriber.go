package messaging

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// logConsumer is a consumer that follows the log from a checkpoint under
// single-process leadership: a projection, or a worker's dispatcher.
type logConsumer struct {
	name   string
	kind   string // "projection" or "dispatcher", for logs
	filter es.Filter
	apply  applyFunc
	mark   Marker // optional
	// grant carries a context that lives while this process leads the consumer.
	grant chan context.Context

	failMu   sync.Mutex
	failing  uuid.UUID // the event whose unclassified failures are counted
	failures int
}

// logSubscriber is a watermill Subscriber over the event log for one
// consumer. It delivers what it has read (up to a page) as one message, the
// events in its context (delivery), and waits for its ack; a nack redelivers
// from the checkpoint, never skipping an event.
type logSubscriber struct {
	r       *Runtime
	c       *logConsumer
	closing chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

func newLogSubscriber(r *Runtime, c *logConsumer) *logSubscriber {
	return &logSubscriber{r: r, c: c, closing: make(chan struct{})}
}

// Subscribe implements message.Subscriber; the topic is the consumer's name.
func (s *logSubscriber) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	out := make(chan *message.Message)
	ctx, cancel := context.WithCancel(ctx)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		defer cancel()
		go func() {
			select {
			case <-s.closing:
				cancel()
			case <-ctx.Done():
			}
		}()
		for {
			select {
			case lead := <-s.c.grant:
				s.follow(ctx, lead, out)
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// Close implements message.Subscriber.
func (s *logSubscriber) Close() error {
	s.once.Do(func() { close(s.closing) })
	s.wg.Wait()
	return nil
}

// follow delivers events while this process leads the consumer.
func (s *logSubscriber) follow(ctx, lead context.Context, out chan<- *message.Message) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(lead, cancel)()
	if ctx.Err() != nil {
		return
	}
	r, c := s.r, s.c
	log := r.log.With("consumer", c.name, "kind", c.kind)
	log.Info("messaging: leading consumer")
	defer log.Info("messaging: no longer leading consumer")

	var (
		pos     es.Position // the committed checkpoint
		scanned es.Position // the last event read, matching or not
		buf     []es.Event
		head    int64
		delay   time.Duration
		err     error
	)
	restart := func() bool {
		buf = nil
		for {
			if pos, err = ensureCheckpoint(ctx, r.pool, c.name); err == nil {
				scanned = pos
				return true
			}
			if ctx.Err() != nil {
				return false
			}
			log.Error("messaging: read checkpoint", "error", err)
			delay = nextDelay(delay, r.cfg.redeliveryMax)
			if !sleep(ctx, delay) {
				return false
			}
		}
	}
	if !restart() {
		return
	}
	for ctx.Err() == nil {
		if len(buf) == 0 {
			events, err := r.store.ReadAll(ctx, scanned, r.cfg.batchSize, es.Filter{})
			if err != nil {
				if ctx.Err() == nil {
					log.Error("messaging: read log", "error", err)
					delay = nextDelay(delay, r.cfg.redeliveryMax)
					sleep(ctx, delay)
				}
				continue
			}
			if len(events) > 0 {
				head = events[len(events)-1].GlobalPosition
				for _, e := range events {
					if c.filter.Matches(e) {
						buf = append(buf, e)
					}
				}
				scanned = events[len(events)-1].Position
			}
			if len(buf) == 0 && scanned != pos {
				// Only events this consumer ignores lie between its checkpoint
				// and what it has read: move past them, so that
				// WaitForProjections sees it has caught up.
				skip := target{name: c.name, apply: func(context.Context, pgx.Tx, es.Event) error { return nil }}
				err := applyTx(ctx, r.pool, r.txConfig(), skip, true, pos, []es.Event{{Position: scanned}}, nil, false)
				if err != nil {
					if ctx.Err() == nil {
						log.Warn("messaging: move checkpoint past ignored events", "error", err)
					}
					if !restart() {
						return
					}
					continue
				}
				pos = scanned
				r.notify.checkpointMoved(c.name, pos)
			}
			if len(events) == 0 {
				r.metrics.caughtUp(c.name)
				if err := r.store.WaitForEvents(ctx, scanned); err != nil && ctx.Err() == nil {
					log.Error("messaging: wait for events", "error", err)
					delay = nextDelay(delay, r.cfg.redeliveryMax)
					sleep(ctx, delay)
				}
			}
			continue
		}

		// Everything read and not yet applied goes in one transaction (up to
		// a page of the log): the checkpoint compare-and-set is the same,
		// so exactly-once holds, and a deterministic failure inside the
		// batch parks only its own event.
		batch := buf
		d := &delivery{prev: pos, events: batch, head: head}
		msg := eventMessage(ctx, c.name, batch[0], deliveryKey{}, d)
		select {
		case out <- msg:
		case <-ctx.Done():
			return
		}
		e := batch[0]
		select {
		case <-msg.Acked():
			if d.moved {
				// Another runner (a rebuild, or a leader that has not yet
				// noticed it lost the lock) moved the checkpoint: follow it.
				if !restart() {
					return
				}
				continue
			}
			pos = batch[len(batch)-1].Position
			buf = buf[len(batch):]
			delay = 0
			r.notify.checkpointMoved(c.name, pos)
		case <-msg.Nacked():
			r.metrics.failed(c.name)
			delay = nextDelay(delay, r.cfg.redeliveryMax)
			log.Warn("messaging: event nacked, redelivering", "event_id", e.ID, "event_type", e.Type, "position", e.Position, "delay", delay)
			if !sleep(ctx, delay) {
				return
			}
			// Re-read: if another runner moved the checkpoint the event is
			// done; otherwise the same event comes again.
			if !restart() {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// delivery is what the subscriber hands the handler for a batch (in the
// message's context, in process): where the checkpoint stood, the events, and
// whether another runner had moved the checkpoint.
type delivery struct {
	prev   es.Position
	events []es.Event
	moved  bool
	head   int64 // the log's last global position as the reader saw it, for the lag gauge
}

type deliveryKey struct{}

// logHandler applies a batch of events and moves the checkpoint, in one
// transaction. An event that fails deterministically is parked (a dead letter
// in the same transaction as the checkpoint) and the consumer moves on; a
// transient failure is returned, to be retried; an unclassified one is
// retried and parked after WithParkAfter attempts. Progress made before a
// failure (events applied and parked) is kept: a retry goes on from there.
func (r *Runtime) logHandler(c *logConsumer) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		d, ok := msg.Context().Value(deliveryKey{}).(*delivery)
		if !ok {
			return fmt.Errorf("messaging: %s: message %s carries no events", c.name, msg.UUID)
		}
		ctx := msg.Context()
		t := target{name: c.name, apply: c.apply, mark: c.mark}
		next, parked, err := applyOrPark(ctx, r.pool, r.txConfig(), t, true, d.prev, d.events, c.countFailure(r.cfg.parkAfter))
		for _, p := range parked {
			r.metrics.parkedEvent(c.name)
			r.log.Error("messaging: event parked", "consumer", c.name, "event_id", p.EventID, "event_type", p.EventType,
				"stream", p.Stream, "position", p.Position, "reason", p.Reason)
		}
		if next != d.prev {
			for len(d.events) > 0 && !d.events[0].Position.After(next) {
				r.metrics.done(c.name, d.events[0], d.head)
				d.events = d.events[1:]
			}
			d.prev = next
		}
		if errors.Is(err, errCheckpointMoved) {
			// Not a failure of the event: nothing to retry, the subscriber re-reads.
			d.moved = true
			return nil
		}
		if err != nil && ctx.Err() == nil {
			recordFailure(ctx, r.pool, c.name, err)
		}
		return err
	}
}

// countFailure returns the decision applyOrPark asks for an event that failed
// with an unclassified error: park it once it has failed parkAfter times in a
// row (every attempt, in-process retries and redeliveries alike).
func (c *logConsumer) countFailure(parkAfter int) func(es.Event, error) (string, bool) {
	return func(e es.Event, err error) (string, bool) {
		if parkAfter <= 0 || classify(err) != unknown {
			return "", false
		}
		c.failMu.Lock()
		defer c.failMu.Unlock()
		if c.failing != e.ID {
			c.failing, c.failures = e.ID, 0
		}
		c.failures++
		if c.failures < parkAfter {
			return "", false
		}
		c.failures = 0
		return reasonText(fmt.Errorf("failed %d times: %w", parkAfter, err)), true
	}
}

func nextDelay(d, limit time.Duration) time.Duration {
	if d <= 0 {
		return min(50*time.Millisecond, limit)
	}
	return min(d*2, limit)
}

// sleep waits d or until ctx ends; it reports whether ctx is still alive.
// Used only for backoff after failures, never to wait for events.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
