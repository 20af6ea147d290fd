package natsfeed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/companin/companin/adapters/eventjson"
	"github.com/companin/companin/adapters/messaging"
	"github.com/companin/companin/domain/es"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Config.
const (
	DefaultStream          = "COMPANIN_EVENTS"
	DefaultSubjectPrefix   = "companin.events"
	DefaultDuplicateWindow = 10 * time.Minute
	DefaultPublishTimeout  = 10 * time.Second
)

// Headers of every message, besides Nats-Msg-Id (the event id). Consumers may
// route on them without decoding the body.
const (
	HeaderEventType     = "Companin-Event-Type"
	HeaderOrganization  = "Companin-Organization"
	HeaderStream        = "Companin-Stream"
	HeaderStreamVersion = "Companin-Stream-Version"
	// HeaderPosition is the event's position in the log; the feed reads it
	// back from the stream's last message to know where the stream ends.
	HeaderPosition = "Companin-Position"
	// HeaderDataOmitted, when present, says why "data" is null: the event was
	// larger than the server accepts.
	HeaderDataOmitted = "Companin-Data-Omitted"
)

// noOrganization is the subject token of events that belong to no organization.
const noOrganization = "none"

// headerBudget is room kept for the headers when checking a message's size.
const headerBudget = 1024

// Config says where to publish. Only URL is required.
type Config struct {
	// URL of the NATS server(s), e.g. nats://127.0.0.1:4222 (comma-separated for several).
	URL string
	// Stream is the JetStream stream (DefaultStream). The feed's checkpoint
	// is named after it: a new stream name publishes the whole log again.
	Stream string
	// SubjectPrefix comes before .<organization>.<type> (DefaultSubjectPrefix).
	SubjectPrefix string
	// DuplicateWindow is the stream's Nats-Msg-Id window (DefaultDuplicateWindow).
	DuplicateWindow time.Duration
	// PublishTimeout bounds one publish and its acknowledgement, and each
	// stream lookup (DefaultPublishTimeout). Keep it well under the
	// consumer transaction's idle timeout (30s).
	PublishTimeout time.Duration
	// Logger; nil: slog.Default().
	Logger *slog.Logger
	// Registerer gets the feed's counters; nil: none.
	Registerer prometheus.Registerer
	// Personal lists, per event type, the fields that name or describe the
	// event's subject today (commands.PersonalFields). Events written before
	// a field was listed hold it in the clear: the feed publishes null for
	// such a value (and names it in metadata.extra.withheld), so that
	// nothing personal reaches the stream readable.
	Personal map[string][]string
}

func (c Config) withDefaults() Config {
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = DefaultSubjectPrefix
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = DefaultDuplicateWindow
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = DefaultPublishTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate checks the names before anything connects.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if strings.TrimSpace(c.URL) == "" {
		errs = append(errs, errors.New("natsfeed: no NATS URL"))
	}
	if strings.ContainsAny(c.Stream, " \t\r\n.*>/\\") {
		errs = append(errs, fmt.Errorf("natsfeed: stream name %q: no spaces, dots, '*', '>' or slashes", c.Stream))
	}
	for _, tok := range strings.Split(c.SubjectPrefix, ".") {
		if !validToken(tok) {
			errs = append(errs, fmt.Errorf("natsfeed: subject prefix %q: want dot-separated tokens without spaces, '*' or '>'", c.SubjectPrefix))
			break
		}
	}
	return errors.Join(errs...)
}

// Feed publishes events to JetStream. It implements messaging.Projection:
// add it to a messaging.Runtime, which feeds it the log in order from its
// checkpoint. Build it with New; Close it after the runtime stopped.
type Feed struct {
	cfg     Config
	log     *slog.Logger
	nc      *nats.Conn
	js      jetstream.JetStream
	pub     *wmnats.Publisher
	metrics *metrics

	mu      sync.Mutex
	stream  jetstream.Stream // nil until the stream is ensured
	maxSize int64            // the stream's max_msg_size, or -1
	end     *streamEnd       // where the stream ends; nil: read it again
}

// streamEnd is the stream's last message as far as the feed knows.
type streamEnd struct {
	seq uint64
	// position is the log position of the last message; empty when the
	// stream is empty or its last message is gone (limits).
	position es.Position
}

// New connects to NATS. It does not wait for the server: while the server is
// unreachable, publishing fails and the runtime retries.
func New(cfg Config) (*Feed, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	log := cfg.Logger.With("feed", cfg.Stream)
	nc, err := nats.Connect(cfg.URL,
		nats.Name("companin feed"),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("natsfeed: disconnected from NATS", "error", err)
			}
		}),
		nats.ConnectHandler(func(*nats.Conn) { log.Info("natsfeed: connected to NATS") }),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("natsfeed: connected to NATS again") }),
	)
	if err != nil {
		return nil, fmt.Errorf("natsfeed: connect: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("natsfeed: %w", err)
	}
	pub, err := wmnats.NewPublisherWithNatsConn(nc, wmnats.PublisherPublishConfig{
		Marshaler:         &wmnats.NATSMarshaler{},
		SubjectCalculator: wmnats.DefaultSubjectCalculator,
		JetStream: wmnats.JetStreamConfig{
			// Nats-Msg-Id = the watermill message's UUID = the event id.
			TrackMsgId:     true,
			ConnectOptions: []nats.JSOpt{nats.MaxWait(cfg.PublishTimeout)},
			PublishOptions: []nats.PubOpt{nats.ExpectStream(cfg.Stream)},
		},
	}, watermill.NewSlogLogger(log))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("natsfeed: publisher: %w", err)
	}
	return &Feed{cfg: cfg, log: log, nc: nc, js: js, pub: pub, metrics: newMetrics(cfg.Registerer)}, nil
}

// Name is the feed's checkpoint: one per stream. Never rename it.
func (f *Feed) Name() string { return "nats-feed:" + f.cfg.Stream }

// Stream is the name of the JetStream stream the feed writes.
func (f *Feed) Stream() string { return f.cfg.Stream }

// Close closes the connection. Call it after the runtime stopped.
func (f *Feed) Close() error { return f.pub.Close() }

// Reset refuses: a feed is not a read model. Published messages cannot be
// taken back; see the package doc for publishing the log again.
func (f *Feed) Reset(context.Context, pgx.Tx) error {
	return errors.New("natsfeed: a feed cannot be rebuilt; publish into a new stream instead")
}

// Handle publishes e and returns once JetStream has stored it (or it was
// there already); the runtime then commits the checkpoint. An error is
// retried by the runtime. tx is used only to park an event that cannot be
// published.
func (f *Feed) Handle(ctx context.Context, tx pgx.Tx, e es.Event) error {
	subject, payload, reason := f.encode(e)
	if reason != "" {
		return f.park(ctx, tx, e, reason)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.prepare(ctx); err != nil {
		return fmt.Errorf("%w: %w", messaging.ErrTransient, err)
	}
	if f.end.position != "" && !e.Position.After(f.end.position) {
		// Published before a crash, before its checkpoint committed, or by
		// a leader that has not noticed it lost the lock.
		return nil
	}
	msg := message.NewMessage(e.ID.String(), payload)
	msg.Metadata.Set(HeaderEventType, e.Type)
	msg.Metadata.Set(HeaderOrganization, organization(e))
	msg.Metadata.Set(HeaderStream, e.Stream)
	msg.Metadata.Set(HeaderStreamVersion, strconv.FormatUint(e.Version, 10))
	msg.Metadata.Set(HeaderPosition, string(e.Position))
	msg.Metadata.Set("Content-Type", "application/json")
	if limit := f.limit(); limit > 0 && int64(len(payload))+headerBudget > limit {
		v := eventjson.From(e)
		v.Data = json.RawMessage("null")
		msg.Payload, _ = json.Marshal(v) // it encoded whole above
		msg.Metadata.Set(HeaderDataOmitted, fmt.Sprintf(
			"the event is %d bytes, more than the %d the NATS server accepts; read it from GET /api/v1/events?stream=%s",
			len(payload), limit, e.Stream))
		f.metrics.omitted(f.cfg.Stream)
		f.log.Warn("natsfeed: event too large, published without its data", "event_id", e.ID, "event_type", e.Type, "bytes", len(payload), "limit", limit)
	}
	// The stream must end where the feed believes it does: a stale belief
	// (another leader published, an acknowledgement was lost) fails here
	// instead of storing the event twice or out of order.
	msg.Metadata.Set(nats.ExpectedLastSeqHdr, strconv.FormatUint(f.end.seq, 10))
	if err := f.pub.Publish(subject, msg); err != nil {
		f.stream, f.end = nil, nil // look again before the next attempt
		return fmt.Errorf("natsfeed: publish %s %s to %s: %w: %w", e.Type, e.ID, subject, messaging.ErrTransient, err)
	}
	f.end = &streamEnd{seq: f.end.seq + 1, position: e.Position}
	return nil
}

// encode gives e's subject and body, or why e cannot be published.
func (f *Feed) encode(e es.Event) (subject string, payload []byte, reason string) {
	org := organization(e)
	if !validToken(org) {
		return "", nil, fmt.Sprintf("organization id %q is not a NATS subject token", org)
	}
	if !validToken(e.Type) {
		return "", nil, fmt.Sprintf("event type %q is not a NATS subject token", e.Type)
	}
	e, err := f.sealedOnly(e)
	if err != nil {
		return "", nil, fmt.Sprintf("cannot read the event's data: %v", err)
	}
	payload, err = json.Marshal(eventjson.From(e))
	if err != nil {
		return "", nil, fmt.Sprintf("cannot encode the event as JSON: %v", err)
	}
	return f.cfg.SubjectPrefix + "." + org + "." + e.Type, payload, ""
}

// organization is the subject token of e's organization.
func organization(e es.Event) string {
	if e.Metadata.OrganizationID == "" {
		return noOrganization
	}
	return e.Metadata.OrganizationID
}

// limit is the largest message the server and the stream accept; 0: unknown.
func (f *Feed) limit() int64 {
	limit := f.nc.MaxPayload()
	if f.maxSize > 0 && (limit <= 0 || f.maxSize < limit) {
		limit = f.maxSize
	}
	return limit
}

// park records that e will not be in the stream, in the checkpoint's transaction.
func (f *Feed) park(ctx context.Context, tx pgx.Tx, e es.Event, reason string) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO feed_parked (feed, event_id, position, stream, event_type, reason)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (feed, event_id) DO NOTHING`,
		f.Name(), e.ID, string(e.Position), e.Stream, e.Type, reason)
	if err != nil {
		return fmt.Errorf("natsfeed: park %s: %w", e.ID, err)
	}
	f.metrics.parked(f.cfg.Stream)
	f.log.Error("natsfeed: event parked, not published", "event_id", e.ID, "event_type", e.Type, "position", e.Position, "reason", reason)
	return nil
}

// validToken tells whether s can be one token of a NATS subject.
func validToken(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == '.' || r == '*' || r == '>' {
			return false
		}
	}
	return true
}
