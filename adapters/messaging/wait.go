package messaging

import (
	"context"
	"fmt"
	"slices"

	"github.com/companin/companin/domain/es"
)

// WaitForProjections returns once every registered projection's checkpoint is
// at or after pos (read-your-writes after an append), or with ctx's error.
// Given the types of the events appended, it waits only for the projections
// that may show them: those that declare no types (EventTyper) or one of
// these; the others cannot change for this write. It
// is woken by checkpoint commits of this process and, while Run runs, of every
// other process (LISTEN/NOTIFY), never by polling. During a Rebuild it may
// return early: the rebuilt projection's old position still counts.
func (r *Runtime) WaitForProjections(ctx context.Context, pos es.Position, types ...string) error {
	r.mu.Lock()
	names := make([]string, 0, len(r.projections))
	for _, p := range r.projections {
		if shows(p.filter.Types, types) {
			names = append(names, p.name)
		}
	}
	r.mu.Unlock()
	if len(names) == 0 || pos == es.Start {
		return nil
	}
	lastGen := -1
	for {
		changed, gen := r.notify.checkpoints()
		behind := r.behind(names, pos)
		if len(behind) == 0 {
			return nil
		}
		if gen != lastGen && !r.notify.fresh(behind, gen) {
			// First pass, or the listener reconnected and may have missed
			// news; not when this generation of the listener has read these
			// positions already and heard of every move since.
			if err := r.refreshPositions(ctx, behind); err != nil {
				return err
			}
			r.notify.readFromDatabase(behind, gen)
			lastGen = gen
			if len(r.behind(names, pos)) == 0 {
				return nil
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("waiting for projections %v to reach %s: %w", r.behind(names, pos), pos, ctx.Err())
		}
	}
}

func (r *Runtime) behind(names []string, pos es.Position) []string {
	var out []string
	for _, n := range names {
		if pos.After(r.notify.known(n)) {
			out = append(out, n)
		}
	}
	return out
}

func (r *Runtime) refreshPositions(ctx context.Context, names []string) error {
	rows, err := r.pool.Query(ctx, `SELECT name, position FROM consumer_checkpoints WHERE name = ANY($1)`, names)
	if err != nil {
		return fmt.Errorf("read checkpoints: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, p string
		if err := rows.Scan(&name, &p); err != nil {
			return fmt.Errorf("read checkpoints: %w", err)
		}
		r.notify.checkpointMoved(name, es.Position(p))
	}
	return rows.Err()
}

// shows tells whether a projection handling handled (nil: every type) may
// show an event of one of types (nil: of any type).
func shows(handled, types []string) bool {
	if len(handled) == 0 || len(types) == 0 {
		return true
	}
	for _, t := range types {
		if slices.Contains(handled, t) {
			return true
		}
	}
	return false
}
