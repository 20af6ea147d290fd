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

	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/projections"
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
	// so the credentials work the moment they are printed, whether or not a
	// server is running (safe alongside one).
	if err := messaging.CatchUp(ctx, store, db.Pool, projections.Organizations{}); err != nil {
		return fmt.Errorf("org create: organization stored, but its read model is behind (a running server catches up): %w", err)
	}
	return json.NewEncoder(stdout).Encode(created)
}
