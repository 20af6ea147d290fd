// Package llm answers with a language model behind any OpenAI-compatible
// chat completions endpoint (OpenAI, vLLM, Ollama, llama.cpp, LiteLLM...),
// grounded in the retrieved passages. When the model cannot be reached or
// keeps failing, it answers with the fallback engine (the embedded one), so
// customers get an answer either way and the trace says what happened.
package llm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/companin/companin/domain/answer"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// EngineName signs the traces of model answers.
const EngineName = "openai-compatible"

// Config is the model endpoint and how patiently to use it.
type Config struct {
	BaseURL string // e.g. https://api.openai.com/v1 or http://localhost:11434/v1
	APIKey  string
	Model   string
	// Timeout bounds one attempt, from request to last token.
	Timeout time.Duration
	// IdleTimeout bounds the wait for the first and every next token: a
	// stream that stalls is abandoned.
	IdleTimeout time.Duration
	// Retries is how many times a failed attempt is repeated (connection
	// errors, timeouts, 429 and 5xx), waiting Backoff, 2*Backoff, ...
	Retries int
	Backoff time.Duration
	// MaxPassages and MaxHistory bound the prompt.
	MaxPassages int
	MaxHistory  int
	Temperature float64
	MaxTokens   int64
}

func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = 30 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 20 * time.Second
	}
	if c.Retries < 0 {
		c.Retries = 0
	} else if c.Retries == 0 {
		c.Retries = 2
	}
	if c.Backoff <= 0 {
		c.Backoff = 300 * time.Millisecond
	}
	if c.MaxPassages <= 0 {
		c.MaxPassages = 6
	}
	if c.MaxHistory <= 0 {
		c.MaxHistory = 10
	}
	if c.Temperature == 0 {
		c.Temperature = 0.2
	}
	if c.MaxTokens <= 0 {
		c.MaxTokens = 600
	}
	return c
}

// Engine is an answer.StreamingEngine backed by a model.
type Engine struct {
	client   openai.Client
	cfg      Config
	fallback answer.StreamingEngine
	sleep    func(context.Context, time.Duration) error
	quoter   *answer.Embedded
}

// New returns an engine for cfg. fallback answers when the model cannot;
// nil means the embedded engine.
func New(cfg Config, fallback answer.StreamingEngine) *Engine {
	cfg = cfg.withDefaults()
	if fallback == nil {
		fallback = answer.NewEmbedded()
	}
	opts := []option.RequestOption{
		option.WithBaseURL(strings.TrimRight(cfg.BaseURL, "/") + "/"),
		option.WithMaxRetries(0), // retries are ours: they must not repeat streamed text
		option.WithHTTPClient(&http.Client{}),
	}
	if cfg.APIKey != "" {
		opts = append(opts, option.WithAPIKey(cfg.APIKey))
	} else {
		opts = append(opts, option.WithAPIKey("none"))
	}
	return &Engine{client: openai.NewClient(opts...), cfg: cfg, fallback: fallback, sleep: sleepCtx, quoter: answer.NewEmbedded()}
}

// promptPassages are the passages the model is given, in retrieval order:
// always those the embedded engine would quote (the sentence or code line
// that answers may sit in a passage retrieval ranked low), then the best
// of the others, MaxPassages in all.
func (e *Engine) promptPassages(req answer.Request) []answer.Passage {
	if len(req.Passages) <= e.cfg.MaxPassages {
		return req.Passages
	}
	keep := map[int]bool{}
	for _, i := range e.quoter.Quoted(req) {
		if len(keep) < e.cfg.MaxPassages {
			keep[i] = true
		}
	}
	for i := 0; i < len(req.Passages) && len(keep) < e.cfg.MaxPassages; i++ {
		keep[i] = true
	}
	out := make([]answer.Passage, 0, len(keep))
	for i, p := range req.Passages {
		if keep[i] {
			out = append(out, p)
		}
	}
	return out
}

// Answer implements answer.Engine.
func (e *Engine) Answer(ctx context.Context, req answer.Request) (answer.Reply, error) {
	return e.AnswerStream(ctx, req, func(string) error { return nil })
}

// AnswerStream implements answer.StreamingEngine. Failed attempts are
// retried with backoff as long as nothing was streamed yet; then, or when
// the model stops midway, the fallback engine answers. Only the caller's
// context ending or onDelta failing is an error.
func (e *Engine) AnswerStream(ctx context.Context, req answer.Request, onDelta func(string) error) (answer.Reply, error) {
	if strings.TrimSpace(req.Question) == "" {
		return answer.Reply{}, answer.ErrEmptyQuestion
	}
	start := time.Now()
	passages := e.promptPassages(req)
	msgs := messages(req, passages, e.cfg.MaxHistory)
	var lastErr error
	attempts := 0
	for attempt := 0; attempt <= e.cfg.Retries; attempt++ {
		if attempt > 0 {
			if err := e.sleep(ctx, e.cfg.Backoff<<(attempt-1)); err != nil {
				return answer.Reply{}, err
			}
		}
		attempts++
		text, streamed, err := e.attempt(ctx, msgs, onDelta)
		if err == nil {
			return e.reply(req, passages, text, start, attempts), nil
		}
		if ctx.Err() != nil {
			return answer.Reply{}, ctx.Err()
		}
		var cb callbackError
		if errors.As(err, &cb) {
			return answer.Reply{}, cb.err
		}
		lastErr = err
		if streamed || !retryable(err) {
			break
		}
	}
	r, err := e.fallback.AnswerStream(ctx, req, onDelta)
	if err != nil {
		return r, err
	}
	r.Trace.Fallback = fmt.Sprintf("model %s unavailable after %d attempt(s): %s", e.cfg.Model, attempts, describe(lastErr))
	r.Trace.Attempts = attempts
	return r, nil
}

// callbackError carries an error of the caller's onDelta through the stream.
type callbackError struct{ err error }

func (c callbackError) Error() string { return c.err.Error() }

// attempt streams one completion. streamed tells whether any text reached
// onDelta (then the attempt cannot be repeated).
func (e *Engine) attempt(ctx context.Context, msgs []openai.ChatCompletionMessageParamUnion, onDelta func(string) error) (string, bool, error) {
	actx, cancel := context.WithTimeout(ctx, e.cfg.Timeout)
	defer cancel()
	var stalled bool
	var mu sync.Mutex
	idle := time.AfterFunc(e.cfg.IdleTimeout, func() {
		mu.Lock()
		stalled = true
		mu.Unlock()
		cancel()
	})
	defer idle.Stop()

	stream := e.client.Chat.Completions.NewStreaming(actx, openai.ChatCompletionNewParams{
		Model:               e.cfg.Model,
		Messages:            msgs,
		Temperature:         openai.Float(e.cfg.Temperature),
		MaxCompletionTokens: openai.Int(e.cfg.MaxTokens),
	})
	defer stream.Close()
	var b strings.Builder
	for stream.Next() {
		idle.Reset(e.cfg.IdleTimeout)
		chunk := stream.Current()
		if len(chunk.Choices) == 0 {
			continue
		}
		d := chunk.Choices[0].Delta.Content
		if d == "" {
			continue
		}
		if b.Len() == 0 {
			d = strings.TrimLeft(d, " \n")
			if d == "" {
				continue
			}
		}
		b.WriteString(d)
		if err := onDelta(d); err != nil {
			return "", true, callbackError{err}
		}
	}
	err := stream.Err()
	mu.Lock()
	if stalled && ctx.Err() == nil {
		err = fmt.Errorf("no token for %s: %w", e.cfg.IdleTimeout, context.DeadlineExceeded)
	}
	mu.Unlock()
	if err == nil && actx.Err() != nil && ctx.Err() == nil {
		err = fmt.Errorf("attempt took over %s: %w", e.cfg.Timeout, context.DeadlineExceeded)
	}
	if err != nil {
		return "", b.Len() > 0, err
	}
	if strings.TrimSpace(b.String()) == "" {
		return "", false, errors.New("the model returned an empty answer")
	}
	return strings.TrimSpace(b.String()), true, nil
}

func retryable(err error) bool {
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		s := apiErr.StatusCode
		return s == http.StatusTooManyRequests || s == http.StatusRequestTimeout || s >= 500
	}
	return true // connection refused, reset, timeouts, broken streams
}

func describe(err error) string {
	var apiErr *openai.Error
	if errors.As(err, &apiErr) {
		return fmt.Sprintf("HTTP %d", apiErr.StatusCode)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	if err == nil {
		return "unknown error"
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

var citation = regexp.MustCompile(`\[(\d{1,2})\]`)

// reply cites the passages the model referred to by number; when it cited
// none, the passages its answer draws on, judged by shared terms.
func (e *Engine) reply(req answer.Request, passages []answer.Passage, text string, start time.Time, attempts int) answer.Reply {
	cands := answer.Candidates(answer.Request{Question: req.Question, Passages: passages})
	used := map[int]bool{}
	var order []int
	for _, m := range citation.FindAllStringSubmatch(text, -1) {
		n, _ := strconv.Atoi(m[1])
		if n >= 1 && n <= len(passages) && !used[n-1] {
			used[n-1] = true
			order = append(order, n-1)
		}
	}
	if len(order) == 0 {
		rt := answer.Terms(text)
		for i, p := range passages {
			if answer.Match(rt, p) >= 0.35 && cands[i].Match >= 0.3 && len(order) < 3 {
				used[i] = true
				order = append(order, i)
			}
		}
	}
	sources := []answer.Source{}
	for _, i := range order {
		cands[i].Used = true
		sources = append(sources, answer.NewSource(passages[i], passages[i].Text))
	}
	return answer.Reply{Text: text, Sources: sources, Trace: answer.Trace{
		Engine: EngineName, Model: e.cfg.Model, Strategy: answer.StrategyGenerated, Language: answer.Language(req),
		Candidates: cands, GenerationMS: float64(time.Since(start).Microseconds()) / 1000, Attempts: attempts,
	}}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
