package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"github.com/companin/companin/adapters/messaging"
)

// projectionsCommand is `companin projections rebuild [NAME]` (empty the
// read models, all or the one named, and replay the whole log into them;
// safe while servers run: they pause that projection meanwhile),
// `projections parked` (the events consumers parked, one JSON object a line)
// and `projections retry ID|--all` (apply parked events again once the cause
// is fixed).
func projectionsCommand(ctx context.Context, cfg Config, log *slog.Logger, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "parked":
			return parkedCommand(ctx, cfg, log, args[1:], stdout)
		case "retry":
			return retryCommand(ctx, cfg, log, args[1:], stdout)
		}
	}
	rest, err := subcommand("projections", args, "rebuild")
	if err != nil {
		return fmt.Errorf("%w (or parked, retry)", err)
	}
	if len(rest) > 1 || (len(rest) == 1 && strings.HasPrefix(rest[0], "-")) {
		return fmt.Errorf("%w: projections rebuild takes at most one projection name, got %q", errUsage, rest)
	}
	name := ""
	if len(rest) == 1 {
		name = rest[0]
	}
	ps := readModels()
	if name != "" && !hasProjection(ps, name) {
		return fmt.Errorf("%w: projections rebuild: no projection %q; there are: %s", errUsage, name, projectionNames(ps))
	}
	db, store, err := openMigrated(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()
	defer store.Close()
	if err := messaging.Rebuild(ctx, store, db.Pool, ps, name); err != nil {
		if errors.Is(err, messaging.ErrUnknownProjection) {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		return err
	}
	if name == "" {
		name = projectionNames(ps)
	}
	log.Info("rebuilt", "projections", name)
	if counts, err := messaging.ParkedCounts(ctx, db.Pool); err == nil && len(counts) > 0 {
		log.Warn("some events are parked: see companin projections parked", "parked", counts)
	}
	return nil
}

// parkedCommand lists the parked events, oldest first, one JSON object a line:
// {id, consumer, position, event_id, event_type, stream, stream_version,
// organization_id, reason, attempts, parked_at, retried_at}.
func parkedCommand(ctx context.Context, cfg Config, log *slog.Logger, args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: projections parked takes no arguments, got %q", errUsage, args)
	}
	db, store, err := openMigrated(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()
	defer store.Close()
	ds, err := messaging.Parked(ctx, db.Pool, "")
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	for _, d := range ds {
		if err := enc.Encode(d); err != nil {
			return err
		}
	}
	log.Info("parked events", "count", len(ds))
	return nil
}

// retryCommand applies one parked event (by the id `projections parked`
// shows) or all of them again, and prints what became of each, one JSON
// object a line ({..., "resolved": bool, "error": "..."}). It fails (exit 1)
// when an event still cannot be applied; that event stays parked.
func retryCommand(ctx context.Context, cfg Config, log *slog.Logger, args []string, stdout io.Writer) error {
	var id int64
	switch {
	case len(args) == 1 && args[0] == "--all":
	case len(args) == 1:
		n, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("%w: projections retry takes the id of a parked event (companin projections parked) or --all, got %q", errUsage, args[0])
		}
		id = n
	default:
		return fmt.Errorf("%w: projections retry takes the id of a parked event or --all, got %q", errUsage, args)
	}
	db, store, err := openMigrated(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()
	defer store.Close()
	res, err := messaging.RetryParked(ctx, store, db.Pool, readModels(), id)
	if errors.Is(err, messaging.ErrNoDeadLetter) {
		return fmt.Errorf("projections retry: %d is not a parked event (see companin projections parked)", id)
	}
	enc := json.NewEncoder(stdout)
	failed := 0
	for _, r := range res {
		if !r.Resolved {
			failed++
		}
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	if err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("projections retry: %d of %d events still cannot be applied and stay parked", failed, len(res))
	}
	log.Info("retried parked events", "resolved", len(res))
	return nil
}

func hasProjection(ps []messaging.Projection, name string) bool {
	for _, p := range ps {
		if p.Name() == name {
			return true
		}
	}
	return false
}

func projectionNames(ps []messaging.Projection) string {
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name()
	}
	return strings.Join(names, ", ")
}
