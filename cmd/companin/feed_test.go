package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// testNATS connects to the machine's NATS server (JetStream on; .ci/run
// starts it) and returns a stream name and subject prefix of the test's own,
// deleted when the test ends.
func testNATS(t *testing.T) (url string, js jetstream.JetStream, stream, prefix string) {
	t.Helper()
	url = os.Getenv("COMPANIN_TEST_NATS_URL")
	if url == "" {
		url = "nats://127.0.0.1:4222"
	}
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("no NATS server at %s (%v): start one with JetStream, e.g. nats-server -a 127.0.0.1 -p 4222 -js (.ci/run does)", url, err)
	}
	if js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	stream, prefix = "TEST_CRASH_"+id, "companintest."+id+".events"
	t.Cleanup(func() {
		if err := js.DeleteStream(context.Background(), stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Logf("delete stream %s: %v", stream, err)
		}
		nc.Close()
	})
	return url, js, stream, prefix
}

// streamCount is how many messages the stream holds (0 before it exists).
func streamCount(t *testing.T, js jetstream.JetStream, stream string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestSIGKILLMidFeedLeavesEveryEventInTheStreamOnceInLogOrder kills `serve`
// with SIGKILL while its NATS feed publishes a backlog and clients keep
// writing, restarts it, and checks that the stream holds every event of the
// log exactly once, in log order, on its subject.
func TestSIGKILLMidFeedLeavesEveryEventInTheStreamOnceInLogOrder(t *testing.T) {
	start := time.Now()
	phase := func(what string) { t.Logf("%5.1fs %s", time.Since(start).Seconds(), what) }
	url, js, stream, prefix := testNATS(t)
	in := newInstance(t)
	org := in.createOrg("Feed")

	var written atomic.Int64
	write := func(stop <-chan struct{}, writers int) *sync.WaitGroup {
		var wg sync.WaitGroup
		client := &http.Client{Timeout: 30 * time.Second}
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					if _, status := post(client, in.addr+"/api/v1/assistants/", org, map[string]any{"name": fmt.Sprintf("feed-%d-%d", w, i)}); status/100 == 2 {
						written.Add(1)
					}
				}
			}(w)
		}
		return &wg
	}

	// A backlog, written while no feed runs.
	first := in.serve()
	in.waitReady()
	stop := make(chan struct{})
	wg := write(stop, 8)
	for written.Load() < 400 {
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	_ = first.cmd.Process.Kill()
	<-first.done
	first.done <- nil
	phase(fmt.Sprintf("backlog of %d assistants written without a feed", written.Load()))

	// The feed starts on the backlog, writes go on; SIGKILL mid-feed.
	in.env = append(in.env, "COMPANIN_FEED_NATS_URL="+url, "COMPANIN_FEED_STREAM="+stream, "COMPANIN_FEED_SUBJECT_PREFIX="+prefix)
	second := in.serve()
	stop = make(chan struct{})
	wg = write(stop, 4)
	deadline := time.Now().Add(2 * time.Minute)
	for streamCount(t, js, stream) < 100 {
		if time.Now().After(deadline) {
			t.Fatalf("the feed published %d messages in two minutes", streamCount(t, js, stream))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := second.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-second.done
	second.done <- nil
	close(stop)
	wg.Wait()
	atKill := streamCount(t, js, stream)
	logged := len(in.export())
	phase(fmt.Sprintf("SIGKILL with %d messages in the stream, %d events in the log", atKill, logged))
	if atKill >= uint64(logged) {
		t.Errorf("the feed had published the whole log (%d events) before the kill: not a kill mid-feed", logged)
	}

	// Restarted, the feed publishes the rest, and nothing twice.
	in.serve()
	in.waitReady()
	events := in.export()
	deadline = time.Now().Add(3 * time.Minute)
	for streamCount(t, js, stream) < uint64(len(events)) {
		if time.Now().After(deadline) {
			t.Fatalf("the stream has %d messages, the log %d events, three minutes after the restart", streamCount(t, js, stream), len(events))
		}
		time.Sleep(50 * time.Millisecond)
	}
	phase(fmt.Sprintf("feed caught up after the restart: %d events", len(events)))

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(len(events)) || info.State.FirstSeq != 1 || info.State.LastSeq != uint64(len(events)) {
		t.Fatalf("stream holds %d messages (sequences %d-%d), the log %d events", info.State.Msgs, info.State.FirstSeq, info.State.LastSeq, len(events))
	}
	seen := map[string]bool{}
	for i, e := range events {
		m, err := s.GetMsg(ctx, uint64(i+1))
		if err != nil {
			t.Fatalf("message %d: %v", i+1, err)
		}
		id := m.Header.Get(nats.MsgIdHdr)
		if seen[id] {
			t.Fatalf("event %s twice in the stream", id)
		}
		seen[id] = true
		if id != e.ID {
			t.Fatalf("message %d is event %s, the log has %s (%s) there", i+1, id, e.ID, e.Type)
		}
		org := e.Metadata.OrganizationID
		if org == "" {
			org = "none"
		}
		if want := prefix + "." + org + "." + e.Type; m.Subject != want {
			t.Fatalf("event %s on %s, want %s", e.ID, m.Subject, want)
		}
		if !strings.Contains(string(m.Data), `"id":"`+e.ID+`"`) {
			t.Fatalf("message %d body %.200s is not event %s", i+1, m.Data, e.ID)
		}
	}
}

func TestFeedSettingsAreCheckedAtStart(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"COMPANIN_FEED_NATS_URL": "http://127.0.0.1:4222"}, "COMPANIN_FEED_NATS_URL"},
		{map[string]string{"COMPANIN_FEED_NATS_URL": "nats://127.0.0.1:4222", "COMPANIN_FEED_STREAM": "my.stream"}, "COMPANIN_FEED_STREAM"},
		{map[string]string{"COMPANIN_FEED_NATS_URL": "nats://127.0.0.1:4222", "COMPANIN_FEED_SUBJECT_PREFIX": "events.>"}, "COMPANIN_FEED_SUBJECT_PREFIX"},
		{map[string]string{"COMPANIN_FEED_NATS_URL": "nats://127.0.0.1:4222", "COMPANIN_FEED_SUBJECT_PREFIX": "a..b"}, "COMPANIN_FEED_SUBJECT_PREFIX"},
	} {
		_, err := LoadConfig(func(k string) string { return tc.env[k] })
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error naming %s", tc.env, err, tc.want)
		}
	}
	cfg, err := LoadConfig(func(k string) string {
		return map[string]string{"COMPANIN_FEED_NATS_URL": "nats://a:4222,nats://b:4222"}[k]
	})
	if err != nil || cfg.Feed.NATSURL != "nats://a:4222,nats://b:4222" || cfg.Feed.Stream != "COMPANIN_EVENTS" || cfg.Feed.SubjectPrefix != "companin.events" {
		t.Fatalf("%+v %v", cfg.Feed, err)
	}
	if cfg, err := LoadConfig(func(string) string { return "" }); err != nil || cfg.Feed.NATSURL != "" {
		t.Fatalf("no feed by default: %+v %v", cfg.Feed, err)
	}
}

// TestServeAnswersWritesWhileTheFeedsBrokerIsDown: the feed runs beside the
// projections, so API writes and /readyz never wait for NATS; the feed says
// why it is stuck and keeps its place.
func TestServeAnswersWritesWhileTheFeedsBrokerIsDown(t *testing.T) {
	in := newInstance(t)
	in.env = append(in.env, "COMPANIN_FEED_NATS_URL=nats://"+freeAddr(t), "COMPANIN_FEED_STREAM=TEST_DOWN")
	org := in.createOrg("Down")
	in.serve()
	in.waitReady()
	for i := 0; i < 3; i++ {
		status, body := in.request("POST", "/api/v1/assistants/", org, map[string]any{"name": fmt.Sprintf("a%d", i)})
		if status != http.StatusCreated {
			t.Fatalf("POST /api/v1/assistants/ with NATS down: %d %s", status, body)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var pos string
		var lastErr *string
		c, err := pgx.Connect(context.Background(), in.db)
		if err != nil {
			t.Fatal(err)
		}
		err = c.QueryRow(context.Background(), `SELECT position, last_error FROM consumer_checkpoints WHERE name = 'nats-feed:TEST_DOWN'`).Scan(&pos, &lastErr)
		c.Close(context.Background())
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			t.Fatal(err)
		}
		if pos != "" {
			t.Fatalf("the feed's checkpoint moved to %q with no NATS server", pos)
		}
		if lastErr != nil && strings.Contains(*lastErr, "not connected") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the feed recorded no failure saying NATS is not connected (last error %q)", deref(lastErr))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
