package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	esdbstore "github.com/companin/companin/adapters/eventstore/esdb"
	pgstore "github.com/companin/companin/adapters/eventstore/postgres"
	"github.com/companin/companin/adapters/eventstore/shred"
	"github.com/companin/companin/adapters/extract"
	"github.com/companin/companin/adapters/fetch"
	"github.com/companin/companin/adapters/llm"
	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/adapters/postgres/notify"
	"github.com/companin/companin/adapters/replies"
	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain/answer"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/knowledge"
	"github.com/companin/companin/projections"
	"github.com/jackc/pgx/v5/pgxpool"
)

// This file is the one place that knows every part of Companin: which event
// store, which read models, which workers. The commands build on it.

// eventLog is the event store every command uses, with crypto-shredding
// around the chosen adapter, and how to close it.
type eventLog struct {
	es.Store
	Shred *shred.Store
	// Keys are the subjects' keys; serve scrubs destroyed ones (ScrubEvery).
	Keys *shred.PostgresKeys
	// Sealed is the log as stored, personal fields encrypted: what leaves
	// the system in bulk (the NATS feed) reads it.
	Sealed es.Store
	close  func()
}

func (l *eventLog) Close() {
	if l.close != nil {
		l.close()
	}
}

// openEventLog builds the event store cfg chooses on a migrated database.
// Personal data is sealed on its way in whatever the adapter; the subjects'
// keys always live in PostgreSQL. The PostgreSQL store hears other
// processes' appends through listener, or through a connection of its own
// when listener is nil (short commands).
func openEventLog(ctx context.Context, cfg Config, pool *pgxpool.Pool, listener *notify.Listener, log *slog.Logger) (*eventLog, error) {
	var inner es.Store
	var closeInner func()
	switch cfg.EventStore {
	case eventStoreESDB:
		s, err := esdbstore.New(ctx, cfg.ESDBURL)
		if err != nil {
			return nil, fmt.Errorf("event store: EventStoreDB at %s: %w", cfg.ESDBURL, err)
		}
		inner, closeInner = s, func() { _ = s.Close() }
		log.Info("event store: EventStoreDB", "url", cfg.ESDBURL)
	default:
		var opts []pgstore.Option
		if listener != nil {
			opts = append(opts, pgstore.WithListener(listener))
		}
		s, err := pgstore.New(ctx, pool, opts...)
		if err != nil {
			return nil, fmt.Errorf("event store: %w", err)
		}
		inner, closeInner = s, s.Close
	}
	master, err := shred.ParseMasterKey(cfg.MasterKey)
	if err != nil {
		closeInner()
		return nil, fmt.Errorf("COMPANIN_MASTER_KEY: %w", err)
	}
	keys, err := shred.NewPostgresKeys(pool, master)
	if err != nil {
		closeInner()
		return nil, err
	}
	s := shred.New(inner, keys, shred.Redact(commands.PersonalFields()))
	return &eventLog{Store: s, Shred: s, Keys: keys, Sealed: inner, close: closeInner}, nil
}

// ingestionWorker is the knowledge ingestion worker's consumer name: never
// rename it (its jobs are kept under it).
const ingestionWorker = "knowledge-ingestion"

// addWorkers registers the shared workers with the runtime: knowledge
// ingestion (fetch and extract sources), and the reply worker, which
// publishes its progress through hub.
func addWorkers(rt *messaging.Runtime, cfg Config, store es.Store, pool *pgxpool.Pool, hub *replies.Hub, log *slog.Logger) error {
	// PDFium's compiled code is kept under the data directory: only the
	// first PDF ever read there pays for compiling it.
	if err := extract.UseCompilationCache(filepath.Join(cfg.DataDir, "pdfium-cache")); err != nil {
		log.Warn("PDF engine cache unavailable; PDFium is compiled once per process", "error", err)
	}
	ingest := commands.IngestKnowledgeHandler{
		Store:       store,
		Extract:     extract.File,
		ExtractPage: extract.Page,
		Fetch:       fetch.New(fetch.Config{AllowPrivate: cfg.FetchAllowPrivate}),
		Logger:      log,
	}
	rt.AddWorker(ingestionWorker, es.Filter{Types: knowledge.IngestionTriggers}, ingest.HandleEvent,
		messaging.OnParked(ingest.GiveUp)) // a parked job leaves its source failed, not processing

	engine, name := answerEngine(cfg.LLM)
	log.Info("answers", "engine", name)
	replies.Register(rt, replies.NewWorker(store, pool, engine, hub))
	return nil
}

// answerEngine is the OpenAI-compatible model cfg names (falling back to the
// embedded engine when it fails), or the embedded engine alone; name says
// which, for the startup log.
func answerEngine(cfg LLMConfig) (engine answer.StreamingEngine, name string) {
	if cfg.BaseURL == "" {
		return answer.NewEmbedded(), answer.EngineName
	}
	return llm.New(llm.Config{BaseURL: cfg.BaseURL, APIKey: cfg.APIKey, Model: cfg.Model, Timeout: cfg.Timeout}, answer.NewEmbedded()),
		fmt.Sprintf("%s (%s at %s)", llm.EngineName, cfg.Model, cfg.BaseURL)
}

// readModels lists every projection. serve runs them; `projections rebuild`
// replays them. Never rename one: the name is its checkpoint.
func readModels() []messaging.Projection {
	return []messaging.Projection{
		projections.Organizations{},
		projections.Assistants{},
		projections.Conversations{},
		projections.UserContexts{},
		projections.Knowledge{},
		projections.WidgetConfigs{},
	}
}
