package projections

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/knowledge"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Knowledge keeps knowledge_sources (status of each source, for the API) and
// knowledge_chunks (what retrieval searches, queries.SearchKnowledge). A new
// revision's chunks replace the old ones in one transaction when it is
// ingested, so search never sees a half-indexed document; until then, and if
// the new revision fails, the previous chunks keep answering.
type Knowledge struct{}

// Name is the checkpoint name: never rename it.
func (Knowledge) Name() string { return "knowledge" }

// EventTypes lets the runtime skip other events.
func (Knowledge) EventTypes() []string {
	return []string{knowledge.TypeAdded, knowledge.TypeReplaced, knowledge.TypeRefreshRequested,
		knowledge.TypeIngested, knowledge.TypeIngestionFailed, knowledge.TypeRemoved}
}

// Handle applies one event; replays change nothing.
func (Knowledge) Handle(ctx context.Context, tx pgx.Tx, e es.Event) error {
	de, err := knowledge.Decode(e.Type, e.Data)
	if err != nil {
		return fmt.Errorf("knowledge projection: %s %s: %w", e.Type, e.ID, err)
	}
	switch ev := de.(type) {
	case knowledge.Added:
		err = putSource(ctx, tx, e, ev.KnowledgeID, ev.Revision, ev.Spec, at(ev.AddedAt, e), true)
	case knowledge.Replaced:
		err = putSource(ctx, tx, e, ev.KnowledgeID, ev.Revision, ev.Spec, at(ev.ReplacedAt, e), false)
	case knowledge.RefreshRequested:
		_, err = tx.Exec(ctx, `
			UPDATE knowledge_sources SET status = 'processing', error = '', revision = $2, updated_at = $3
			WHERE id = $1 AND revision < $2`, ev.KnowledgeID, ev.Revision, at(ev.RequestedAt, e))
	case knowledge.Ingested:
		err = ingest(ctx, tx, ev, at(ev.IngestedAt, e))
	case knowledge.IngestionFailed:
		_, err = tx.Exec(ctx, `
			UPDATE knowledge_sources SET status = 'failed', error = $3, updated_at = $4
			WHERE id = $1 AND revision = $2`, ev.KnowledgeID, ev.Revision, ev.Reason, at(ev.FailedAt, e))
	case knowledge.Removed:
		_, err = tx.Exec(ctx, `DELETE FROM knowledge_sources WHERE id = $1`, ev.KnowledgeID)
	}
	if err != nil {
		return fmt.Errorf("knowledge projection: %s %s: %w", e.Type, e.ID, err)
	}
	return nil
}

// Reset empties the read model before a rebuild.
func (Knowledge) Reset(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `TRUNCATE knowledge_chunks, knowledge_sources, knowledge_terms`)
	return err
}

func putSource(ctx context.Context, tx pgx.Tx, e es.Event, id uuid.UUID, rev int, s knowledge.Spec, when any, added bool) error {
	if s.Title == "" {
		s.Title = s.URL
	}
	tags := s.Tags
	if tags == nil {
		tags = []string{}
	}
	assistants := s.AssistantIDs
	if assistants == nil {
		assistants = []uuid.UUID{}
	}
	// A source added again after removal starts afresh; a replacement keeps
	// its creation time and, until ingested, its chunks.
	_, err := tx.Exec(ctx, `
		INSERT INTO knowledge_sources (id, organization_id, kind, title, file_type, file_name, url, question, answer,
			tags, source, assistant_ids, external_id, status, error, revision, size_bytes, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'processing', '', $14, $15, $16, $16)
		ON CONFLICT (id) DO UPDATE SET kind = $3, title = $4, file_type = $5, file_name = $6, url = $7,
			question = $8, answer = $9, tags = $10, source = $11, assistant_ids = $12, external_id = $13,
			status = 'processing', error = '', revision = $14, size_bytes = $15, updated_at = $16
		WHERE knowledge_sources.revision < $14`,
		id, e.Metadata.OrganizationID, string(s.Kind), s.Title, s.FileType, s.FileName, s.URL, s.Question, s.Answer,
		tags, s.Source, assistants, s.ExternalID, rev, s.SizeBytes, when)
	if err != nil {
		return err
	}
	// Narrowing to other assistants applies to the chunks already searchable.
	_, err = tx.Exec(ctx, `UPDATE knowledge_chunks SET assistant_ids = $2 WHERE knowledge_id = $1`, id, assistants)
	return err
}

func ingest(ctx context.Context, tx pgx.Tx, ev knowledge.Ingested, when any) error {
	var (
		org        uuid.UUID
		kind       string
		title      string
		question   string
		answer     string
		assistants []uuid.UUID
		revision   int
	)
	var url string
	err := tx.QueryRow(ctx, `
		SELECT organization_id, kind, title, url, question, answer, assistant_ids, revision
		FROM knowledge_sources WHERE id = $1`, ev.KnowledgeID).
		Scan(&org, &kind, &title, &url, &question, &answer, &assistants, &revision)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // removed since
	}
	if err != nil {
		return err
	}
	if revision != ev.Revision {
		return nil // a newer revision is on its way; keep what is searchable until it lands
	}
	if _, err := tx.Exec(ctx, `DELETE FROM knowledge_chunks WHERE knowledge_id = $1`, ev.KnowledgeID); err != nil {
		return err
	}
	cfg := knowledge.TextSearchConfig(ev.Language)
	chunkKind := "passage"
	if kind == string(knowledge.QA) {
		chunkKind = "qa"
	}
	n := len(ev.Chunks)
	ids := make([]uuid.UUID, 0, n)
	ords := make([]int32, 0, n)
	bodies := make([]string, 0, n)
	paths := make([]string, 0, n)
	pages := make([]int32, 0, n)
	starts := make([]int32, 0, n)
	ends := make([]int32, 0, n)
	for _, c := range ev.Chunks {
		if c.Start < 0 || c.End > len(ev.Text) || c.Start >= c.End {
			continue
		}
		ids = append(ids, ChunkID(ev.KnowledgeID, ev.Revision, c.Index))
		ords = append(ords, int32(c.Index))
		bodies = append(bodies, ev.Text[c.Start:c.End])
		paths = append(paths, strings.Join(c.TitlePath, "\x1f"))
		pages = append(pages, int32(c.Page))
		starts = append(starts, int32(c.Start))
		ends = append(ends, int32(c.End))
	}
	// A web page added without a title is named by the page itself.
	if kind == string(knowledge.URL) && title == url && ev.Title != "" {
		title = ev.Title
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO knowledge_chunks (id, knowledge_id, organization_id, assistant_ids, kind, ord, title, title_path,
			page, start_offset, end_offset, body, question, answer, ts_config, tsv)
		SELECT c.id, $1, $2, $3, $4, c.ord, $5, tp.path, c.page, c.start_offset, c.end_offset, c.body, $6, $7, $8::regconfig,
			setweight(to_tsvector($8::regconfig, $5), 'A') ||
			setweight(to_tsvector($8::regconfig, array_to_string(tp.path, ' ')), 'B') ||
			setweight(to_tsvector($8::regconfig, c.body), 'D')
		FROM unnest($9::uuid[], $10::int[], $11::text[], $12::text[], $13::int[], $14::int[], $15::int[])
			AS c(id, ord, body, path, page, start_offset, end_offset),
			LATERAL (SELECT CASE WHEN c.path = '' THEN '{}'::text[] ELSE string_to_array(c.path, E'\x1f') END AS path) tp`,
		ev.KnowledgeID, org, assistants, chunkKind, title, question, answer, cfg,
		ids, ords, bodies, paths, pages, starts, ends)
	if err != nil {
		return err
	}
	// Words seen stay in the vocabulary after their source goes: a stale word
	// only lets a typo find nothing, and a rebuild drops it.
	if _, err := tx.Exec(ctx, `
		INSERT INTO knowledge_terms (organization_id, term) SELECT $1, t FROM unnest($2::text[]) AS t
		ON CONFLICT DO NOTHING`, org, terms(title+" "+strings.Join(bodies, " "))); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `
		UPDATE knowledge_sources SET status = 'ready', error = '', language = $2, pages = $3, chunk_count = $4,
			fetched_url = $5, ingested_at = $6, updated_at = $6, title = $7
		WHERE id = $1`, ev.KnowledgeID, ev.Language, ev.Pages, len(ids), ev.FetchedURL, when, title)
	return err
}

// terms returns the distinct lower-case words of text worth correcting a
// typo towards: four to forty letters or digits, not all digits.
func terms(text string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		n := utf8.RuneCountInString(w)
		if n < 4 || n > 40 || seen[w] || strings.IndexFunc(w, unicode.IsLetter) < 0 {
			continue
		}
		seen[w] = true
		out = append(out, w)
	}
	return out
}

// ChunkID is the stable id of a revision's chunk, so that a citation stays
// valid across projection rebuilds.
func ChunkID(knowledgeID uuid.UUID, revision, index int) uuid.UUID {
	return uuid.NewSHA1(knowledgeID, []byte(fmt.Sprintf("%d/%d", revision, index)))
}
