package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/companin/companin/adapters/messaging"
)

// projectionsCommand is `companin projections rebuild [NAME]`: it empties
// the read models (all, or the one named) and replays the whole log into
// them. Safe while servers run: they pause that projection meanwhile.
func projectionsCommand(ctx context.Context, cfg Config, log *slog.Logger, args []string, stderr io.Writer) error {
	rest, err := subcommand("projections", args, "rebuild")
	if err != nil {
		return err
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
