package main

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := LoadConfig(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || c.DataDir != ".companin" || c.EventStore != "postgres" ||
		c.RateLimitPerHour != 1000 || c.WidgetTokenPerClient != 3000 || c.WidgetTokenPerAddress != 60 || c.ReplyWait != 30*time.Second ||
		c.ReadYourWritesWait != 2*time.Second || c.LLM.Timeout != 30*time.Second || c.FetchAllowPrivate || c.DatabaseURL != "" ||
		c.ReplyWorkers != 8 || c.IngestWorkers != 2 {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestLoadConfigReadsEverySetting(t *testing.T) {
	c, err := LoadConfig(env(map[string]string{
		"COMPANIN_ADDR": "127.0.0.1:9000", "DATABASE_URL": "postgres://u@h/db", "COMPANIN_DATA_DIR": "/var/lib/companin",
		"COMPANIN_EVENTSTORE": "esdb", "COMPANIN_ESDB_URL": "esdb://localhost:2113?tls=false",
		"COMPANIN_JWT_SECRET": strings.Repeat("s", 32), "COMPANIN_RATE_LIMIT_PER_HOUR": "50", "COMPANIN_REPLY_WAIT": "5",
		"COMPANIN_LLM_BASE_URL": "http://localhost:11434/v1", "COMPANIN_LLM_API_KEY": "k", "COMPANIN_LLM_MODEL": "m",
		"COMPANIN_FETCH_ALLOW_PRIVATE": "true", "COMPANIN_LLM_TIMEOUT": "90s", "COMPANIN_RYW_WAIT": "1500ms",
		"COMPANIN_WIDGET_TOKEN_PER_CLIENT": "500", "COMPANIN_WIDGET_TOKEN_PER_ADDRESS": "20",
		"COMPANIN_REPLY_WORKERS": "16", "COMPANIN_INGEST_WORKERS": "1",
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Addr: "127.0.0.1:9000", DatabaseURL: "postgres://u@h/db", DataDir: "/var/lib/companin", EventStore: "esdb",
		ESDBURL: "esdb://localhost:2113?tls=false", JWTSecret: strings.Repeat("s", 32), RateLimitPerHour: 50, ReplyWait: 5 * time.Second,
		LLM: LLMConfig{BaseURL: "http://localhost:11434/v1", APIKey: "k", Model: "m", Timeout: 90 * time.Second}, FetchAllowPrivate: true,
		WidgetTokenPerClient: 500, WidgetTokenPerAddress: 20, ReadYourWritesWait: 1500 * time.Millisecond,
		MaxStreamsPerOrg: 10, ReplyWorkers: 16, IngestWorkers: 1}
	if c != want {
		t.Fatalf("got  %+v\nwant %+v", c, want)
	}
}

func TestLoadConfigRejectsWhatCannotWork(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"rate limit":   {map[string]string{"COMPANIN_RATE_LIMIT_PER_HOUR": "lots"}, "COMPANIN_RATE_LIMIT_PER_HOUR"},
		"zero limit":   {map[string]string{"COMPANIN_RATE_LIMIT_PER_HOUR": "0"}, "COMPANIN_RATE_LIMIT_PER_HOUR"},
		"reply wait":   {map[string]string{"COMPANIN_REPLY_WAIT": "soon"}, "COMPANIN_REPLY_WAIT"},
		"ryw wait":     {map[string]string{"COMPANIN_RYW_WAIT": "0"}, "COMPANIN_RYW_WAIT"},
		"event store":  {map[string]string{"COMPANIN_EVENTSTORE": "kafka"}, "COMPANIN_EVENTSTORE"},
		"esdb no url":  {map[string]string{"COMPANIN_EVENTSTORE": "esdb"}, "COMPANIN_ESDB_URL"},
		"database url": {map[string]string{"DATABASE_URL": "mysql://x"}, "DATABASE_URL"},
		"llm model":    {map[string]string{"COMPANIN_LLM_BASE_URL": "http://x/v1"}, "COMPANIN_LLM_MODEL"},
		"fetch":        {map[string]string{"COMPANIN_FETCH_ALLOW_PRIVATE": "maybe"}, "COMPANIN_FETCH_ALLOW_PRIVATE"},
		"llm timeout":  {map[string]string{"COMPANIN_LLM_TIMEOUT": "0"}, "COMPANIN_LLM_TIMEOUT"},
		"short secret": {map[string]string{"COMPANIN_JWT_SECRET": "short"}, "COMPANIN_JWT_SECRET"},
		"token limit":  {map[string]string{"COMPANIN_WIDGET_TOKEN_PER_ADDRESS": "-1"}, "COMPANIN_WIDGET_TOKEN_PER_ADDRESS"},
		"no repliers":  {map[string]string{"COMPANIN_REPLY_WORKERS": "0"}, "COMPANIN_REPLY_WORKERS"},
		"ingesters":    {map[string]string{"COMPANIN_INGEST_WORKERS": "many"}, "COMPANIN_INGEST_WORKERS"},
		"too many":     {map[string]string{"COMPANIN_REPLY_WORKERS": "1000"}, "COMPANIN_REPLY_WORKERS"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := LoadConfig(env(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
}
