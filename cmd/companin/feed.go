package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/adapters/natsfeed"
	"github.com/companin/companin/adapters/postgres/notify"
	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain/es"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// FeedConfig is the live feed of the log to NATS JetStream, for analytics
// teams: COMPANIN_FEED_NATS_URL (unset: no feed), COMPANIN_FEED_STREAM
// (default COMPANIN_EVENTS) and COMPANIN_FEED_SUBJECT_PREFIX (default
// companin.events).
type FeedConfig struct {
	NATSURL       string
	Stream        string
	SubjectPrefix string
}

func loadFeedConfig(get func(name, def string) string) (FeedConfig, []error) {
	c := FeedConfig{NATSURL: get("COMPANIN_FEED_NATS_URL", "")}
	if c.NATSURL == "" {
		return FeedConfig{}, nil // no feed: the other two do not matter
	}
	c.Stream = get("COMPANIN_FEED_STREAM", natsfeed.DefaultStream)
	c.SubjectPrefix = get("COMPANIN_FEED_SUBJECT_PREFIX", natsfeed.DefaultSubjectPrefix)
	var errs []error
	for _, one := range strings.Split(c.NATSURL, ",") {
		u, err := url.Parse(strings.TrimSpace(one))
		if err != nil || u.Host == "" || (u.Scheme != "nats" && u.Scheme != "tls" && u.Scheme != "ws" && u.Scheme != "wss") {
			errs = append(errs, errors.New("COMPANIN_FEED_NATS_URL: want nats://host:port (or tls://, ws://, wss://; comma-separated for several)"))
			break
		}
	}
	if err := (natsfeed.Config{URL: c.NATSURL, Stream: c.Stream}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("COMPANIN_FEED_STREAM: %w", err))
	}
	if err := (natsfeed.Config{URL: c.NATSURL, SubjectPrefix: c.SubjectPrefix}).Validate(); err != nil {
		errs = append(errs, fmt.Errorf("COMPANIN_FEED_SUBJECT_PREFIX: %w", err))
	}
	return c, errs
}

// newFeed builds the NATS feed in a consumer runtime of its own, reading the
// log as stored (personal fields sealed), or nil when no feed is configured.
// Its own runtime keeps the broker out of read-your-writes and /readyz: API
// writes wait for the projections, never for NATS. Close it after its Run
// returned. Its runtime hears other processes through listener, the process's.
func newFeed(cfg FeedConfig, sealed es.Store, pool *pgxpool.Pool, listener *notify.Listener, log *slog.Logger, reg prometheus.Registerer) (*messaging.Runtime, func(), error) {
	if cfg.NATSURL == "" {
		return nil, func() {}, nil
	}
	feed, err := natsfeed.New(natsfeed.Config{
		URL: cfg.NATSURL, Stream: cfg.Stream, SubjectPrefix: cfg.SubjectPrefix, Logger: log, Registerer: reg,
		Personal: commands.PersonalFields(),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("COMPANIN_FEED_NATS_URL: %w", err)
	}
	rt := messaging.NewRuntime(sealed, pool, messaging.WithLogger(log), messaging.WithRegisterer(reg), messaging.WithListener(listener))
	rt.AddProjection(feed)
	log.Info("feed: publishing the event log to NATS JetStream", "stream", cfg.Stream, "subjects", cfg.SubjectPrefix+".<organization>.<type>")
	return rt, func() { _ = feed.Close() }, nil
}
