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

// PageExtractor turns a fetched page into a structured document
// (extract.Page): a web page is read for its article, an uploaded file whole.
type PageExtractor func(ctx context.Context, fileType, pageURL string, data []byte) (knowledge.Document, error)

// DefaultMaxChunks bounds the chunks of one source: beyond it a document is
// a collection that belongs in several sources (and would slow every search).
const DefaultMaxChunks = 4000

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
	// ExtractPage reads fetched pages; nil: Extract reads them like files.
	ExtractPage PageExtractor
	Fetch       PageFetcher
	// MaxChunks bounds the chunks of one source (0: DefaultMaxChunks).
	MaxChunks int
	Now       func() time.Time
	Logger    *slog.Logger
}

// HandleEvent ingests the revision the event started. It returns an error
// only when the work should be retried (the process is stopping, the store
// failed); a document that cannot be read, is over a limit or makes the
// extractor panic is recorded as failed, for good: the same bytes would fail
// the same way again.
func (h IngestKnowledgeHandler) HandleEvent(ctx context.Context, e es.Event) error {
	id, revision, ok, err := startedRevision(e)
	if err != nil || !ok {
		return err
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
	if workErr == nil {
		workErr = h.checkChunks(doc)
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

func (h IngestKnowledgeHandler) checkChunks(doc knowledge.Document) error {
	limit := h.MaxChunks
	if limit <= 0 {
		limit = DefaultMaxChunks
	}
	if _, chunks := knowledge.Split(doc); len(chunks) > limit {
		return fmt.Errorf("the document makes %d passages, more than the %d one source may have; split it into smaller files and upload them separately", len(chunks), limit)
	}
	return nil
}

func (h IngestKnowledgeHandler) read(ctx context.Context, spec knowledge.Spec) (doc knowledge.Document, fetched string, err error) {
	defer func() {
		if r := recover(); r != nil {
			doc, err = knowledge.Document{}, fmt.Errorf("the document could not be read: the reader stopped on it (%v); re-export it (for a PDF: \"Save as PDF\") and upload again", r)
		}
	}()
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
		if h.ExtractPage != nil {
			doc, err := h.ExtractPage(ctx, fileType, final, body)
			return doc, final, err
		}
		doc, err := h.Extract(ctx, fileType, body)
		return doc, final, err
	}
	return knowledge.Document{}, "", fmt.Errorf("nothing to ingest for a %s source", spec.Kind)
}

// startedRevision answers which revision of which source e started
// ingesting; ok is false for events that start none.
func startedRevision(e es.Event) (id uuid.UUID, revision int, ok bool, err error) {
	de, err := knowledge.Decode(e.Type, e.Data)
	if err != nil || de == nil {
		return uuid.Nil, 0, false, err
	}
	switch ev := de.(type) {
	case knowledge.Added:
		return ev.KnowledgeID, ev.Revision, true, nil
	case knowledge.Replaced:
		return ev.KnowledgeID, ev.Revision, true, nil
	case knowledge.RefreshRequested:
		return ev.KnowledgeID, ev.Revision, true, nil
	}
	return uuid.Nil, 0, false, nil
}
