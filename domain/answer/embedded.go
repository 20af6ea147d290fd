package answer

import (
	"context"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Embedded answers from the retrieved passages alone, with no external
// service: the curated Q&A pair when one clearly matches, else the few
// sentences of the best passages that answer the question, else an honest
// "I don't know" with an offer to hand over to a person. It judges relevance
// itself, by how much of the question a passage covers, so it does not
// depend on the scale of retrieval's scores. The zero value is not ready:
// use NewEmbedded.
type Embedded struct {
	// QAMatch is the least match of a Q&A pair's question with the customer's
	// question (0..1) to answer with the pair as it is.
	QAMatch float64
	// QAMargin is how far the best pair must lead the next one, so two
	// similar pairs do not make the engine pick one at random.
	QAMargin float64
	// SentenceMatch is the least share of the question a sentence must cover
	// to be quoted.
	SentenceMatch float64
	// MaxSentences and MaxChars keep extractive answers short.
	MaxSentences int
	MaxChars     int
	// MaxPassages bounds how many retrieved passages are read.
	MaxPassages int
	now         func() time.Time
}

// NewEmbedded returns the embedded engine with the settings the tests
// and the retrieval quality benchmark were tuned with.
func NewEmbedded() *Embedded {
	return &Embedded{
		QAMatch: 0.6, QAMargin: 0.1, SentenceMatch: 0.5,
		MaxSentences: 3, MaxChars: 480, MaxPassages: 8,
		now: time.Now,
	}
}

// EngineName is how the embedded engine signs its traces.
const EngineName = "embedded"

// Language picks the language to answer in: the assistant's, else the
// session's locale, else the question's.
func Language(req Request) string {
	switch {
	case req.Persona.Language != "":
		return normalizeLanguage(req.Persona.Language)
	case req.Locale != "":
		return normalizeLanguage(req.Locale)
	default:
		return normalizeLanguage(detectLanguage(req.Question))
	}
}

// Answer implements Engine.
func (e *Embedded) Answer(ctx context.Context, req Request) (Reply, error) {
	start := e.now()
	if strings.TrimSpace(req.Question) == "" {
		return Reply{}, ErrEmptyQuestion
	}
	if err := ctx.Err(); err != nil {
		return Reply{}, err
	}
	lang := Language(req)
	tone := normalizeTone(req.Persona.Tone)
	r := e.decide(req, lang, tone)
	r.Trace.Engine = EngineName
	r.Trace.Language = lang
	r.Trace.GenerationMS = ms(e.now().Sub(start))
	return r, nil
}

// AnswerStream implements StreamingEngine. The embedded engine is fast
// enough to answer first and stream the words after, so clients can use one
// code path for every engine.
func (e *Embedded) AnswerStream(ctx context.Context, req Request, onDelta func(string) error) (Reply, error) {
	r, err := e.Answer(ctx, req)
	if err != nil {
		return r, err
	}
	for _, d := range Deltas(r.Text) {
		if err := onDelta(d); err != nil {
			return Reply{}, err
		}
	}
	return r, nil
}

// Deltas splits text into word-sized pieces whose concatenation is text, as
// a model would stream it.
func Deltas(text string) []string {
	var out []string
	start := 0
	for i, r := range text {
		if r == ' ' && i > start {
			out = append(out, text[start:i])
			start = i
		}
	}
	if start < len(text) {
		out = append(out, text[start:])
	}
	return out
}

type weighed struct {
	p     Passage
	match float64
	used  bool
}

func (e *Embedded) decide(req Request, lang string, tone Tone) Reply {
	q := terms(req.Question)
	passages := req.Passages
	if len(passages) > e.MaxPassages {
		passages = passages[:e.MaxPassages]
	}
	ws := make([]*weighed, len(passages))
	for i, p := range passages {
		ws[i] = &weighed{p: p, match: Match(q, p)}
	}
	if len(q) == 0 {
		return e.finish(greeting(req, lang, tone), StrategyGreeting, ws, nil)
	}
	if r, ok := e.qa(ws); ok {
		return r
	}
	if r, ok := e.extract(q, ws, lang, tone); ok {
		return r
	}
	// A follow-up ("and on Saturdays?") may need the earlier question's terms.
	if prev := lastUserTurn(req.History, req.Question); prev != "" {
		more := append(append([]string{}, q...), terms(prev)...)
		// The answer must still speak of what this question names ("and on
		// Saturdays?"): only its framing words may go unanswered.
		var named []string
		for _, t := range q {
			if !softTerms[t] {
				named = append(named, t)
			}
		}
		if r, ok := e.extract(more, ws, lang, tone); ok && coverage(named, newTermSet(r.Text)) == 1 || ok && len(named) == 0 {
			return r
		}
		for _, w := range ws {
			w.used = false
		}
	}
	return e.finish(say(lang, tone, phraseUnknown), StrategyUnknown, ws, nil)
}

// Match is how well a passage covers the question's terms, 0..1. For a Q&A
// pair the two questions are compared both ways, so a short pair question
// does not match every long question that contains its one word.
func Match(q []string, p Passage) float64 {
	if len(q) == 0 {
		return 0
	}
	if p.Kind == QA && p.Question != "" {
		qq := terms(p.Question)
		a := coverage(q, newTermSet(p.Question))
		b := coverage(qq, newTermSet(strings.Join(q, " ")))
		f1 := 0.0
		if a+b > 0 {
			f1 = 2 * a * b / (a + b)
		}
		withAnswer := 0.8 * coverage(q, newTermSet(p.Question+" "+p.Text))
		return max(f1, withAnswer)
	}
	return coverage(q, newTermSet(p.Title+"\n"+p.Text))
}

// Terms exposes the analyzer for callers that weigh passages themselves.
func Terms(s string) []string { return terms(s) }

func (e *Embedded) qa(ws []*weighed) (Reply, bool) {
	var best, second *weighed
	for _, w := range ws {
		if w.p.Kind != QA || strings.TrimSpace(w.p.Text) == "" {
			continue
		}
		switch {
		case best == nil || w.match > best.match:
			best, second = w, best
		case second == nil || w.match > second.match:
			second = w
		}
	}
	if best == nil || best.match < e.QAMatch {
		return Reply{}, false
	}
	if second != nil && best.match-second.match < e.QAMargin {
		return Reply{}, false
	}
	best.used = true
	text := strings.TrimSpace(best.p.Text)
	return e.finish(text, StrategyQA, ws, []Source{source(best.p, text)}), true
}

type sentence struct {
	w     *weighed
	pi    int // passage rank
	si    int // sentence index in the passage
	text  string
	score float64
}

func (e *Embedded) extract(q []string, ws []*weighed, lang string, tone Tone) (Reply, bool) {
	var all []*sentence
	byPassage := map[int][]*sentence{}
	for pi, w := range ws {
		for si, s := range sentences(w.p.Text) {
			// The heading a sentence stands under says what it is about.
			c := 0.85*coverage(q, newTermSet(s.heading+"\n"+s.text)) + 0.15*coverage(q, newTermSet(s.text))
			// A little credit for the title and for retrieval's ranking breaks ties.
			c += 0.05*coverage(q, newTermSet(w.p.Title)) + 0.01*float64(len(ws)-pi)/float64(len(ws))
			st := &sentence{w: w, pi: pi, si: si, text: s.text, score: c}
			all = append(all, st)
			byPassage[pi] = append(byPassage[pi], st)
		}
	}
	if len(all) == 0 {
		return Reply{}, false
	}
	ranked := append([]*sentence(nil), all...)
	sort.SliceStable(ranked, func(i, j int) bool { return ranked[i].score > ranked[j].score })
	best := ranked[0]
	if best.score < e.SentenceMatch {
		return Reply{}, false
	}
	picked := []*sentence{best}
	chars := len(best.text)
	add := func(s *sentence) bool {
		if len(picked) >= e.MaxSentences || chars+len(s.text) > e.MaxChars {
			return false
		}
		for _, p := range picked {
			if p == s {
				return false
			}
		}
		picked = append(picked, s)
		chars += len(s.text) + 1
		return true
	}
	// A heading, a question or a lead-in ("To reset it:") says little by
	// itself: the sentence after it is the answer.
	if next := neighbour(byPassage[best.pi], best.si+1); next != nil && leadIn(best.text) {
		add(next)
	}
	covered := newTermSet(best.text)
	for _, s := range ranked[1:] {
		if s.score < max(e.SentenceMatch*0.7, best.score*0.6) {
			break
		}
		// Only sentences that say something new about the question.
		fresh := false
		for _, t := range q {
			if !covered.has(t) && newTermSet(s.text).has(t) {
				fresh = true
			}
		}
		if (fresh || s.pi == best.pi && (s.si == best.si+1 || s.si == best.si-1)) && add(s) {
			for t := range newTermSet(s.text) {
				covered[t] = true
			}
		}
	}
	// Read in the order of the sources, and within one in the document's order.
	order := map[*weighed]int{}
	for _, s := range picked {
		if _, ok := order[s.w]; !ok {
			order[s.w] = len(order)
		}
	}
	sort.SliceStable(picked, func(i, j int) bool {
		a, b := picked[i], picked[j]
		if a.w != b.w {
			return order[a.w] < order[b.w]
		}
		return a.si < b.si
	})
	var body []string
	var sources []Source
	snippets := map[*weighed][]string{}
	for _, s := range picked {
		body = append(body, terminate(s.text))
		snippets[s.w] = append(snippets[s.w], terminate(s.text))
	}
	for _, s := range picked {
		if s.w.used {
			continue
		}
		s.w.used = true
		sources = append(sources, source(s.w.p, strings.Join(snippets[s.w], " ")))
	}
	title := strings.TrimSpace(picked[0].w.p.Title)
	prefix := say(lang, tone, phraseExtractiveUntitled)
	if title != "" {
		prefix = say(lang, tone, phraseExtractive, title)
	}
	return e.finish(prefix+strings.Join(body, " "), StrategyExtractive, ws, sources), true
}

func neighbour(ss []*sentence, i int) *sentence {
	if i >= 0 && i < len(ss) {
		return ss[i]
	}
	return nil
}

func leadIn(s string) bool {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, "?") || strings.HasSuffix(s, ":") {
		return true
	}
	return len(strings.Fields(s)) < 6
}

// terminate ends a quoted line with a full stop, so list items and headings
// read as sentences when joined.
func terminate(s string) string {
	s = strings.TrimSpace(s)
	r, _ := utf8.DecodeLastRuneInString(s)
	if unicode.IsLetter(r) || unicode.IsDigit(r) || r == ')' {
		return s + "."
	}
	return s
}

// SnippetLen bounds a source's snippet.
const SnippetLen = 240

func source(p Passage, snippet string) Source {
	return Source{KnowledgeID: p.KnowledgeID, Title: p.Title, Snippet: truncate(snippet, SnippetLen), Score: p.Score}
}

func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	rs := []rune(s)[:n]
	if i := strings.LastIndexByte(string(rs), ' '); i > n/2 {
		return string(rs)[:i] + " …"
	}
	return string(rs) + "…"
}

func (e *Embedded) finish(text string, st Strategy, ws []*weighed, sources []Source) Reply {
	cands := make([]Candidate, len(ws))
	for i, w := range ws {
		cands[i] = Candidate{KnowledgeID: w.p.KnowledgeID, ChunkID: w.p.ChunkID, Title: w.p.Title, Kind: w.p.Kind,
			Score: w.p.Score, Match: round(w.match), Used: w.used}
	}
	if sources == nil {
		sources = []Source{}
	}
	return Reply{Text: text, Sources: sources, Trace: Trace{Strategy: st, Candidates: cands}}
}

func round(f float64) float64 { return float64(int(f*1000+0.5)) / 1000 }

func greeting(req Request, lang string, tone Tone) string {
	name := ""
	if n, ok := req.Traits["name"].(string); ok && strings.TrimSpace(n) != "" {
		name = " " + strings.Fields(n)[0]
	}
	intro := ""
	if req.Persona.Name != "" && len(req.History) == 0 {
		intro = say(lang, tone, phraseIntro, req.Persona.Name)
	}
	return say(lang, tone, phraseGreeting, name, intro)
}

func lastUserTurn(h []Turn, current string) string {
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Role == "user" && strings.TrimSpace(h[i].Content) != strings.TrimSpace(current) {
			return h[i].Content
		}
	}
	return ""
}

// Candidates weighs the request's passages as the embedded engine does, so
// every engine's trace shows how well each passage covered the question.
func Candidates(req Request) []Candidate {
	q := terms(req.Question)
	out := make([]Candidate, len(req.Passages))
	for i, p := range req.Passages {
		out[i] = Candidate{KnowledgeID: p.KnowledgeID, ChunkID: p.ChunkID, Title: p.Title, Kind: p.Kind,
			Score: p.Score, Match: round(Match(q, p))}
	}
	return out
}

// NewSource cites p with a snippet of at most SnippetLen characters.
func NewSource(p Passage, snippet string) Source { return source(p, snippet) }
