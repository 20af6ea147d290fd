package natsfeed

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/companin/companin/domain/es"
	"github.com/nats-io/nats.go/jetstream"
)

// prepare makes sure the stream exists and the feed knows where it ends.
func (f *Feed) prepare(ctx context.Context) error {
	if !f.nc.IsConnected() {
		return fmt.Errorf("natsfeed: not connected to the NATS server (%s)", f.nc.Status())
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.PublishTimeout)
	defer cancel()
	if f.stream == nil {
		s, err := f.ensureStream(ctx)
		if err != nil {
			return err
		}
		f.stream, f.end = s, nil
		f.maxSize = int64(s.CachedInfo().Config.MaxMsgSize)
	}
	if f.end == nil {
		end, err := f.readEnd(ctx)
		if err != nil {
			f.stream = nil
			return err
		}
		f.end = end
		f.log.Info("natsfeed: stream ends here", "stream_sequence", end.seq, "position", end.position)
	}
	return nil
}

// ensureStream creates the stream, or adds the feed's subjects and duplicate
// window to an existing one without touching the rest of its settings.
func (f *Feed) ensureStream(ctx context.Context) (jetstream.Stream, error) {
	subjects := f.cfg.SubjectPrefix + ".>"
	s, err := f.js.Stream(ctx, f.cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = f.js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        f.cfg.Stream,
			Description: "Companin's event log, in log order (companin serve, COMPANIN_FEED_NATS_URL)",
			Subjects:    []string{subjects},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardOld,
			Duplicates:  f.cfg.DuplicateWindow,
		})
		if err != nil {
			return nil, fmt.Errorf("natsfeed: create stream %s: %w", f.cfg.Stream, err)
		}
		f.log.Info("natsfeed: stream created", "subjects", subjects, "duplicate_window", f.cfg.DuplicateWindow)
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("natsfeed: stream %s: %w", f.cfg.Stream, err)
	}
	cfg := s.CachedInfo().Config
	changed := false
	if !covers(cfg.Subjects, subjects) {
		cfg.Subjects = append(cfg.Subjects, subjects)
		changed = true
	}
	window := f.cfg.DuplicateWindow
	if cfg.MaxAge > 0 && window > cfg.MaxAge {
		window = cfg.MaxAge // JetStream requires the window to fit in the age limit
	}
	if cfg.Duplicates < window {
		cfg.Duplicates = window
		changed = true
	}
	if cfg.Storage != jetstream.FileStorage {
		f.log.Warn("natsfeed: the stream keeps messages in memory only; a NATS restart loses them", "stream", f.cfg.Stream)
	}
	if !changed {
		return s, nil
	}
	if s, err = f.js.UpdateStream(ctx, cfg); err != nil {
		return nil, fmt.Errorf("natsfeed: update stream %s: %w", f.cfg.Stream, err)
	}
	f.log.Info("natsfeed: stream updated", "subjects", cfg.Subjects, "duplicate_window", cfg.Duplicates)
	return s, nil
}

// covers tells whether one of subjects already takes in want ("x.y.>").
func covers(subjects []string, want string) bool {
	for _, s := range subjects {
		if s == want || s == ">" || (strings.HasSuffix(s, ".>") && strings.HasPrefix(want, strings.TrimSuffix(s, ">"))) {
			return true
		}
	}
	return false
}

// readEnd reads the stream's last message: its sequence, and the log
// position it carries.
func (f *Feed) readEnd(ctx context.Context) (*streamEnd, error) {
	info, err := f.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("natsfeed: stream %s: %w", f.cfg.Stream, err)
	}
	end := &streamEnd{seq: info.State.LastSeq}
	if end.seq == 0 {
		return end, nil
	}
	m, err := f.stream.GetMsg(ctx, end.seq)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		// Removed by the stream's limits: only the duplicate window guards
		// against publishing its neighbours twice.
		f.log.Warn("natsfeed: the stream's last message is gone; relying on its duplicate window", "stream_sequence", end.seq)
	case err != nil:
		return nil, fmt.Errorf("natsfeed: read message %d of %s: %w", end.seq, f.cfg.Stream, err)
	default:
		end.position = es.Position(m.Header.Get(HeaderPosition))
	}
	return end, nil
}
