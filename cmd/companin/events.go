package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/companin/companin/adapters/eventjson"
	"github.com/companin/companin/domain/es"
)

// eventsCommand is `companin events export`: the global log, in order, one
// JSON object per line on stdout. --after resumes after a position printed
// earlier. Personal data reads as the API shows it: null once erased.
func eventsCommand(ctx context.Context, cfg Config, log *slog.Logger, args []string, stdout, stderr io.Writer) error {
	rest, err := subcommand("events", args, "export")
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("events export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	after := fs.String("after", "", "export only events after this position (the position field of an exported event)")
	var types, streams stringList
	fs.Var(&types, "types", "only these event types (comma-separated; repeatable)")
	fs.Var(&streams, "stream", "only this stream (repeatable)")
	org := fs.String("organization", "", "only events of this organization id")
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: events export: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: events export: unexpected arguments %q", errUsage, fs.Args())
	}
	filter := es.Filter{Streams: streams, OrganizationID: *org}
	for _, t := range types {
		for _, one := range strings.Split(t, ",") {
			if one = strings.TrimSpace(one); one != "" {
				filter.Types = append(filter.Types, one)
			}
		}
	}

	db, store, err := openMigrated(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer db.Close()
	defer store.Close()
	n, err := exportEvents(ctx, store, es.Position(*after), filter, stdout)
	if err != nil {
		return fmt.Errorf("events export: after %d events: %w", n, err)
	}
	log.Info("exported", "events", n)
	return nil
}

// exportEvents pages through the log after pos and writes each event that
// passes filter as one line.
func exportEvents(ctx context.Context, store es.Store, pos es.Position, filter es.Filter, w io.Writer) (int, error) {
	out := bufio.NewWriter(w)
	enc := json.NewEncoder(out)
	n := 0
	for {
		events, err := store.ReadAll(ctx, pos, 1000, filter)
		if err != nil {
			return n, err
		}
		if len(events) == 0 {
			break
		}
		for _, e := range events {
			// The shape of GET /api/v1/events and the NATS feed.
			if err := enc.Encode(eventjson.From(e)); err != nil {
				return n, err
			}
			n++
		}
		pos = events[len(events)-1].Position
	}
	return n, out.Flush()
}
