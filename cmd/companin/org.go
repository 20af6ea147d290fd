package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/projections"
	"github.com/companin/companin/queries"
)

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// orgCommand is `companin org create --name NAME [--allowed-origin URL]...`:
// it creates an organization with its first API credentials and prints them
// as one JSON object on stdout, the only time the secret is shown.
func orgCommand(ctx context.Context, cfg Config, log *slog.Logger, args []string, stdout, stderr io.Writer) error {
	rest, err := subcommand("org", args, "create")
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("org create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "the organization's name (required)")
	var origins stringList
	fs.Var(&origins, "allowed-origin", "an origin (scheme://host[:port]) allowed to call the widget API; repeatable")
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: org create: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: org create: unexpected arguments %q", errUsage, fs.Args())
	}
	if strings.TrimSpace(*name) == "" {
		return fmt.Errorf("%w: org create: --name is required", errUsage)
	}

	db, store, err := openMigrated(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()
	defer store.Close()
	ctx = es.WithMetadata(ctx, es.Metadata{Actor: "cli"})
	created, err := commands.NewCreateOrganizationHandler(store).Handle(ctx, commands.CreateOrganization{
		Name: *name, AllowedOrigins: origins,
	})
	if err != nil {
		return fmt.Errorf("org create: %w", err)
	}
	// The API authenticates against the read model: bring it up to date now,
	// so that the credentials work the moment they are printed, whether or
	// not a server runs (it is safe alongside one). The new events become
	// readable once older transactions of the database server have ended,
	// hence the loop. The secret is printed whatever happens: it cannot be
	// shown again.
	if err := awaitClient(ctx, store, db, created.ClientID); err != nil {
		log.Warn("organization created, but the API may not know its credentials until a server catches up", "err", err)
	}
	return json.NewEncoder(stdout).Encode(created)
}

// awaitClient runs the organizations projection until it knows clientID.
func awaitClient(ctx context.Context, store es.Store, db *database, clientID string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	find := queries.NewFindClientHandler(db.Pool)
	for {
		if err := messaging.CatchUp(ctx, store, db.Pool, projections.Organizations{}); err != nil {
			return err
		}
		_, err := find.Handle(ctx, clientID)
		if err == nil {
			return nil
		}
		if !errors.Is(err, queries.ErrClientNotFound) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
