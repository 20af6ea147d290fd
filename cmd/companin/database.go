package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"

	"github.com/companin/companin/adapters/postgres/embedded"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// appDatabase is the database Companin uses inside its embedded server (the
// server's own postgres database stays empty, as a user expects).
const appDatabase = "companin"

// database is the PostgreSQL a command works on, and how to let go of it.
type database struct {
	Pool     *pgxpool.Pool
	embedded *embedded.Server
}

// openDatabase connects to DATABASE_URL or, without it, to the embedded
// server under the data directory, starting it unless another companin
// process (a running serve) already keeps it, which short commands share.
func openDatabase(ctx context.Context, cfg Config, log *slog.Logger, short bool) (*database, error) {
	db := &database{}
	dbURL := cfg.DatabaseURL
	if dbURL == "" {
		srv, err := embedded.Start(ctx, embedded.Config{
			DataDir:    cfg.DataDir,
			UseRunning: short,
			Logf:       func(f string, a ...any) { log.Info(fmt.Sprintf(f, a...)) },
		})
		if err != nil {
			return nil, err
		}
		db.embedded = srv
		if dbURL, err = ensureDatabase(ctx, srv.URL(), appDatabase); err != nil {
			_ = srv.Stop()
			return nil, err
		}
		log.Info("embedded PostgreSQL ready", "url", embedded.Redacted(dbURL))
	}
	pcfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if pcfg.MaxConns < 20 {
		pcfg.MaxConns = 20
	}
	if db.Pool, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		db.Close()
		return nil, fmt.Errorf("database: %w", err)
	}
	if err := db.Pool.Ping(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s: %w", embedded.Redacted(dbURL), err)
	}
	return db, nil
}

// Close closes the pool and stops an embedded server this process started.
func (d *database) Close() {
	if d.Pool != nil {
		d.Pool.Close()
	}
	if d.embedded != nil {
		_ = d.embedded.Stop()
	}
}

// ensureDatabase creates database name on the server at serverURL when it is
// missing, and returns its URL.
func ensureDatabase(ctx context.Context, serverURL, name string) (string, error) {
	c, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return "", fmt.Errorf("embedded postgres: %w", err)
	}
	defer c.Close(ctx)
	var exists bool
	if err := c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", fmt.Errorf("embedded postgres: %w", err)
	}
	if !exists {
		if _, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			return "", fmt.Errorf("embedded postgres: create database %s: %w", name, err)
		}
	}
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}
