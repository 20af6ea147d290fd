package natsfeed_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The analytics consumer of docs/analytics.md, as printed there: keep the two
// in step.

// Event is a Companin event as the feed publishes it (the JSON of GET /api/v1/events).
type Event struct {
	ID         string          `json:"id"`
	Stream     string          `json:"stream"`
	Version    uint64          `json:"version"`
	Position   string          `json:"position"`
	Type       string          `json:"type"`
	Data       json.RawMessage `json:"data"`
	Metadata   json.RawMessage `json:"metadata"`
	RecordedAt time.Time       `json:"recorded_at"`
}

// Replay reads the stream from its first message and then follows it live,
// calling handle for each event in log order, until ctx ends. The durable
// consumer remembers how far it got: run it again with the same name and it
// goes on from there; a new name replays from the start.
func Replay(ctx context.Context, url, stream, durable string, handle func(Event) error) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable:       durable,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		MaxAckPending: 1, // one at a time: log order, redeliveries included
	})
	if err != nil {
		return err
	}
	msgs, err := cons.Messages()
	if err != nil {
		return err
	}
	defer msgs.Stop()
	for {
		msg, err := msgs.Next(jetstream.NextContext(ctx))
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		var e Event
		if err := json.Unmarshal(msg.Data(), &e); err != nil {
			return err
		}
		if err := handle(e); err != nil {
			_ = msg.Nak() // delivered again
			return err
		}
		// Wait for the server to record the ack, so a restart goes on after it.
		if err := msg.DoubleAck(ctx); err != nil && ctx.Err() == nil {
			return err
		}
	}
}

func TestAnalyticsConsumerReplaysFromTheStartAndResumes(t *testing.T) {
	e := newEnv(t)
	org := newOrg()
	e.appendMany(t, 25, org, newOrg())
	f := e.newFeed(t, e.config())
	e.run(t, f)
	log := e.log(t)
	e.waitCaughtUp(t, f.Name(), log[len(log)-1].Position)

	consume := func(durable string, want int) []Event {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var mu sync.Mutex
		var got []Event
		done := make(chan error, 1)
		go func() {
			done <- Replay(ctx, natsURL(), e.stream, durable, func(ev Event) error {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, ev)
				return nil
			})
		}()
		// Until the consumer has acknowledged the whole stream.
		info, err := e.js.Stream(context.Background(), e.stream)
		if err != nil {
			t.Fatal(err)
		}
		last := info.CachedInfo().State.LastSeq
		deadline := time.Now().Add(time.Minute)
		for {
			c, err := e.js.Consumer(context.Background(), e.stream, durable)
			if err == nil {
				ci, err := c.Info(context.Background())
				if err == nil && ci.AckFloor.Stream >= last {
					break
				}
			} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				t.Fatalf("consumer stopped: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				mu.Lock()
				t.Fatalf("consumer %s acknowledged %d of %d events in a minute", durable, len(got), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Replay: %v", err)
		}
		if len(got) != want {
			t.Fatalf("consumer %s got %d events, want %d", durable, len(got), want)
		}
		return got
	}
	check := func(got []Event, want []string) {
		t.Helper()
		for i := range want {
			if got[i].ID != want[i] {
				t.Fatalf("event %d: %s, want %s", i, got[i].ID, want[i])
			}
		}
	}
	ids := func(from int) []string {
		var out []string
		for _, ev := range log[from:] {
			out = append(out, ev.ID.String())
		}
		return out
	}

	got := consume("warehouse", len(log))
	check(got, ids(0))
	if got[0].Type == "" || len(got[0].Data) == 0 || got[0].Position != string(log[0].Position) {
		t.Errorf("first event decoded as %+v", got[0])
	}

	// New events: the same consumer goes on after what it acknowledged.
	before := len(log)
	e.appendMany(t, 5, org)
	log = e.log(t)
	e.waitCaughtUp(t, f.Name(), log[len(log)-1].Position)
	check(consume("warehouse", len(log)-before), ids(before))

	// Another consumer replays everything from the start.
	check(consume("audit", len(log)), ids(0))
}

// The guide shows the consumer tested above, character for character.
func TestAnalyticsGuideShowsTheTestedConsumer(t *testing.T) {
	src, err := os.ReadFile("consumer_test.go")
	if err != nil {
		t.Fatal(err)
	}
	guide, err := os.ReadFile("../../docs/analytics.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	from := strings.Index(s, "// Event is a Companin event")
	fn := strings.Index(s, "func Replay(")
	end := strings.Index(s[fn:], "\n}\n")
	if from < 0 || fn < 0 || end < 0 {
		t.Fatal("consumer_test.go: Event and Replay not found")
	}
	code := s[from : fn+end+2]
	if !strings.Contains(string(guide), code) {
		t.Fatalf("docs/analytics.md does not show the tested consumer; it should contain:\n%s", code)
	}
}
