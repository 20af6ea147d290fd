// Package knowledge is an organization's knowledge base: sources (uploaded
// files, Q&A pairs, web pages), their ingestion into searchable chunks, and
// the rules for replacing, refreshing and removing them. It does no I/O:
// extraction and fetching are adapters, called by the ingestion worker.
package knowledge

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/companin/companin/domain"
	"github.com/google/uuid"
)

// Kind is the stream prefix: knowledge-<uuid>.
const Kind = "knowledge"

// Event type names: stored, never renamed.
const (
	TypeAdded            = "KnowledgeAdded"
	TypeReplaced         = "KnowledgeReplaced"
	TypeRefreshRequested = "KnowledgeRefreshRequested"
	TypeIngested         = "KnowledgeIngested"
	TypeIngestionFailed  = "KnowledgeIngestionFailed"
	TypeRemoved          = "KnowledgeRemoved"
)

// IngestionTriggers are the event types that give the ingestion worker work.
var IngestionTriggers = []string{TypeAdded, TypeReplaced, TypeRefreshRequested}

// SourceKind says where a source's text comes from.
type SourceKind string

// The kinds of source.
const (
	File SourceKind = "file"
	QA   SourceKind = "qa"
	URL  SourceKind = "url"
)

// Status is where a source stands in ingestion.
type Status string

// A source is processing until its current revision is ingested or failed.
const (
	Processing Status = "processing"
	Ready      Status = "ready"
	Failed     Status = "failed"
)

// Limits, in characters, items or bytes.
const (
	MaxTitle        = 500
	MaxQuestion     = 2000
	MaxAnswer       = 20000
	MaxTags         = 50
	MaxTag          = 100
	MaxSource       = 200
	MaxExternalID   = 200
	MaxURL          = 2048
	MaxAssistantIDs = 100
	// MaxFileBytes bounds an uploaded file: the bytes are kept in the log
	// (base64 in the event) so that every read model can be rebuilt from it.
	MaxFileBytes = 10 << 20
)

var (
	// ErrNotFound: no such source (or removed, or another organization's).
	ErrNotFound = fmt.Errorf("knowledge source not found: %w", domain.ErrNotFound)
	// ErrTooLarge: the file is over MaxFileBytes.
	ErrTooLarge = fmt.Errorf("file is larger than %d MB: %w", MaxFileBytes>>20, domain.ErrInvalid)
	// ErrNothingToRefresh: Q&A pairs have nothing to fetch or extract again.
	ErrNothingToRefresh = domain.Invalid("id", "a Q&A pair has nothing to refresh; send it again to change it")
)

// FileTypes are the accepted file types, in the order messages name them.
var FileTypes = []string{"pdf", "docx", "html", "md", "txt", "csv"}

// ParseFileType accepts a declared file type in any case, with or without a
// dot, or as a MIME type, and returns one of FileTypes.
func ParseFileType(field, t string) (string, error) {
	t = strings.ToLower(strings.TrimSpace(t))
	t = strings.TrimPrefix(t, ".")
	switch t {
	case "pdf", "application/pdf":
		return "pdf", nil
	case "docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document":
		return "docx", nil
	case "html", "htm", "text/html", "xhtml", "application/xhtml+xml":
		return "html", nil
	case "md", "markdown", "text/markdown":
		return "md", nil
	case "txt", "text", "text/plain":
		return "txt", nil
	case "csv", "text/csv":
		return "csv", nil
	case "":
		return "", domain.Invalid(field, "is required; accepted types are %s", strings.Join(FileTypes, ", "))
	}
	return "", domain.Invalid(field, "%q is not supported; accepted types are %s", t, strings.Join(FileTypes, ", "))
}

// Spec is a valid source as a client describes it. Build it with ParseFile,
// ParseQA or ParseURL.
type Spec struct {
	Kind         SourceKind  `json:"kind"`
	Title        string      `json:"title"`
	FileType     string      `json:"file_type,omitempty"`
	FileName     string      `json:"file_name,omitempty"`
	URL          string      `json:"url,omitempty"`
	Question     string      `json:"question,omitempty"`
	Answer       string      `json:"answer,omitempty"`
	Tags         []string    `json:"tags"`
	Source       string      `json:"source,omitempty"`
	AssistantIDs []uuid.UUID `json:"assistant_ids"`
	ExternalID   string      `json:"external_id,omitempty"`
	// Content is the uploaded file, base64 in the event's JSON.
	Content       []byte `json:"content,omitempty"`
	ContentSHA256 string `json:"content_sha256,omitempty"`
	SizeBytes     int    `json:"size_bytes,omitempty"`
}

// Common are the fields every kind of source may carry.
type Common struct {
	Title        string
	Tags         []string
	Source       string
	AssistantIDs []uuid.UUID
	ExternalID   string
}

func (c Common) parse(titleRequired bool) (Spec, error) {
	var s Spec
	var err error
	if s.Title, err = domain.Text("title", c.Title, MaxTitle, titleRequired); err != nil {
		return s, err
	}
	if s.Source, err = domain.Text("source", c.Source, MaxSource, false); err != nil {
		return s, err
	}
	if s.ExternalID, err = domain.Text("external_id", c.ExternalID, MaxExternalID, false); err != nil {
		return s, err
	}
	if len(c.Tags) > MaxTags {
		return s, domain.Invalid("tags", "must have at most %d items", MaxTags)
	}
	s.Tags = []string{}
	for i, t := range c.Tags {
		t, err := domain.Text(fmt.Sprintf("tags[%d]", i), t, MaxTag, true)
		if err != nil {
			return s, err
		}
		if !slices.Contains(s.Tags, t) {
			s.Tags = append(s.Tags, t)
		}
	}
	if len(c.AssistantIDs) > MaxAssistantIDs {
		return s, domain.Invalid("assistant_ids", "must have at most %d items", MaxAssistantIDs)
	}
	s.AssistantIDs = []uuid.UUID{}
	for _, id := range c.AssistantIDs {
		if id == uuid.Nil {
			return s, domain.Invalid("assistant_ids", "must be assistant ids")
		}
		if !slices.Contains(s.AssistantIDs, id) {
			s.AssistantIDs = append(s.AssistantIDs, id)
		}
	}
	slices.SortFunc(s.AssistantIDs, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	return s, nil
}

// ParseFile validates an uploaded file. The title defaults to the file name.
func ParseFile(c Common, fileType, fileName string, content []byte) (Spec, error) {
	if strings.TrimSpace(c.Title) == "" {
		c.Title = fileName
	}
	s, err := c.parse(true)
	if err != nil {
		return s, err
	}
	if s.FileType, err = ParseFileType("file_type", fileType); err != nil {
		return s, err
	}
	if len(content) == 0 {
		return s, domain.Invalid("file", "is required and must not be empty")
	}
	if len(content) > MaxFileBytes {
		return s, ErrTooLarge
	}
	if s.FileName, err = domain.Text("file", fileName, MaxTitle, false); err != nil {
		return s, err
	}
	sum := sha256.Sum256(content)
	s.Kind, s.Content, s.ContentSHA256, s.SizeBytes = File, content, hex.EncodeToString(sum[:]), len(content)
	return s, nil
}

// ParseQA validates a question and answer pair. The title is the question.
func ParseQA(c Common, question, answer string) (Spec, error) {
	s, err := c.parse(false)
	if err != nil {
		return s, err
	}
	if s.Question, err = domain.Text("question", question, MaxQuestion, true); err != nil {
		return s, err
	}
	if s.Answer, err = domain.Text("answer", answer, MaxAnswer, true); err != nil {
		return s, err
	}
	if s.Title == "" {
		s.Title = truncate(s.Question, MaxTitle)
	}
	s.Kind = QA
	return s, nil
}

// ParseURL validates a web page to fetch: http or https, a host, no
// credentials in it. Without a title, the page's own title names it once fetched. Whether its address may be fetched is decided when it
// is fetched (the address a name resolves to can change).
func ParseURL(c Common, raw string) (Spec, error) {
	s, err := c.parse(false)
	if err != nil {
		return s, err
	}
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return s, domain.Invalid("url", "is required")
	}
	if len(raw) > MaxURL {
		return s, domain.Invalid("url", "must be at most %d characters", MaxURL)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return s, domain.Invalid("url", "must be an absolute http or https URL")
	}
	if u.User != nil {
		return s, domain.Invalid("url", "must not contain a user name or password")
	}
	u.Fragment = ""
	s.URL, s.Kind = u.String(), URL
	return s, nil
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

// fingerprint identifies what a spec says, so that re-sending an unchanged
// source is a no-op.
func (s Spec) fingerprint() string {
	c := s
	c.Content = nil
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// StreamID is the id of the source a client names with external_id in an
// organization: derived, so that concurrent upserts of one document meet on
// one stream and the log, not a lookup table, decides.
func StreamID(organizationID, externalID string) uuid.UUID {
	return uuid.NewSHA1(namespace, []byte(organizationID+"\x00"+externalID))
}

var namespace = uuid.MustParse("8f0c3b1e-6a52-4f0e-9d0c-6c0b9a4e2f11")

// Ref names a revision of a source: every event about one starts with it.
type Ref struct {
	KnowledgeID uuid.UUID `json:"knowledge_id"`
	Revision    int       `json:"revision"`
}

// Revised is what Added and Replaced record: a new revision of the source,
// with everything needed to ingest it again later (an uploaded file's bytes
// are in Content). Its fields sit at the top level of the events' JSON.
type Revised struct {
	Ref
	Spec
	Fingerprint string `json:"fingerprint"`
}

// Added (KnowledgeAdded) is a new source.
type Added struct {
	Revised
	AddedAt time.Time `json:"added_at"`
}

// Replaced (KnowledgeReplaced) is a source sent again under its external_id
// with other content or settings: it is ingested anew and its old chunks go.
type Replaced struct {
	Revised
	ReplacedAt time.Time `json:"replaced_at"`
}

// RefreshRequested (KnowledgeRefreshRequested) asks for a web page to be
// fetched again (or a file to be extracted again) under a new revision.
type RefreshRequested struct {
	Ref
	RequestedAt time.Time `json:"requested_at"`
}

// Ingested (KnowledgeIngested) is a revision's extracted text and its chunks
// (offsets into Text): all a read model needs, so rebuilds never re-extract
// or re-fetch.
type Ingested struct {
	Ref
	// Language is the detected language ("en", "de", ...; "" unknown).
	Language string  `json:"language"`
	Title    string  `json:"title,omitempty"`
	Text     string  `json:"text"`
	Chunks   []Chunk `json:"chunks"`
	Pages    int     `json:"pages,omitempty"`
	// FetchedURL is where a web page was finally read from, after redirects.
	FetchedURL string    `json:"fetched_url,omitempty"`
	IngestedAt time.Time `json:"ingested_at"`
}

// IngestionFailed (KnowledgeIngestionFailed): a revision could not be made
// searchable; Reason says why in words the uploader can act on.
type IngestionFailed struct {
	Ref
	Reason   string    `json:"reason"`
	FailedAt time.Time `json:"failed_at"`
}

// Removed (KnowledgeRemoved): the source and its chunks are gone.
type Removed struct {
	KnowledgeID uuid.UUID `json:"knowledge_id"`
	RemovedAt   time.Time `json:"removed_at"`
}

func (Added) EventType() string            { return TypeAdded }
func (Replaced) EventType() string         { return TypeReplaced }
func (RefreshRequested) EventType() string { return TypeRefreshRequested }
func (Ingested) EventType() string         { return TypeIngested }
func (IngestionFailed) EventType() string  { return TypeIngestionFailed }
func (Removed) EventType() string          { return TypeRemoved }

var events = domain.Events(Added{}, Replaced{}, RefreshRequested{}, Ingested{}, IngestionFailed{}, Removed{})

// Decode turns a stored event into a knowledge event; nil for other types.
func Decode(typ string, data []byte) (domain.Event, error) { return events.Decode(typ, data) }

// Source is the aggregate: one knowledge source through its revisions.
type Source struct {
	domain.Recorder
	id          uuid.UUID
	exists      bool
	removed     bool
	revision    int
	status      Status
	spec        Spec
	fingerprint string
}

// New returns a source with id and no history.
func New(id uuid.UUID) *Source { return &Source{id: id} }

// ID is the source's id.
func (s *Source) ID() uuid.UUID { return s.id }

// Exists tells whether the source was added and not removed.
func (s *Source) Exists() bool { return s.exists && !s.removed }

// Status is where the current revision stands.
func (s *Source) Status() Status { return s.status }

// Revision counts the versions of the source's content: each add, replace
// and refresh starts a new one, and ingestion results name theirs.
func (s *Source) Revision() int { return s.revision }

// Spec is the source as last sent.
func (s *Source) Spec() Spec { return s.spec }

// Put adds the source, or replaces it when it exists with other content or
// settings (upsert by external id). The same source sent again records
// nothing. A Q&A pair needs no extraction: it is ingested at once.
func (s *Source) Put(spec Spec, at time.Time) error {
	at = at.UTC()
	fp := spec.fingerprint()
	if s.Exists() && fp == s.fingerprint {
		return nil
	}
	rev := Revised{Ref: Ref{s.id, s.revision + 1}, Spec: spec, Fingerprint: fp}
	if s.Exists() {
		s.record(Replaced{Revised: rev, ReplacedAt: at})
	} else {
		s.record(Added{Revised: rev, AddedAt: at})
	}
	if spec.Kind == QA {
		doc := Document{Title: spec.Title, Blocks: []Block{{Kind: Paragraph, Text: spec.Question}, {Kind: Paragraph, Text: spec.Answer}}}
		text, _ := Split(doc)
		s.record(Ingested{
			Ref: rev.Ref, Language: DetectLanguage(text), Title: spec.Title, Text: text,
			Chunks:     []Chunk{{Index: 0, Start: 0, End: len(text), TitlePath: []string{}}},
			IngestedAt: at,
		})
	}
	return nil
}

// RequestRefresh starts a new revision that fetches a web page again, or
// extracts a file again (after an extractor improved).
func (s *Source) RequestRefresh(at time.Time) error {
	if !s.Exists() {
		return ErrNotFound
	}
	if s.spec.Kind == QA {
		return ErrNothingToRefresh
	}
	s.record(RefreshRequested{Ref: Ref{s.id, s.revision + 1}, RequestedAt: at.UTC()})
	return nil
}

// Pending tells whether revision still waits for ingestion: a result for an
// older revision, a removed source or one already done is dropped silently,
// since the worker that produced it was merely late.
func (s *Source) Pending(revision int) bool {
	return s.Exists() && s.revision == revision && s.status == Processing
}

// CompleteIngestion records the extracted text and chunks of revision.
func (s *Source) CompleteIngestion(revision int, doc Document, fetchedURL string, at time.Time) error {
	if !s.Pending(revision) {
		return nil
	}
	text, chunks := Split(doc)
	s.record(Ingested{
		Ref: Ref{s.id, revision}, Language: DetectLanguage(text), Title: doc.Title,
		Text: text, Chunks: chunks, Pages: doc.Pages, FetchedURL: fetchedURL, IngestedAt: at.UTC(),
	})
	return nil
}

// FailIngestion records why revision could not be ingested.
func (s *Source) FailIngestion(revision int, reason string, at time.Time) error {
	if !s.Pending(revision) {
		return nil
	}
	s.record(IngestionFailed{Ref: Ref{s.id, revision}, Reason: truncate(reason, 2000), FailedAt: at.UTC()})
	return nil
}

// Remove deletes the source; a removed source may be added again under its
// external id.
func (s *Source) Remove(at time.Time) error {
	if !s.Exists() {
		return ErrNotFound
	}
	s.record(Removed{KnowledgeID: s.id, RemovedAt: at.UTC()})
	return nil
}

func (s *Source) record(e domain.Event) {
	s.Apply(e)
	s.Record(e)
}

// Apply changes state by one event, new or replayed.
func (s *Source) Apply(e domain.Event) {
	switch e := e.(type) {
	case Added:
		s.exists, s.removed = true, false
		s.revision, s.spec, s.fingerprint, s.status = e.Revision, e.Spec, e.Fingerprint, Processing
	case Replaced:
		s.revision, s.spec, s.fingerprint, s.status = e.Revision, e.Spec, e.Fingerprint, Processing
	case RefreshRequested:
		s.revision, s.status = e.Revision, Processing
	case Ingested:
		if e.Revision == s.revision {
			s.status = Ready
		}
	case IngestionFailed:
		if e.Revision == s.revision {
			s.status = Failed
		}
	case Removed:
		s.removed = true
	}
}
