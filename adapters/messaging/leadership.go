package messaging

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// lead keeps trying to lead the consumers until ctx ends. Leadership is a
// session-level advisory lock per consumer, held on one dedicated connection
// of this process: if the process dies, or the connection does, PostgreSQL
// releases the locks and another process takes them within its leadership
// interval. Losing leadership cancels the consumer's context; the checkpoint
// compare-and-set keeps a runner that has not noticed yet from applying twice.
func (r *Runtime) lead(ctx context.Context, cs []*logConsumer) {
	if len(cs) == 0 {
		return
	}
	delay := time.Duration(0)
	for ctx.Err() == nil {
		err := r.leadOnce(ctx, cs)
		if ctx.Err() != nil {
			return
		}
		r.log.Warn("messaging: leadership connection lost", "error", err)
		delay = nextDelay(delay, 5*time.Second)
		sleep(ctx, delay)
	}
}

func (r *Runtime) leadOnce(ctx context.Context, cs []*logConsumer) error {
	conn, err := pgx.ConnectConfig(ctx, r.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	held := map[*logConsumer]context.CancelFunc{}
	defer func() {
		for c, cancel := range held {
			cancel()
			r.metrics.leading(c.name, false)
		}
	}()
	check := max(3*r.cfg.leaderInterval, 5*time.Second)
	ticker := time.NewTicker(r.cfg.leaderInterval)
	defer ticker.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, check)
		for _, c := range cs {
			if _, ok := held[c]; ok {
				continue
			}
			var got bool
			if err := conn.QueryRow(qctx, `SELECT pg_try_advisory_lock($1, $2)`, lockLeader, lockKey(c.name)).Scan(&got); err != nil {
				cancel()
				return err
			}
			if got {
				lctx, lcancel := context.WithCancel(ctx)
				held[c] = lcancel
				r.metrics.leading(c.name, true)
				select { // drop a stale grant the subscriber never took
				case <-c.grant:
				default:
				}
				c.grant <- lctx
			}
		}
		if len(held) > 0 {
			// The locks live as long as this session: check that it does.
			if _, err := conn.Exec(qctx, `SELECT 1`); err != nil {
				cancel()
				return err
			}
		}
		cancel()
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return nil
		}
	}
}
