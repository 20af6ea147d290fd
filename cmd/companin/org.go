package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	httpapi "github.com/companin/companin/adapters/http"
	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/projections"
	"github.com/companin/companin/queries"
	"github.com/google/uuid"
)

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// orgCommand is `companin org create|list|update|credentials`. Every change
// is an event in the organization's stream; every command brings the
// organizations read model up to date before it answers, so that what it
// prints is what the API does next (whether or not a server runs).
func orgCommand(ctx context.Context, cfg Config, log *slog.Logger, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: org: want create, list, update or credentials", errUsage)
	}
	switch args[0] {
	case "create":
		return orgCreate(ctx, cfg, log, args[1:], stdout, stderr)
	case "list":
		return orgList(ctx, cfg, log, args[1:], stdout)
	case "update":
		return orgUpdate(ctx, cfg, log, args[1:], stdout, stderr)
	case "credentials":
		return orgCredentials(ctx, cfg, log, args[1:], stdout, stderr)
	}
	return fmt.Errorf("%w: org: want create, list, update or credentials, got %q", errUsage, args[0])
}

// parseOrgArgs parses flags and positional arguments in any order
// (`org update ID --add-origin URL` and `org update --add-origin URL ID`) and
// wants exactly npos positional ones.
func parseOrgArgs(fs *flag.FlagSet, args []string, npos int, what string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %s: %v", errUsage, fs.Name(), err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != npos {
		return nil, fmt.Errorf("%w: %s: want %s, got %q", errUsage, fs.Name(), what, pos)
	}
	return pos, nil
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// orgCreate is `companin org create --name NAME [--allowed-origin URL]...`:
// it creates an organization with its first API credentials and prints them
// as one JSON object on stdout, the only time the secret is shown.
func orgCreate(ctx context.Context, cfg Config, log *slog.Logger, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("org create", stderr)
	name := fs.String("name", "", "the organization's name (required)")
	var origins stringList
	fs.Var(&origins, "allowed-origin", "an origin (scheme://host[:port]) allowed to call the widget API; repeatable")
	if _, err := parseOrgArgs(fs, args, 0, "no arguments besides the flags"); err != nil {
		return err
	}
	if strings.TrimSpace(*name) == "" {
		return fmt.Errorf("%w: org create: --name is required", errUsage)
	}
	return withOrganizations(ctx, cfg, log, func(ctx context.Context, o orgTools) error {
		created, err := commands.NewCreateOrganizationHandler(o.store).Handle(ctx, commands.CreateOrganization{
			Name: *name, AllowedOrigins: origins,
		})
		if err != nil {
			return fmt.Errorf("org create: %w", err)
		}
		// The secret is printed whatever happens: it cannot be shown again.
		if err := o.await(ctx, clientKnown(o, created.ClientID, true)); err != nil {
			log.Warn("organization created, but the API may not know its credentials until a server catches up", "err", err)
		}
		return json.NewEncoder(stdout).Encode(created)
	})
}

// orgList is `companin org list`: one JSON object per organization and line.
func orgList(ctx context.Context, cfg Config, log *slog.Logger, args []string, stdout io.Writer) error {
	fs := newFlagSet("org list", io.Discard)
	if _, err := parseOrgArgs(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	return withOrganizations(ctx, cfg, log, func(ctx context.Context, o orgTools) error {
		if err := o.catchUp(ctx); err != nil {
			return err
		}
		orgs, err := queries.ListOrganizations(ctx, o.db.Pool)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		for _, org := range orgs {
			if err := enc.Encode(org); err != nil {
				return err
			}
		}
		return nil
	})
}

// orgUpdate is `companin org update ORG [--add-origin URL]... [--remove-origin URL]...`.
func orgUpdate(ctx context.Context, cfg Config, log *slog.Logger, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("org update", stderr)
	var add, remove stringList
	fs.Var(&add, "add-origin", "an origin (scheme://host[:port]) the widget may run on; repeatable")
	fs.Var(&remove, "remove-origin", "an origin the widget may no longer run on; repeatable")
	pos, err := parseOrgArgs(fs, args, 1, "ORG (the organization id or one of its client ids)")
	if err != nil {
		return err
	}
	if len(add) == 0 && len(remove) == 0 {
		return fmt.Errorf("%w: org update: give --add-origin or --remove-origin", errUsage)
	}
	return withOrganizations(ctx, cfg, log, func(ctx context.Context, o orgTools) error {
		id, err := o.resolve(ctx, pos[0])
		if err != nil {
			return err
		}
		res, err := commands.UpdateOrganizationOriginsHandler{Store: o.store}.Handle(ctx, commands.UpdateOrganizationOrigins{
			OrganizationID: id, Add: add, Remove: remove,
		})
		if err != nil {
			return fmt.Errorf("org update: %w", err)
		}
		if err := o.await(ctx, originsAre(o, id, res.AllowedOrigins)); err != nil {
			log.Warn("origins changed, but the API may not apply them until a server catches up", "err", err)
		} else if err := httpapi.AnnounceCredentials(ctx, o.db.Pool, id.String()); err != nil {
			log.Warn("origins changed; servers apply them within a few seconds", "err", err)
		}
		return json.NewEncoder(stdout).Encode(res)
	})
}

// orgCredentials is `companin org credentials create|list|revoke`.
func orgCredentials(ctx context.Context, cfg Config, log *slog.Logger, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: org credentials: want create, list or revoke", errUsage)
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("org credentials "+sub, stderr)
	var pos []string
	var err error
	switch sub {
	case "create", "list":
		pos, err = parseOrgArgs(fs, args, 1, "ORG (the organization id or one of its client ids)")
	case "revoke":
		pos, err = parseOrgArgs(fs, args, 2, "ORG CLIENT_ID")
	default:
		return fmt.Errorf("%w: org credentials: want create, list or revoke, got %q", errUsage, sub)
	}
	if err != nil {
		return err
	}
	return withOrganizations(ctx, cfg, log, func(ctx context.Context, o orgTools) error {
		id, err := o.resolve(ctx, pos[0])
		if err != nil {
			return err
		}
		switch sub {
		case "create":
			issued, err := commands.IssueCredentialsHandler{Store: o.store}.Handle(ctx, commands.IssueCredentials{OrganizationID: id})
			if err != nil {
				return fmt.Errorf("org credentials create: %w", err)
			}
			if err := o.await(ctx, clientKnown(o, issued.ClientID, true)); err != nil {
				log.Warn("credentials issued, but the API may not know them until a server catches up", "err", err)
			}
			return json.NewEncoder(stdout).Encode(issued)
		case "list":
			list, err := queries.ListCredentials(ctx, o.db.Pool, id)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(stdout)
			for _, c := range list {
				if err := enc.Encode(c); err != nil {
					return err
				}
			}
			return nil
		default: // revoke
			clientID := pos[1]
			if _, err := (commands.RevokeCredentialsHandler{Store: o.store}).Handle(ctx, commands.RevokeCredentials{OrganizationID: id, ClientID: clientID}); err != nil {
				return fmt.Errorf("org credentials revoke: %w", err)
			}
			// Once the read model has it, every server refuses the client
			// within its credential cache's lifetime (a few seconds).
			if err := o.await(ctx, clientKnown(o, clientID, false)); err != nil {
				return fmt.Errorf("org credentials revoke: recorded, but the read model does not show it yet (a running server applies it soon): %w", err)
			}
			// Running servers forget their cached copy now; one that misses
			// the announcement refuses the client within its cache's lifetime.
			if err := httpapi.AnnounceCredentials(ctx, o.db.Pool, clientID); err != nil {
				log.Warn("credentials revoked; servers refuse them within a few seconds", "err", err)
			}
			list, err := queries.ListCredentials(ctx, o.db.Pool, id)
			if err != nil {
				return err
			}
			i := slices.IndexFunc(list, func(c queries.Credential) bool { return c.ClientID == clientID })
			if i < 0 {
				return fmt.Errorf("org credentials revoke: %s is not listed", clientID)
			}
			return json.NewEncoder(stdout).Encode(list[i])
		}
	})
}

// orgTools is what the org commands work with.
type orgTools struct {
	db    *database
	store *eventLog
}

// withOrganizations opens the migrated database and the event log for f,
// with the metadata naming the command line as the actor of its events.
func withOrganizations(ctx context.Context, cfg Config, log *slog.Logger, f func(context.Context, orgTools) error) error {
	db, store, err := openMigrated(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()
	defer store.Close()
	return f(es.WithMetadata(ctx, es.Metadata{Actor: "cli"}), orgTools{db: db, store: store})
}

// catchUp applies what the log holds to the organizations read model (safe
// while servers run: they do the same).
func (o orgTools) catchUp(ctx context.Context) error {
	return messaging.CatchUp(ctx, o.store, o.db.Pool, projections.Organizations{})
}

// resolve finds the organization ref names (its id or one of its client ids).
func (o orgTools) resolve(ctx context.Context, ref string) (uuid.UUID, error) {
	if err := o.catchUp(ctx); err != nil {
		return uuid.Nil, err
	}
	id, err := queries.ResolveOrganization(ctx, o.db.Pool, strings.TrimSpace(ref))
	if errors.Is(err, domain.ErrNotFound) {
		return uuid.Nil, fmt.Errorf("no organization has the id or client id %q (companin org list shows them)", ref)
	}
	return id, err
}

// await runs the organizations projection until done says the read model
// shows a change. A new event becomes readable once older transactions of
// the database server have ended, hence the loop.
func (o orgTools) await(ctx context.Context, done func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		if err := o.catchUp(ctx); err != nil {
			return err
		}
		ok, err := done(ctx)
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// clientKnown tells whether the API authenticates clientID (want true) or
// refuses it (want false).
func clientKnown(o orgTools, clientID string, want bool) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		_, err := queries.NewFindClientHandler(o.db.Pool).Handle(ctx, clientID)
		if err != nil && !errors.Is(err, queries.ErrClientNotFound) {
			return false, err
		}
		return (err == nil) == want, nil
	}
}

// originsAre tells whether the read model lists exactly origins for org.
func originsAre(o orgTools, org uuid.UUID, origins []string) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) {
		var got []string
		if err := o.db.Pool.QueryRow(ctx, `SELECT allowed_origins FROM organizations WHERE id = $1`, org).Scan(&got); err != nil {
			return false, err
		}
		return slices.Equal(got, origins), nil
	}
}
