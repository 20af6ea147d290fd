package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/knowledge"
	"github.com/google/uuid"
)

// Extractor turns a file's bytes into a structured document (extract.File).
type Extractor func(ctx context.Context, fileType string, data []byte) (knowledge.Document, error)

// PageFetcher reads a web page (*fetch.Fetcher): where it was finally read
// from, its file type (html, pdf, ...) and its bytes.
type PageFetcher interface {
	FetchPage(ctx context.Context, url string) (finalURL, fileType string, body []byte, err error)
}

// IngestionTimeout bounds the work on one revision (fetch and extraction),
// so that a pathological file fails with a reason instead of holding a job.
const IngestionTimeout = 3 * time.Minute

// IngestKnowledgeHandler is the ingestion worker: for each source added,
// replaced or refreshed it fetches (web pages) and extracts the text, and
// records the chunks or the reason it failed. Register HandleEvent with the
// runtime as a shared worker on knowledge.IngestionTriggers: deliveries are
// at least once, and a late or repeated delivery records nothing, since the
// source accepts one result per revision.
type IngestKnowledgeHandler struct {
	Store   es.Store
	Extract Extractor
	Fetch   PageFetcher
	Now     func() time.Time
	Logger  *slog.Logger
}

// HandleEvent ingests the revision the event started. It returns an error
// only when the work should be retried (the process is stopping, the store
// failed); a document that cannot be read is recorded as failed.
func (h IngestKnowledgeHandler) HandleEvent(ctx context.Context, e es.Event) error {
	de, err := knowledge.Decode(e.Type, e.Data)
	if err != nil || de == nil {
		return err
	}
	var revision int
	var id uuid.UUID
	switch ev := de.(type) {
	case knowledge.Added:
		id, revision = ev.KnowledgeID, ev.Revision
	case knowledge.Replaced:
		id, revision = ev.KnowledgeID, ev.Revision
	case knowledge.RefreshRequested:
		id, revision = ev.KnowledgeID, ev.Revision
	default:
		return nil
	}
	correlation := e.Metadata.CorrelationID
	if correlation == "" {
		correlation = e.ID.String()
	}
	ctx = es.WithMetadata(ctx, es.Metadata{
		OrganizationID: e.Metadata.OrganizationID, Actor: "system:knowledge-ingestion",
		RequestID: e.Metadata.RequestID, CorrelationID: correlation, CausationID: e.ID.String(),
	})
	repo := knowledgeSources(h.Store)
	l, err := repo.Load(ctx, id)
	if errors.Is(err, domain.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	src := l.Aggregate
	if !src.Pending(revision) {
		return nil
	}
	spec := src.Spec()
	if spec.Kind == knowledge.QA {
		return nil
	}
	// Stop in time to record the failure before the job's own deadline (the
	// runtime's lease) ends the context: a job cut off there would be retried
	// and the source would stay "processing" until it is parked.
	timeout := IngestionTimeout
	if deadline, ok := ctx.Deadline(); ok {
		if left := time.Until(deadline) - 10*time.Second; left < timeout {
			timeout = max(left, time.Second)
		}
	}
	work, cancel := context.WithTimeout(ctx, timeout)
	doc, fetched, workErr := h.read(work, spec)
	timedOut := errors.Is(work.Err(), context.DeadlineExceeded)
	cancel()
	if workErr != nil && ctx.Err() != nil {
		return workErr // stopping: let another delivery do it
	}
	if workErr != nil && timedOut {
		workErr = fmt.Errorf("reading the document took longer than %s; split it into smaller files", timeout.Round(time.Second))
	}
	_, err = repo.Update(ctx, id, func(s *knowledge.Source) error {
		if workErr != nil {
			return s.FailIngestion(revision, workErr.Error(), Clock(h.Now))
		}
		return s.CompleteIngestion(revision, doc, fetched, Clock(h.Now))
	})
	if errors.Is(err, domain.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ingest %s revision %d: %w", id, revision, err)
	}
	if workErr != nil && h.Logger != nil {
		h.Logger.InfoContext(ctx, "knowledge ingestion failed", "knowledge_id", id, "revision", revision, "reason", workErr)
	}
	return nil
}

func (h IngestKnowledgeHandler) read(ctx context.Context, spec knowledge.Spec) (knowledge.Document, string, error) {
	switch spec.Kind {
	case knowledge.File:
		doc, err := h.Extract(ctx, spec.FileType, spec.Content)
		return doc, "", err
	case knowledge.URL:
		if h.Fetch == nil {
			return knowledge.Document{}, "", errors.New("fetching web pages is not configured on this server")
		}
		final, fileType, body, err := h.Fetch.FetchPage(ctx, spec.URL)
		if err != nil {
			return knowledge.Document{}, "", err
		}
		doc, err := h.Extract(ctx, fileType, body)
		return doc, final, err
	}
	return knowledge.Document{}, "", fmt.Errorf("nothing to ingest for a %s source", spec.Kind)
}
