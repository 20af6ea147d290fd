package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/companin/companin/domain/thread"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

const (
	maxIdempotencyKeyLen = 255
	// idempotencyTTL is how long a key is remembered.
	idempotencyTTL = 24 * time.Hour
	// abandonedAfter: a request still "running" this long died with its process;
	// a retry may take the key over.
	abandonedAfter = 5 * time.Minute
)

// replayedHeaders are the response headers stored with the response and replayed.
var replayedHeaders = []string{"Content-Type", "Location"}

// idempotent makes POSTs with an Idempotency-Key safe to retry. Keys belong
// to the caller (idempotencyScope): one API credential, or one widget token,
// so that nobody replays another caller's response. The key is claimed first
// (insert-first), so a concurrent duplicate finds it taken and does not run;
// the first response is stored with a hash of the request and replayed to
// retries with the same request; another request under the same key is a
// 422. A response 5xx frees the key so the retry runs again. A response that
// holds a person's data is stored with that user context as its subject, and
// erasing the person deletes it (idempotencyRecords.ForgetSubject).
func (s *Server) idempotent(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		if key == "" {
			next.ServeHTTP(w, r)
			return
		}
		if len(key) > maxIdempotencyKeyLen {
			writeError(w, r, invalid(FieldError{Field: "Idempotency-Key", Message: fmt.Sprintf("must be at most %d characters", maxIdempotencyKeyLen)}))
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			writeError(w, r, bodyReadError(err))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		sum := sha256.New()
		fmt.Fprintf(sum, "%s %s?%s\n", r.Method, r.URL.Path, r.URL.RawQuery)
		sum.Write(body)
		hash := hex.EncodeToString(sum.Sum(nil))
		p := principalOf(r)
		org, scope := p.OrganizationID, idempotencyScope(p)

		claimed, stored, err := s.claimKey(r.Context(), org, scope, key, hash)
		if err != nil {
			writeError(w, r, err)
			return
		}
		if !claimed {
			s.answerStored(w, r, stored, hash)
			return
		}
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		done := false
		defer func() {
			if !done {
				// Panicked or failed: free the key for the retry.
				s.releaseKey(org, scope, key)
			}
		}()
		next.ServeHTTP(rec, r)
		if rec.status >= 500 || rec.status == statusClientClosed {
			// Nothing was done, or nobody knows what: the retry must run.
			return
		}
		headers := map[string]string{}
		for _, h := range replayedHeaders {
			if v := w.Header().Get(h); v != "" {
				headers[h] = v
			}
		}
		hj, _ := json.Marshal(headers)
		var subject *string
		if rec.status < 300 {
			if sub := s.subjectOf(r, rec.body.Bytes()); sub != "" {
				subject = &sub
			}
		}
		// A response about a person erased meanwhile is not kept: the key is
		// freed instead (done stays false), so a retry runs and is refused.
		tag, err := s.deps.Pool.Exec(context.WithoutCancel(r.Context()), `
			UPDATE idempotency_keys SET status = $4, headers = $5, body = $6, subject = $7
			WHERE organization_id = $1 AND principal = $2 AND key = $3
			  AND ($7::text IS NULL OR NOT EXISTS (SELECT 1 FROM subject_keys k WHERE k.subject = $7 AND k.secret IS NULL))`,
			org, scope, key, rec.status, hj, rec.body.Bytes(), subject)
		if err != nil {
			loggerFrom(r).ErrorContext(r.Context(), "store idempotent response", "err", err)
			return
		}
		done = tag.RowsAffected() == 1
		if rand.IntN(1000) == 0 {
			s.forgetOldKeys(r)
		}
	})
}

type storedResponse struct {
	hash    string
	status  *int
	headers map[string]string
	body    []byte
	created time.Time
}

// idempotencyScope is whose keys a request's key is among: the API
// credential, or the widget token (each visitor's browser gets its own).
func idempotencyScope(p Principal) string {
	if p.Widget {
		return "widget:" + p.ClientID + ":" + p.TokenID
	}
	return "api_key:" + p.ClientID
}

// subjectOf names the user context whose personal data a successful
// response holds, "" if none: a context saved (its traits), a conversation
// started for it (title, metadata), a message in such a conversation.
func (s *Server) subjectOf(r *http.Request, body []byte) string {
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case path == APIPrefix+"/contexts":
		return dataField(body, "id")
	case path == APIPrefix+"/conversations":
		return dataField(body, "user_context_id")
	case strings.HasPrefix(path, APIPrefix+"/conversations/") && strings.HasSuffix(path, "/messages"):
		id, err := uuid.Parse(strings.TrimSuffix(strings.TrimPrefix(path, APIPrefix+"/conversations/"), "/messages"))
		if err != nil {
			return ""
		}
		// The conversation's first event names its person as the subject.
		evs, err := s.deps.Store.ReadStream(r.Context(), thread.Conversation.Stream(id), 1, 1)
		if err != nil || len(evs) == 0 {
			return ""
		}
		return evs[0].Metadata.Subject
	}
	return ""
}

// dataField reads a string field of an envelope's data object.
func dataField(body []byte, field string) string {
	var env struct {
		Data map[string]any `json:"data"`
	}
	if json.Unmarshal(body, &env) != nil {
		return ""
	}
	v, _ := env.Data[field].(string)
	return v
}

// idempotencyRecords are the stored responses, as the erasure of a person
// sees them (commands.ResponseForgetter).
type idempotencyRecords struct{ pool *pgxpool.Pool }

// ForgetSubject deletes every stored response that holds subject's data.
func (i idempotencyRecords) ForgetSubject(ctx context.Context, org, subject string) error {
	_, err := i.pool.Exec(ctx, `
		DELETE FROM idempotency_keys WHERE subject = $2 AND ($1 = '' OR organization_id = $1::uuid)`, org, subject)
	if err != nil {
		return fmt.Errorf("idempotency: forget %s: %w", subject, err)
	}
	return nil
}

// claimKey inserts the key as running. If it exists it returns the stored row
// instead, unless that row was abandoned or expired, which it takes over.
func (s *Server) claimKey(ctx context.Context, org uuid.UUID, scope, key, hash string) (bool, storedResponse, error) {
	tag, err := s.deps.Pool.Exec(ctx, `
		INSERT INTO idempotency_keys (organization_id, principal, key, request_hash) VALUES ($1, $2, $3, $4)
		ON CONFLICT (organization_id, principal, key) DO NOTHING`, org, scope, key, hash)
	if err != nil {
		return false, storedResponse{}, fmt.Errorf("idempotency: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return true, storedResponse{}, nil
	}
	tag, err = s.deps.Pool.Exec(ctx, `
		UPDATE idempotency_keys SET request_hash = $4, status = NULL, headers = NULL, body = NULL, subject = NULL, created_at = now()
		WHERE organization_id = $1 AND principal = $2 AND key = $3
		  AND ((status IS NULL AND created_at < now() - $5 * interval '1 second') OR created_at < now() - $6 * interval '1 second')`,
		org, scope, key, hash, abandonedAfter.Seconds(), idempotencyTTL.Seconds())
	if err != nil {
		return false, storedResponse{}, fmt.Errorf("idempotency: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return true, storedResponse{}, nil
	}
	var st storedResponse
	var hj []byte
	err = s.deps.Pool.QueryRow(ctx, `
		SELECT request_hash, status, headers, body, created_at FROM idempotency_keys
		WHERE organization_id = $1 AND principal = $2 AND key = $3`, org, scope, key).Scan(&st.hash, &st.status, &hj, &st.body, &st.created)
	if errors.Is(err, pgx.ErrNoRows) {
		// Released between our statements: the first request failed. Try again.
		return s.claimKey(ctx, org, scope, key, hash)
	}
	if err != nil {
		return false, storedResponse{}, fmt.Errorf("idempotency: %w", err)
	}
	if len(hj) > 0 {
		_ = json.Unmarshal(hj, &st.headers)
	}
	return false, st, nil
}

func (s *Server) answerStored(w http.ResponseWriter, r *http.Request, st storedResponse, hash string) {
	switch {
	case st.hash != hash:
		writeProblem(w, http.StatusUnprocessableEntity,
			"Idempotency-Key already used for a different request", "idempotency_key_reused", nil)
	case st.status == nil:
		w.Header().Set("Retry-After", "1")
		writeProblem(w, http.StatusConflict,
			"A request with this Idempotency-Key is still being processed", "idempotency_key_in_use", nil)
	default:
		for k, v := range st.headers {
			w.Header().Set(k, v)
		}
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(*st.status)
		_, _ = w.Write(st.body)
	}
}

func (s *Server) releaseKey(org uuid.UUID, scope, key string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.deps.Pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE organization_id = $1 AND principal = $2 AND key = $3 AND status IS NULL`, org, scope, key); err != nil {
		s.log.Error("release idempotency key", "err", err)
	}
}

func (s *Server) forgetOldKeys(r *http.Request) {
	if _, err := s.deps.Pool.Exec(r.Context(), `DELETE FROM idempotency_keys WHERE created_at < now() - $1 * interval '1 second'`, idempotencyTTL.Seconds()); err != nil {
		loggerFrom(r).WarnContext(r.Context(), "idempotency cleanup", "err", err)
	}
}

// recorder passes the response through and keeps a copy of it.
type recorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	body        bytes.Buffer
}

func (w *recorder) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(b []byte) (int, error) {
	w.wroteHeader = true
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

func (w *recorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }
