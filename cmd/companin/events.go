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
	"time"

	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
)

// exportedEvent is one line of `companin events export`, in the shape of
// GET /api/v1/events.
type exportedEvent struct {
	ID            uuid.UUID       `json:"id"`
	Stream        string          `json:"stream"`
	Version       uint64          `json:"version"`
	Position      es.Position     `json:"position"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	Data          json.RawMessage `json:"data"`
	Metadata      es.Metadata     `json:"metadata"`
	RecordedAt    time.Time       `json:"recorded_at"`
}

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
			data := e.Data
			if len(data) == 0 {
				data = json.RawMessage("null")
			}
			if err := enc.Encode(exportedEvent{
				ID: e.ID, Stream: e.Stream, Version: e.Version, Position: e.Position, Type: e.Type,
				SchemaVersion: e.SchemaVersion, Data: data, Metadata: e.Metadata, RecordedAt: e.RecordedAt.UTC(),
			}); err != nil {
				return n, err
			}
			n++
		}
		pos = events[len(events)-1].Position
	}
	return n, out.Flush()
}
