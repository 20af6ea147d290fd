package esdb

import (
	"context"
	"errors"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/companin/companin/adapters/eventstore/contract"
	"github.com/companin/companin/domain/es"
	"github.com/google/uuid"
	"google.golang.org/grpc"
)

// fakeServer is a stand-in for EventStoreDB's gRPC Streams service, written
// for these tests from the protocol and EventStoreDB's documented behaviour
// (revisions from 0, idempotency by event id within a stream, $all positions
// (commit, prepare) shared by one append's events, forward reads of $all that
// include their start, subscriptions that exclude it, system events mixed in).
// It lets the adapter's client-side code (paging, read-back, retries,
// namespaces, subscriptions, error mapping) run here; it is NOT EventStoreDB,
// and passing against it proves nothing about the real server.
type fakeServer struct {
	api.UnimplementedStreamsServer

	mu      sync.Mutex
	log     []*fakeEvent
	streams map[string][]*fakeEvent
	byID    map[uuid.UUID]*fakeEvent
	next    uint64        // next log position
	changed chan struct{} // closed and replaced on every write
}

type fakeEvent struct {
	id               uuid.UUID
	stream, typ      string
	revision         uint64
	commit, prepare  uint64
	data, customMeta []byte
	created          int64 // .NET ticks since the Unix epoch, as the server sends them
}

// startFakeServer serves on a loopback port and returns its URL.
func startFakeServer(t *testing.T) string {
	t.Helper()
	f := &fakeServer{streams: map[string][]*fakeEvent{}, byID: map[uuid.UUID]*fakeEvent{}, next: 1000, changed: make(chan struct{})}
	f.systemEvent()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	api.RegisterStreamsServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return "esdb://" + lis.Addr().String() + "?tls=false"
}

// write appends events to the log; the caller holds mu.
func (f *fakeServer) write(stream string, msgs []*api.AppendReq_ProposedMessage) *fakeEvent {
	commit := f.next
	var last *fakeEvent
	for _, m := range msgs {
		e := &fakeEvent{
			id: fakeUUID(m.GetId()), stream: stream, typ: m.GetMetadata()["type"],
			revision: uint64(len(f.streams[stream])), commit: commit, prepare: f.next,
			data: m.GetData(), customMeta: m.GetCustomMetadata(), created: time.Now().UnixNano() / 100,
		}
		f.next += 97
		f.log = append(f.log, e)
		f.streams[stream] = append(f.streams[stream], e)
		f.byID[e.id] = e
		last = e
	}
	close(f.changed)
	f.changed = make(chan struct{})
	return last
}

// systemEvent writes what EventStoreDB writes for itself, which readers of
// Companin's log must never see. The caller holds mu (or nobody runs yet).
func (f *fakeServer) systemEvent() {
	f.write("$stats-127.0.0.1:2113", []*api.AppendReq_ProposedMessage{{
		Id: fakeProtoUUID(uuid.New()), Metadata: map[string]string{"type": "$statsCollected"}, Data: []byte(`{}`),
	}})
}

func fakeUUID(u *shared.UUID) uuid.UUID {
	if s := u.GetStructured(); s != nil {
		id, _ := esdb.ParseUUIDFromInt64(s.MostSignificantBits, s.LeastSignificantBits)
		return id
	}
	id, _ := uuid.Parse(u.GetString_())
	return id
}

func fakeProtoUUID(id uuid.UUID) *shared.UUID {
	most, least := esdb.UUIDAsInt64(id)
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{MostSignificantBits: most, LeastSignificantBits: least}}}
}

// Append follows EventStoreDB's commit check: an expectation that matches
// writes; ids already stored where the expectation points (or, with any, in
// the stream) make an idempotent success that writes nothing.
func (f *fakeServer) Append(srv api.Streams_AppendServer) error {
	var (
		opts *api.AppendReq_Options
		msgs []*api.AppendReq_ProposedMessage
	)
	for {
		req, err := srv.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if o := req.GetOptions(); o != nil {
			opts = o
		} else {
			msgs = append(msgs, req.GetProposedMessage())
		}
	}
	stream := string(opts.GetStreamIdentifier().GetStreamName())
	f.mu.Lock()
	defer f.mu.Unlock()
	current := int64(len(f.streams[stream])) - 1 // -1: no stream
	expected := int64(-2)                        // any
	switch opts.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Revision:
		expected = int64(opts.GetRevision())
	case *api.AppendReq_Options_NoStream:
		expected = -1
	case *api.AppendReq_Options_StreamExists:
		if current < 0 {
			return srv.SendAndClose(fakeWrongVersion(current))
		}
	}
	ids := make([]uuid.UUID, len(msgs))
	for i, m := range msgs {
		ids[i] = fakeUUID(m.GetId())
	}
	idempotent := func(at int64) (*fakeEvent, bool) { // ids stored from revision at on
		evs := f.streams[stream]
		for i, id := range ids {
			r := at + int64(i)
			if r < 0 || r >= int64(len(evs)) || evs[r].id != id {
				return nil, false
			}
		}
		return evs[at+int64(len(ids))-1], len(ids) > 0
	}
	switch {
	case expected == -2:
		if first, ok := f.byID[ids[0]]; ok && first.stream == stream {
			if last, ok := idempotent(int64(first.revision)); ok {
				return srv.SendAndClose(fakeSuccess(last))
			}
			return srv.SendAndClose(fakeWrongVersion(current)) // corrupted idempotency
		}
	case expected < current:
		if last, ok := idempotent(expected + 1); ok {
			return srv.SendAndClose(fakeSuccess(last))
		}
		return srv.SendAndClose(fakeWrongVersion(current))
	case expected > current:
		return srv.SendAndClose(fakeWrongVersion(current))
	}
	last := f.write(stream, msgs)
	if len(f.log)%5 == 0 {
		f.systemEvent()
	}
	return srv.SendAndClose(fakeSuccess(last))
}

func fakeSuccess(last *fakeEvent) *api.AppendResp {
	return &api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
		CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: last.revision},
		PositionOption:        &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{CommitPosition: last.commit, PreparePosition: last.prepare}},
	}}}
}

func fakeWrongVersion(current int64) *api.AppendResp {
	w := &api.AppendResp_WrongExpectedVersion{ExpectedRevisionOption: &api.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: &shared.Empty{}}}
	if current < 0 {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
	} else {
		w.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(current)}
	}
	return &api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: w}}
}

func (e *fakeEvent) message() *api.ReadResp {
	return &api.ReadResp{Content: &api.ReadResp_Event{Event: &api.ReadResp_ReadEvent{
		Event: &api.ReadResp_ReadEvent_RecordedEvent{
			Id:               fakeProtoUUID(e.id),
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(e.stream)},
			StreamRevision:   e.revision, CommitPosition: e.commit, PreparePosition: e.prepare,
			Metadata:       map[string]string{"type": e.typ, "content-type": "application/json", "created": strconv.FormatInt(e.created, 10)},
			CustomMetadata: e.customMeta, Data: e.data,
		},
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: e.commit},
	}}}
}

func (e *fakeEvent) after(commit, prepare uint64) bool {
	return e.commit > commit || (e.commit == commit && e.prepare > prepare)
}

// Read serves stream reads, $all reads and $all subscriptions.
func (f *fakeServer) Read(req *api.ReadReq, srv api.Streams_ReadServer) error {
	o := req.GetOptions()
	backwards := o.GetReadDirection() == api.ReadReq_Options_Backwards
	if st := o.GetStream(); st != nil {
		return f.readStream(st, backwards, o.GetCount(), srv)
	}
	if o.GetSubscription() != nil {
		return f.subscribe(o, srv)
	}
	f.mu.Lock()
	all := append([]*fakeEvent(nil), f.log...)
	f.mu.Unlock()
	count := o.GetCount()
	var out []*fakeEvent
	if backwards {
		for i := len(all) - 1; i >= 0 && uint64(len(out)) < count; i-- {
			out = append(out, all[i])
		}
	} else {
		var commit, prepare uint64
		hasFrom := false
		if p := o.GetAll().GetPosition(); p != nil {
			commit, prepare, hasFrom = p.CommitPosition, p.PreparePosition, true
		}
		for _, e := range all {
			// A forward read includes the event at its start.
			if (!hasFrom || e.after(commit, prepare) || (e.commit == commit && e.prepare == prepare)) && uint64(len(out)) < count {
				out = append(out, e)
			}
		}
	}
	for _, e := range out {
		if err := srv.Send(e.message()); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakeServer) readStream(st *api.ReadReq_Options_StreamOptions, backwards bool, count uint64, srv api.Streams_ReadServer) error {
	name := string(st.GetStreamIdentifier().GetStreamName())
	f.mu.Lock()
	evs := append([]*fakeEvent(nil), f.streams[name]...)
	f.mu.Unlock()
	if len(evs) == 0 {
		return srv.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{StreamIdentifier: st.GetStreamIdentifier()}}})
	}
	var out []*fakeEvent
	if backwards {
		from := len(evs) - 1
		if _, ok := st.GetRevisionOption().(*api.ReadReq_Options_StreamOptions_Revision); ok {
			from = min(from, int(st.GetRevision()))
		}
		for i := from; i >= 0 && uint64(len(out)) < count; i-- {
			out = append(out, evs[i])
		}
	} else {
		for i := int(st.GetRevision()); i < len(evs) && uint64(len(out)) < count; i++ {
			out = append(out, evs[i])
		}
	}
	for _, e := range out {
		if err := srv.Send(e.message()); err != nil {
			return err
		}
	}
	return nil
}

// subscribe sends events after the start position that pass the filter,
// then new ones as they come, until the client goes away.
func (f *fakeServer) subscribe(o *api.ReadReq_Options, srv api.Streams_ReadServer) error {
	if err := srv.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{SubscriptionId: uuid.NewString()}}}); err != nil {
		return err
	}
	pass := func(*fakeEvent) bool { return true }
	if fo := o.GetFilter(); fo != nil {
		expr, onStream := fo.GetEventType(), false
		if fo.GetStreamIdentifier() != nil {
			expr, onStream = fo.GetStreamIdentifier(), true
		}
		var re *regexp.Regexp
		if expr.GetRegex() != "" {
			re = regexp.MustCompile(expr.GetRegex())
		}
		pass = func(e *fakeEvent) bool {
			s := e.typ
			if onStream {
				s = e.stream
			}
			if re != nil && !re.MatchString(s) {
				return false
			}
			if len(expr.GetPrefix()) == 0 {
				return true
			}
			for _, p := range expr.GetPrefix() {
				if strings.HasPrefix(s, p) {
					return true
				}
			}
			return false
		}
	}
	sent := 0 // events of the log looked at so far
	if p := o.GetAll().GetPosition(); p != nil {
		f.mu.Lock()
		for sent < len(f.log) && !f.log[sent].after(p.CommitPosition, p.PreparePosition) {
			sent++
		}
		f.mu.Unlock()
	}
	caughtUp := false
	for {
		f.mu.Lock()
		batch := append([]*fakeEvent(nil), f.log[sent:]...)
		changed := f.changed
		f.mu.Unlock()
		sent += len(batch)
		for _, e := range batch {
			if pass(e) {
				if err := srv.Send(e.message()); err != nil {
					return err
				}
			}
		}
		if !caughtUp {
			caughtUp = true
			if err := srv.Send(&api.ReadResp{Content: &api.ReadResp_CaughtUp_{CaughtUp: &api.ReadResp_CaughtUp{}}}); err != nil {
				return err
			}
		}
		select {
		case <-changed:
		case <-srv.Context().Done():
			return srv.Context().Err()
		}
	}
}

// TestContractOnFakeServer runs the contract against fakeServer, all
// subtests on one server, each in its own namespace. It checks the adapter's
// own logic, not EventStoreDB: see TestContract for the real server.
//
// It leaves out the subtests EventStoreDB itself cannot pass (see
// skipBeyondEventStoreDB).
func TestContractOnFakeServer(t *testing.T) {
	url := startFakeServer(t)
	contract.Run(t, func(t *testing.T) es.Store {
		skipBeyondEventStoreDB(t)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := New(ctx, url, WithNamespace(uuid.NewString()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// Close ends a waiting WaitForEvents, lets nothing panic (the v4 client
// panics when a call fails on a closed client), and refuses later calls.
func TestCloseEndsCallsInFlight(t *testing.T) {
	url := startFakeServer(t)
	ctx := context.Background()
	s, err := New(ctx, url, WithNamespace(uuid.NewString()))
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Append(ctx, "session-1", es.NoStream, es.NewEvent{ID: uuid.New(), Type: "SessionStarted"})
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- s.WaitForEvents(ctx, res.Position) }()
	time.Sleep(200 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waited:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("waiter ended with %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close left a waiter waiting")
	}
	if _, err := s.ReadStream(ctx, "session-1", 1, 0); !errors.Is(err, errClosed) {
		t.Errorf("read after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
