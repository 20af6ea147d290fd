package main

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is every setting of the server, read once from the environment at
// start, so that nothing else in the program reads environment variables.
type Config struct {
	// Addr is where the HTTP server listens (COMPANIN_ADDR, default :8080).
	Addr string
	// DatabaseURL names the PostgreSQL to use (DATABASE_URL). Empty: an
	// embedded PostgreSQL under DataDir, started and stopped with the process.
	DatabaseURL string
	// DataDir holds the embedded PostgreSQL (COMPANIN_DATA_DIR, default ./.companin).
	DataDir string
	// EventStore chooses the event log: "postgres" (default) or "esdb"
	// (COMPANIN_EVENTSTORE), the latter at ESDBURL (COMPANIN_ESDB_URL).
	EventStore string
	ESDBURL    string
	// JWTSecret signs widget tokens (COMPANIN_JWT_SECRET). Empty: a key kept
	// in the database, shared by every instance.
	JWTSecret string
	// RateLimitPerHour is the requests per organization and hour, over all
	// instances (COMPANIN_RATE_LIMIT_PER_HOUR, default 1000).
	RateLimitPerHour int
	// WidgetTokenPerClient and WidgetTokenPerAddress bound the widget tokens
	// issued per minute per client id and per client address, apart from
	// the organization's budget (COMPANIN_WIDGET_TOKEN_PER_CLIENT, default
	// 3000; COMPANIN_WIDGET_TOKEN_PER_ADDRESS, default 60).
	WidgetTokenPerClient, WidgetTokenPerAddress int
	// ReplyWait is how long POST .../messages waits for the answer
	// (COMPANIN_REPLY_WAIT, a Go duration or seconds, default 30s).
	ReplyWait time.Duration
	// ReadYourWritesWait bounds how long a write waits for the read models
	// before it answers anyway, with Companin-Read-Models: behind
	// (COMPANIN_RYW_WAIT, a Go duration or seconds, default 2s).
	ReadYourWritesWait time.Duration
	// LLM is the OpenAI-compatible server that writes answers; without a
	// base URL answers come from the knowledge base alone.
	LLM LLMConfig
	// MasterKey seals the data subjects' keys at rest (COMPANIN_MASTER_KEY,
	// 32 bytes as hex or base64; optional).
	MasterKey string
	// FetchAllowPrivate lets knowledge URLs point at private and loopback
	// addresses (COMPANIN_FETCH_ALLOW_PRIVATE, default false).
	FetchAllowPrivate bool
	// MaxStreamsPerOrg bounds the event streams (SSE tails and NDJSON
	// exports) one organization keeps open on one instance
	// (COMPANIN_MAX_STREAMS_PER_ORG, default 10).
	MaxStreamsPerOrg int
	// Feed publishes the log to NATS JetStream (COMPANIN_FEED_*, feed.go).
	Feed FeedConfig
	// ReplyWorkers and IngestWorkers are how many replies and how many
	// knowledge ingestions one process works on at once
	// (COMPANIN_REPLY_WORKERS, default 8; COMPANIN_INGEST_WORKERS, default
	// 2). Each kind has its own slots, so that documents being read never
	// keep a customer waiting for an answer.
	ReplyWorkers, IngestWorkers int
}

// LLMConfig is COMPANIN_LLM_BASE_URL, COMPANIN_LLM_API_KEY,
// COMPANIN_LLM_MODEL and COMPANIN_LLM_TIMEOUT (one attempt, default 30s).
type LLMConfig struct {
	BaseURL string
	APIKey  string
	Model   string
	Timeout time.Duration
}

// maxWorkers bounds COMPANIN_REPLY_WORKERS and COMPANIN_INGEST_WORKERS:
// each job holds a database connection at times, and the pool has 20.
const maxWorkers = 64

// Event store choices.
const (
	eventStorePostgres = "postgres"
	eventStoreESDB     = "esdb"
)

// LoadConfig parses the settings from getenv (os.Getenv in main), applying
// defaults and rejecting values that cannot work, all errors at once.
func LoadConfig(getenv func(string) string) (Config, error) {
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	c := Config{
		Addr:        get("COMPANIN_ADDR", ":8080"),
		DatabaseURL: get("DATABASE_URL", ""),
		DataDir:     get("COMPANIN_DATA_DIR", ".companin"),
		EventStore:  strings.ToLower(get("COMPANIN_EVENTSTORE", eventStorePostgres)),
		ESDBURL:     get("COMPANIN_ESDB_URL", ""),
		JWTSecret:   getenv("COMPANIN_JWT_SECRET"),
		MasterKey:   getenv("COMPANIN_MASTER_KEY"),
		LLM: LLMConfig{
			BaseURL: get("COMPANIN_LLM_BASE_URL", ""),
			APIKey:  getenv("COMPANIN_LLM_API_KEY"),
			Model:   get("COMPANIN_LLM_MODEL", ""),
		},
	}
	var errs []error
	var err error
	var feedErrs []error
	c.Feed, feedErrs = loadFeedConfig(get)
	errs = append(errs, feedErrs...)
	if c.RateLimitPerHour, err = strconv.Atoi(get("COMPANIN_RATE_LIMIT_PER_HOUR", "1000")); err != nil || c.RateLimitPerHour <= 0 {
		errs = append(errs, fmt.Errorf("COMPANIN_RATE_LIMIT_PER_HOUR: want a positive whole number, got %q", getenv("COMPANIN_RATE_LIMIT_PER_HOUR")))
	}
	for _, l := range []struct {
		name, def string
		into      *int
	}{
		{"COMPANIN_WIDGET_TOKEN_PER_CLIENT", "3000", &c.WidgetTokenPerClient},
		{"COMPANIN_WIDGET_TOKEN_PER_ADDRESS", "60", &c.WidgetTokenPerAddress},
	} {
		if *l.into, err = strconv.Atoi(get(l.name, l.def)); err != nil || *l.into <= 0 {
			errs = append(errs, fmt.Errorf("%s: want a positive whole number (per minute), got %q", l.name, getenv(l.name)))
		}
	}
	for _, w := range []struct {
		name, def string
		into      *int
	}{
		{"COMPANIN_REPLY_WORKERS", "8", &c.ReplyWorkers},
		{"COMPANIN_INGEST_WORKERS", "2", &c.IngestWorkers},
	} {
		if *w.into, err = strconv.Atoi(get(w.name, w.def)); err != nil || *w.into <= 0 || *w.into > maxWorkers {
			errs = append(errs, fmt.Errorf("%s: want a whole number from 1 to %d (jobs at once per process), got %q", w.name, maxWorkers, getenv(w.name)))
		}
	}
	if c.ReplyWait, err = parseDuration(get("COMPANIN_REPLY_WAIT", "30s")); err != nil {
		errs = append(errs, fmt.Errorf("COMPANIN_REPLY_WAIT: %w", err))
	}
	if c.ReadYourWritesWait, err = parseDuration(get("COMPANIN_RYW_WAIT", "2s")); err != nil || c.ReadYourWritesWait == 0 {
		errs = append(errs, fmt.Errorf("COMPANIN_RYW_WAIT: want a positive duration such as 2s, got %q", getenv("COMPANIN_RYW_WAIT")))
	}
	if c.LLM.Timeout, err = parseDuration(get("COMPANIN_LLM_TIMEOUT", "30s")); err != nil || c.LLM.Timeout == 0 {
		errs = append(errs, fmt.Errorf("COMPANIN_LLM_TIMEOUT: want a positive duration such as 30s, got %q", getenv("COMPANIN_LLM_TIMEOUT")))
	}
	if c.FetchAllowPrivate, err = strconv.ParseBool(get("COMPANIN_FETCH_ALLOW_PRIVATE", "false")); err != nil {
		errs = append(errs, fmt.Errorf("COMPANIN_FETCH_ALLOW_PRIVATE: want true or false, got %q", getenv("COMPANIN_FETCH_ALLOW_PRIVATE")))
	}
	if c.MaxStreamsPerOrg, err = strconv.Atoi(get("COMPANIN_MAX_STREAMS_PER_ORG", "10")); err != nil || c.MaxStreamsPerOrg <= 0 {
		errs = append(errs, fmt.Errorf("COMPANIN_MAX_STREAMS_PER_ORG: want a positive whole number, got %q", getenv("COMPANIN_MAX_STREAMS_PER_ORG")))
	}
	switch c.EventStore {
	case eventStorePostgres:
	case eventStoreESDB:
		if c.ESDBURL == "" {
			errs = append(errs, errors.New("COMPANIN_EVENTSTORE=esdb needs COMPANIN_ESDB_URL (e.g. esdb://localhost:2113?tls=false)"))
		}
	default:
		errs = append(errs, fmt.Errorf("COMPANIN_EVENTSTORE: want postgres or esdb, got %q", c.EventStore))
	}
	if c.DatabaseURL != "" {
		if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			errs = append(errs, errors.New("DATABASE_URL: want postgres://user:password@host:port/database"))
		}
	}
	if c.LLM.BaseURL != "" {
		if u, err := url.Parse(c.LLM.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("COMPANIN_LLM_BASE_URL: want an http(s) URL, got %q", c.LLM.BaseURL))
		}
		if c.LLM.Model == "" {
			errs = append(errs, errors.New("COMPANIN_LLM_BASE_URL is set: COMPANIN_LLM_MODEL must name the model"))
		}
	}
	if c.JWTSecret != "" && len(c.JWTSecret) < 32 {
		errs = append(errs, errors.New("COMPANIN_JWT_SECRET: use at least 32 characters"))
	}
	return c, errors.Join(errs...)
}

// parseDuration takes a Go duration ("30s", "1m") or plain seconds ("30").
func parseDuration(s string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("want a duration of zero or more, got %q", s)
		}
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("want a duration such as 30s, got %q", s)
	}
	return d, nil
}
