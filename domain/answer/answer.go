// Package answer decides what the assistant says to a customer. It holds the
// engine port (Engine, StreamingEngine), the request and reply values every
// engine shares, and the embedded engine that answers from the knowledge base
// alone, so Companin gives grounded, honest answers with no external service.
// It does no I/O: retrieval and language models are adapters.
package answer

import (
	"context"
	"errors"
	"time"
)

// ErrEmptyQuestion means there is nothing to answer.
var ErrEmptyQuestion = errors.New("answer: empty question")

// Engine turns a question, with everything known around it, into a reply.
// Implementations must be safe for concurrent use.
type Engine interface {
	Answer(ctx context.Context, req Request) (Reply, error)
}

// StreamingEngine also hands out the reply text while it is produced, so a
// chat can show it as it grows. The deltas concatenated equal Reply.Text.
// An error from onDelta aborts the answer and is returned.
type StreamingEngine interface {
	Engine
	AnswerStream(ctx context.Context, req Request, onDelta func(delta string) error) (Reply, error)
}

// Tone is how the assistant speaks. Unknown tones read as Professional.
type Tone string

// Tones an assistant may have.
const (
	Professional Tone = "professional"
	Friendly     Tone = "friendly"
	Casual       Tone = "casual"
)

// Persona is the assistant the customer talks to.
type Persona struct {
	Name         string
	Tone         Tone
	Language     string // ISO 639-1 like "en" or "de"; empty: the question's language
	DefaultTasks []string
	Instructions string
}

// Turn is one earlier message of the conversation, oldest first.
type Turn struct {
	Role    string // "user" or "assistant"
	Content string
}

// Kind tells what a passage is.
type Kind string

// Kinds of retrieved passages.
const (
	// QA is a curated question and answer pair: its Text is the answer.
	QA Kind = "qa"
	// Chunk is a piece of a document or web page.
	Chunk Kind = "chunk"
)

// Passage is what retrieval found for the question, best first.
type Passage struct {
	KnowledgeID string
	ChunkID     string
	Title       string
	Kind        Kind
	Question    string // the pair's question, for QA
	// Tags say what the source is about (a Q&A pair's tags): they count in
	// matching like the pair's question.
	Tags []string
	// Page is the page of the document the passage starts on (0: none).
	Page  int
	Text  string
	Score float64 // retrieval's score: higher is better, scale is retrieval's
}

// Request is everything an engine may use to answer.
type Request struct {
	Question string
	Persona  Persona
	// Locale is the session's or conversation's locale, a hint when the
	// persona has no language.
	Locale   string
	History  []Turn
	Traits   map[string]any
	Passages []Passage
}

// Source is a passage the reply rests on, shown to the customer as a citation.
type Source struct {
	KnowledgeID string  `json:"knowledge_id"`
	Title       string  `json:"title"`
	Snippet     string  `json:"snippet"`
	Score       float64 `json:"score"`
	Page        int     `json:"page,omitempty"`
}

// Strategy names how a reply was made, for auditors and tuning.
type Strategy string

// Strategies of the engines.
const (
	StrategyQA         Strategy = "qa_match"
	StrategyExtractive Strategy = "extractive"
	StrategyUnknown    Strategy = "no_answer"
	StrategyGreeting   Strategy = "greeting"
	StrategyGenerated  Strategy = "generated"
)

// Candidate is one retrieved passage as the engine weighed it.
type Candidate struct {
	KnowledgeID string  `json:"knowledge_id"`
	ChunkID     string  `json:"chunk_id,omitempty"`
	Title       string  `json:"title"`
	Kind        Kind    `json:"kind"`
	Score       float64 `json:"score"` // retrieval's score
	Match       float64 `json:"match"` // the engine's own coverage of the question, 0..1
	Used        bool    `json:"used"`  // cited in the reply
}

// Trace records why the assistant said what it said.
type Trace struct {
	Engine       string      `json:"engine"`
	Model        string      `json:"model,omitempty"`
	Strategy     Strategy    `json:"strategy"`
	Language     string      `json:"language"`
	Candidates   []Candidate `json:"candidates"`
	RetrievalMS  float64     `json:"retrieval_ms"`
	GenerationMS float64     `json:"generation_ms"`
	// Fallback tells why the configured engine was replaced by the embedded one.
	Fallback string `json:"fallback,omitempty"`
	Attempts int    `json:"attempts,omitempty"`
}

// Reply is the assistant's answer.
type Reply struct {
	Text    string
	Sources []Source
	Trace   Trace
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
