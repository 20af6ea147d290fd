package main

import (
	"context"
	"log/slog"

	"github.com/companin/companin/migrations"
)

// migrate applies the embedded migrations (serve does too, at start).
func migrate(ctx context.Context, cfg Config, log *slog.Logger) error {
	db, err := openDatabase(ctx, cfg, log, true)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := migrations.Apply(ctx, db.Pool); err != nil {
		return err
	}
	log.Info("database is up to date")
	return nil
}

// openMigrated opens the database and the event log for a short command.
func openMigrated(ctx context.Context, cfg Config, log *slog.Logger) (*database, *eventLog, error) {
	db, err := openDatabase(ctx, cfg, log, true)
	if err != nil {
		return nil, nil, err
	}
	if err := migrations.Apply(ctx, db.Pool); err != nil {
		db.Close()
		return nil, nil, err
	}
	store, err := openEventLog(ctx, cfg, db.Pool, nil, log)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, store, nil
}
