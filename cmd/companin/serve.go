package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	httpapi "github.com/companin/companin/adapters/http"
	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/adapters/postgres/notify"
	"github.com/companin/companin/adapters/replies"
	"github.com/companin/companin/commands"
	"github.com/companin/companin/migrations"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// shutdownGrace bounds how long in-flight requests may take to finish after
// SIGINT or SIGTERM.
const shutdownGrace = 20 * time.Second

// scrubInterval is how often serve checks for destroyed subject keys whose
// old bytes still wait for a table rewrite (shred.PostgresKeys.Scrub).
const scrubInterval = 10 * time.Minute

// serve runs the API, the projections and the workers in one process until
// ctx ends (SIGINT, SIGTERM), then shuts down in order: stop accepting
// requests and let those in flight finish, stop the consumers (their
// checkpoints are committed with their work), close the store and the pool,
// stop the embedded PostgreSQL.
func serve(ctx context.Context, cfg Config, log *slog.Logger) error {
	db, err := openDatabase(ctx, cfg, log, false)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := migrations.Apply(ctx, db.Pool); err != nil {
		return err
	}
	// The process's one LISTEN connection: new events for the store's
	// waiters, checkpoints and jobs for the runtime, reply progress for the
	// hub. It runs with the consumers, and stops before the pool closes.
	listener := notify.New(db.Pool.Config().ConnConfig, log)
	store, err := openEventLog(ctx, cfg, db.Pool, listener, log)
	if err != nil {
		return err
	}
	defer store.Close()
	hub := replies.NewHub(db.Pool, log)
	listener.Subscribe(hub, replies.Channel)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	runtime := messaging.NewRuntime(store, db.Pool, messaging.WithLogger(log), messaging.WithRegisterer(reg),
		messaging.WithListener(listener),
		messaging.WithConcurrencyOf(commands.ReplyWorkerName, cfg.ReplyWorkers),
		messaging.WithConcurrencyOf(ingestionWorker, cfg.IngestWorkers))
	for _, p := range readModels() {
		runtime.AddProjection(p)
	}
	if err := addWorkers(runtime, cfg, store, db.Pool, hub, log); err != nil {
		return err
	}
	feed, closeFeed, err := newFeed(cfg.Feed, store.Sealed, db.Pool, listener, log, reg)
	if err != nil {
		return err
	}
	defer closeFeed()

	// The use cases, built once: every request shares them.
	app := httpapi.NewApp(store, db.Pool, store.Shred, time.Now)
	api := httpapi.New(httpapi.Deps{
		App:     &app,
		Store:   store,
		Pool:    db.Pool,
		Runtime: runtime,
		Config: httpapi.Config{
			RateLimitPerHour:      cfg.RateLimitPerHour,
			WidgetTokenPerClient:  cfg.WidgetTokenPerClient,
			WidgetTokenPerAddress: cfg.WidgetTokenPerAddress,
			JWTSecret:             cfg.JWTSecret,
			ReplyWait:             cfg.ReplyWait,
			MaxStreamsPerOrg:      cfg.MaxStreamsPerOrg,
			ReadYourWritesWait:    cfg.ReadYourWritesWait,
		},
		Metrics: reg,
		Logger:  log,
		Replies: hub,
	})

	listener.Subscribe(api.CredentialNews(), httpapi.CredentialsChannel)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s (COMPANIN_ADDR): %w", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	consumers, stopConsumers := context.WithCancel(context.WithoutCancel(ctx))
	defer stopConsumers()
	var wg sync.WaitGroup
	errc := make(chan error, 3)
	wg.Add(2)
	go func() { defer wg.Done(); listener.Run(consumers) }()
	go func() {
		defer wg.Done()
		if err := runtime.Run(consumers); err != nil && !errors.Is(err, context.Canceled) {
			errc <- fmt.Errorf("consumers: %w", err)
		}
	}()
	if feed != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := feed.Run(consumers); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("feed: %w", err)
			}
		}()
	}
	// Erasure makes a key unreadable at once; this removes its old bytes from
	// subject_keys' pages once no long transaction needs them (see shred.PostgresKeys).
	go store.Keys.ScrubEvery(consumers, scrubInterval, log.Warn)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	}()
	log.Info("companin is serving", "addr", ln.Addr().String(), "event_store", cfg.EventStore)

	var failure error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case failure = <-errc:
		log.Error("shutting down", "err", failure)
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("requests cut short", "err", err)
	}
	if err := api.ReturnQuota(sctx); err != nil {
		log.Warn("rate limit quota not returned", "err", err)
	}
	stopConsumers() // the consumers and the listener
	wg.Wait()
	log.Info("stopped")
	return failure
}
