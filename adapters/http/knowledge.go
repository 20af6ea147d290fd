package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/companin/companin/adapters/extract"
	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/knowledge"
	"github.com/companin/companin/queries"
	"github.com/google/uuid"
)

// knowledgeCommon is what every kind of source accepts besides its content.
type knowledgeCommon struct {
	Title        *string  `json:"title"`
	Tags         []string `json:"tags"`
	Source       *string  `json:"source"`
	AssistantIDs []string `json:"assistant_ids"`
	ExternalID   *string  `json:"external_id"`
}

func (c knowledgeCommon) parse() (knowledge.Common, error) {
	out := knowledge.Common{Title: deref(c.Title), Tags: c.Tags, Source: deref(c.Source), ExternalID: deref(c.ExternalID)}
	ids, err := parseAssistantIDs(c.AssistantIDs)
	out.AssistantIDs = ids
	return out, err
}

func parseAssistantIDs(raw []string) ([]uuid.UUID, error) {
	var ids []uuid.UUID
	for i, s := range raw {
		for _, part := range strings.Split(s, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			id, err := uuid.Parse(part)
			if err != nil {
				return nil, invalid(FieldError{Field: fmt.Sprintf("assistant_ids[%d]", i), Message: "must be an assistant id (UUID)"})
			}
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// addKnowledgeFile takes multipart/form-data with title, file_type and file
// (and optionally external_id, assistant_ids, tags, source). It answers at
// once with status "processing"; the ingestion worker does the rest.
func (s *Server) addKnowledgeFile(w http.ResponseWriter, r *http.Request) {
	spec, err := uploadSpec(r)
	s.addKnowledge(w, r, spec, err)
}

// addKnowledgeQA takes {question, answer, tags, source}: searchable at once.
func (s *Server) addKnowledgeQA(w http.ResponseWriter, r *http.Request) {
	spec, err := decodeSpec(w, r, &addQARequest{})
	s.addKnowledge(w, r, spec, err)
}

// addKnowledgeURL takes {url, title}: fetched and indexed in the background.
func (s *Server) addKnowledgeURL(w http.ResponseWriter, r *http.Request) {
	spec, err := decodeSpec(w, r, &addURLRequest{})
	s.addKnowledge(w, r, spec, err)
}

// addKnowledge records a new source of any kind, parsed by its handler, and
// answers 201 with the source as the read model shows it; if the read model
// is still behind after the wait (a busy server), the write stands: it
// answers with what the request said, status "processing".
func (s *Server) addKnowledge(w http.ResponseWriter, r *http.Request, spec knowledge.Spec, err error) {
	if err != nil {
		writeError(w, r, err)
		return
	}
	res, err := s.app.Commands.AddKnowledge.Handle(r.Context(), commands.AddKnowledge{Spec: spec})
	if err != nil {
		writeError(w, r, err)
		return
	}
	s.writeKnowledge(w, r, http.StatusCreated, res, sentView(res.ID, spec, s.now().UTC()))
}

// uploadSpec reads and checks an upload: the form's fields, the declared
// type (or the file name's extension), and that the bytes are of that type.
func uploadSpec(r *http.Request) (knowledge.Spec, error) {
	form, err := readUpload(r)
	if err != nil {
		return knowledge.Spec{}, err
	}
	common, err := knowledgeCommon{
		Title: form.value("title"), Source: form.value("source"), ExternalID: form.value("external_id"),
		Tags: form.values("tags"), AssistantIDs: form.values("assistant_ids"),
	}.parse()
	if err != nil {
		return knowledge.Spec{}, err
	}
	declared := deref(form.value("file_type"))
	if strings.TrimSpace(declared) == "" {
		declared = strings.TrimPrefix(filepath.Ext(form.fileName), ".")
	}
	fileType, err := knowledge.ParseFileType("file_type", declared)
	if err != nil {
		return knowledge.Spec{}, err
	}
	if form.file == nil {
		return knowledge.Spec{}, invalid(FieldError{Field: "file", Message: "is required: send the document as the multipart field \"file\""})
	}
	if err := extract.Check(fileType, form.file); err != nil {
		msg := err.Error()
		if errors.Is(err, extract.ErrTypeMismatch) {
			msg += "; accepted types are " + strings.Join(knowledge.FileTypes, ", ")
		}
		return knowledge.Spec{}, invalid(FieldError{Field: "file", Message: msg})
	}
	return knowledge.ParseFile(common, fileType, form.fileName, form.file)
}

// uploadForm is a parsed multipart upload: its text fields and one file.
type uploadForm struct {
	fields   map[string][]string
	file     []byte
	fileName string
}

func (f uploadForm) value(k string) *string {
	if v, ok := f.fields[k]; ok && len(v) > 0 {
		return &v[0]
	}
	return nil
}

// values returns a repeated field (k or k[]); a single value holding a JSON
// array is read as that array.
func (f uploadForm) values(k string) []string {
	vs := append(append([]string{}, f.fields[k]...), f.fields[k+"[]"]...)
	if len(vs) == 1 && strings.HasPrefix(strings.TrimSpace(vs[0]), "[") {
		var arr []string
		if json.Unmarshal([]byte(vs[0]), &arr) == nil {
			return arr
		}
	}
	return vs
}

// readUpload streams the multipart body: the file part is read up to
// knowledge.MaxFileBytes (a 413 past it), text fields up to 64 KiB each.
func readUpload(r *http.Request) (uploadForm, error) {
	f := uploadForm{fields: map[string][]string{}}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		return f, httpError(http.StatusUnsupportedMediaType, "unsupported_media_type",
			"Send the file as multipart/form-data with the fields title, file_type and file")
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return f, httpError(http.StatusBadRequest, "malformed_multipart", "The multipart body cannot be read: "+err.Error())
	}
	tooLarge := httpError(http.StatusRequestEntityTooLarge, "file_too_large",
		fmt.Sprintf("File too large: at most %d MB per file; split the document and upload the parts", knowledge.MaxFileBytes>>20))
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return f, tooLarge
			}
			return f, httpError(http.StatusBadRequest, "malformed_multipart", "The multipart body cannot be read: "+err.Error())
		}
		name := part.FormName()
		if p := es.CheckText(name); p != "" {
			return f, invalidText("form", "a field name "+p)
		}
		if p := es.CheckText(part.FileName()); p != "" {
			return f, invalidText(name, "(its file name) "+p)
		}
		if part.FileName() != "" || name == "file" {
			if f.file != nil {
				_ = part.Close()
				continue
			}
			b, err := io.ReadAll(io.LimitReader(part, knowledge.MaxFileBytes+1))
			if err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					return f, tooLarge
				}
				return f, httpError(http.StatusBadRequest, "malformed_multipart", "The file cannot be read: "+err.Error())
			}
			if len(b) > knowledge.MaxFileBytes {
				return f, tooLarge
			}
			f.file, f.fileName = b, filepath.Base(part.FileName())
			if f.fileName == "." || f.fileName == "/" {
				f.fileName = ""
			}
			continue
		}
		b, err := io.ReadAll(io.LimitReader(part, 64<<10+1))
		if err != nil || len(b) > 64<<10 {
			return f, invalid(FieldError{Field: name, Message: "is too long"})
		}
		if p := es.CheckText(string(b)); p != "" {
			return f, invalidText(name, p)
		}
		if terr := es.CheckJSONText(b); terr != nil && json.Valid(b) {
			// A JSON array of values (see values): its strings count too.
			return f, invalidText(name+terr.Path, terr.Problem)
		}
		f.fields[name] = append(f.fields[name], string(b))
	}
	return f, nil
}

// knowledgeRequest is a JSON body that describes a new source.
type knowledgeRequest interface {
	spec() (knowledge.Spec, error)
}

// decodeSpec decodes the body into req and parses the source it describes.
func decodeSpec(w http.ResponseWriter, r *http.Request, req knowledgeRequest) (knowledge.Spec, error) {
	if err := decodeJSON(w, r, req); err != nil {
		return knowledge.Spec{}, err
	}
	return req.spec()
}

type addQARequest struct {
	knowledgeCommon
	Question *string `json:"question"`
	Answer   *string `json:"answer"`
}

func (q addQARequest) spec() (knowledge.Spec, error) {
	common, err := q.parse()
	if err != nil {
		return knowledge.Spec{}, err
	}
	return knowledge.ParseQA(common, deref(q.Question), deref(q.Answer))
}

type addURLRequest struct {
	knowledgeCommon
	URL *string `json:"url"`
}

func (u addURLRequest) spec() (knowledge.Spec, error) {
	common, err := u.parse()
	if err != nil {
		return knowledge.Spec{}, err
	}
	return knowledge.ParseURL(common, deref(u.URL))
}

// writeKnowledge answers a write with the source as the read model shows it
// once it caught up with the write, or else with sent (nil: the error).
func (s *Server) writeKnowledge(w http.ResponseWriter, r *http.Request, status int, res commands.Written, sent any) {
	s.writeWritten(w, r, status, res, func(ctx context.Context) (any, error) {
		k, err := s.app.Queries.GetKnowledge.Handle(ctx, principalOf(r).OrganizationID, res.ID)
		return k, err
	}, sent)
}

// sentView is a new source as its request described it, processing.
func sentView(id uuid.UUID, spec knowledge.Spec, now time.Time) queries.KnowledgeSource {
	v := queries.KnowledgeSource{ID: id, Kind: string(spec.Kind), Title: spec.Title, FileType: spec.FileType,
		FileName: spec.FileName, URL: spec.URL, Question: spec.Question, Answer: spec.Answer, Tags: spec.Tags,
		Source: spec.Source, AssistantIDs: spec.AssistantIDs, Status: string(knowledge.Processing), Revision: 1,
		SizeBytes: spec.SizeBytes, CreatedAt: now, UpdatedAt: now}
	if v.Title == "" {
		// As the read model shows a page not fetched yet.
		v.Title = v.URL
	}
	if spec.ExternalID != "" {
		v.ExternalID = &spec.ExternalID
	}
	if v.Tags == nil {
		v.Tags = []string{}
	}
	if v.AssistantIDs == nil {
		v.AssistantIDs = []uuid.UUID{}
	}
	return v
}

func (s *Server) getKnowledge(w http.ResponseWriter, r *http.Request) {
	readByID(w, r, knowledge.ErrNotFound, func(ctx context.Context, id uuid.UUID) (any, error) {
		k, err := s.app.Queries.GetKnowledge.Handle(ctx, principalOf(r).OrganizationID, id)
		return k, err
	})
}

// listKnowledgeChunks shows how a source was cut into passages, with their
// heading trails and pages: what search can find.
func (s *Server) listKnowledgeChunks(w http.ResponseWriter, r *http.Request) {
	id, err := pathUUID(r, knowledge.ErrNotFound)
	if err != nil {
		writeError(w, r, err)
		return
	}
	org := principalOf(r).OrganizationID
	writePage(w, r, func(ctx context.Context, p queries.Page) ([]queries.KnowledgeChunk, bool, string, error) {
		if _, err := s.app.Queries.GetKnowledge.Handle(ctx, org, id); err != nil {
			return nil, false, "", err
		}
		return s.app.Queries.ListKnowledgeChunks.Handle(ctx, org, id, p.Limit, p.Cursor)
	})
}

// listKnowledge pages through the sources, newest first; ?kind=, ?status=
// and ?assistant_id= filter.
func (s *Server) listKnowledge(w http.ResponseWriter, r *http.Request) {
	writePage(w, r, func(ctx context.Context, p queries.Page) ([]queries.KnowledgeSource, bool, string, error) {
		q, err := knowledgeFilter(r)
		if err != nil {
			return nil, false, "", err
		}
		q.Limit, q.Cursor = p.Limit, p.Cursor
		return s.app.Queries.ListKnowledge.Handle(ctx, q)
	})
}

// knowledgeFilter reads the filters of GET /knowledge.
func knowledgeFilter(r *http.Request) (queries.ListKnowledgeQuery, error) {
	q := queries.ListKnowledgeQuery{OrganizationID: principalOf(r).OrganizationID,
		Kind: r.URL.Query().Get("kind"), Status: r.URL.Query().Get("status")}
	switch knowledge.SourceKind(q.Kind) {
	case "", knowledge.File, knowledge.QA, knowledge.URL:
	default:
		return q, invalid(FieldError{Field: "kind", Message: "must be file, qa or url"})
	}
	switch knowledge.Status(q.Status) {
	case "", knowledge.Processing, knowledge.Ready, knowledge.Failed:
	default:
		return q, invalid(FieldError{Field: "status", Message: "must be processing, ready or failed"})
	}
	if a := r.URL.Query().Get("assistant_id"); a != "" {
		var err error
		if q.AssistantID, err = uuid.Parse(a); err != nil {
			return q, invalid(FieldError{Field: "assistant_id", Message: "must be an assistant id (UUID)"})
		}
	}
	return q, nil
}

func (s *Server) removeKnowledge(w http.ResponseWriter, r *http.Request) {
	s.deleteByID(w, r, s.app.Commands.RemoveKnowledge, knowledge.ErrNotFound)
}

// refreshKnowledge fetches a web page again (or extracts a file again); the
// source's current chunks keep answering until the new ones are ready.
func (s *Server) refreshKnowledge(w http.ResponseWriter, r *http.Request) {
	s.decideByID(w, r, s.app.Commands.RefreshKnowledge, knowledge.ErrNotFound, func(res commands.Written) {
		s.writeKnowledge(w, r, http.StatusAccepted, res, nil)
	})
}

type searchKnowledgeRequest struct {
	Query       *string `json:"query"`
	AssistantID *string `json:"assistant_id"`
	Limit       *int    `json:"limit"`
}

// searchKnowledge shows what retrieval finds for a query, with each
// passage's score and why it matched, for tuning a knowledge base.
func (s *Server) searchKnowledge(w http.ResponseWriter, r *http.Request) {
	var req searchKnowledgeRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, r, err)
		return
	}
	q := queries.SearchKnowledgeQuery{OrganizationID: principalOf(r).OrganizationID, Query: deref(req.Query), Limit: 5}
	var fields []FieldError
	if req.Limit != nil {
		if *req.Limit < 1 || *req.Limit > 50 {
			fields = append(fields, FieldError{Field: "limit", Message: "must be an integer from 1 to 50"})
		}
		q.Limit = *req.Limit
	}
	if a := deref(req.AssistantID); a != "" {
		id, err := uuid.Parse(a)
		if err != nil {
			fields = append(fields, FieldError{Field: "assistant_id", Message: "must be an assistant id (UUID)"})
		}
		q.AssistantID = id
	}
	if len(fields) > 0 {
		writeError(w, r, invalid(fields...))
		return
	}
	passages, err := s.app.Queries.SearchKnowledge.Handle(r.Context(), q)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeData(w, r, http.StatusOK, map[string]any{"query": strings.TrimSpace(q.Query), "results": passages})
}
