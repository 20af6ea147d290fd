package answer

import (
	"context"
	"slices"
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
	if r, ok := e.qa(q, ws); ok {
		return r
	}
	if r, ok := e.extract(q, req.Question, ws, lang, tone); ok {
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
		if r, ok := e.extract(more, req.Question, ws, lang, tone); ok && coverage(named, newTermSet(r.Text)) == 1 || ok && len(named) == 0 {
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
		// The pair's tags say what it is about, in whatever language they
		// were written: they count as words of its question.
		about := p.Question + "\n" + strings.Join(p.Tags, "\n")
		qq := terms(p.Question)
		a := coverage(q, newTermSet(about))
		b := coverage(qq, newTermSet(strings.Join(q, " ")))
		f1 := 0.0
		if a+b > 0 {
			f1 = 2 * a * b / (a + b)
		}
		withAnswer := 0.8 * coverage(q, newTermSet(about+"\n"+p.Text))
		return max(f1, withAnswer)
	}
	return coverage(q, newTermSet(p.Title+"\n"+p.Text))
}

// Terms exposes the analyzer for callers that weigh passages themselves.
func Terms(s string) []string { return terms(s) }

func (e *Embedded) qa(q []string, ws []*weighed) (Reply, bool) {
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
	// A pair that leaves out what the question names ("reset the admin
	// password" against "reset my password") gives way to a passage that
	// covers it.
	asked := coverage(q, newTermSet(best.p.Question+"\n"+strings.Join(best.p.Tags, "\n")))
	for _, w := range ws {
		if w.p.Kind != QA && w.match >= 1 && asked < 0.8 {
			return Reply{}, false
		}
	}
	best.used = true
	text := strings.TrimSpace(best.p.Text)
	return e.finish(text, StrategyQA, ws, []Source{source(best.p, text)}), true
}

type sentence struct {
	w     *weighed
	pi    int // passage rank
	si    int // sentence index in the passage
	s     sentenceOf
	text  string
	match float64 // how much of the question it covers, with its context
	score float64 // match plus what its form and place add, for ranking
}

func (e *Embedded) extract(q []string, question string, ws []*weighed, lang string, tone Tone) (Reply, bool) {
	kind := kindOf(question)
	var all []*sentence
	byPassage := map[int][]*sentence{}
	// Headings and lead-ins are shared by many sentences: analyse each once.
	sets := map[string]termSet{}
	setOf := func(s string) termSet {
		ts, ok := sets[s]
		if !ok {
			ts = newTermSet(s)
			sets[s] = ts
		}
		return ts
	}
	for pi, w := range ws {
		title := coverage(q, setOf(w.p.Title))
		for si, s := range sentences(w.p.Text) {
			// The heading a sentence stands under says what it is about; the
			// sentence leading into a code snippet says what the code does.
			own := termSets{setOf(s.text)}
			if s.code {
				own = append(own, setOf(s.lead))
			}
			context := append(termSets{setOf(s.heading)}, own...)
			if s.code {
				context = append(context, setOf(s.block))
			}
			m := 0.85*coverage(q, context) + 0.15*coverage(q, own)
			// A little credit for the title and for retrieval's ranking breaks ties.
			c := m + 0.05*title + 0.01*float64(len(ws)-pi)/float64(len(ws))
			c += kindBonus(kind, q, s)
			st := &sentence{w: w, pi: pi, si: si, s: s, text: s.text, match: m, score: c}
			all = append(all, st)
			byPassage[pi] = append(byPassage[pi], st)
		}
	}
	ranked := make([]*sentence, 0, len(all))
	for _, s := range all {
		if s.match >= e.SentenceMatch {
			ranked = append(ranked, s)
		}
	}
	if len(ranked) == 0 {
		return Reply{}, false
	}
	sort.SliceStable(ranked, func(i, j int) bool { return ranked[i].score > ranked[j].score })
	best := ranked[0]
	picked := []*sentence{best}
	chars := quotedLen(best)
	add := func(s *sentence) bool {
		if len(picked) >= e.MaxSentences || chars+quotedLen(s) > e.MaxChars {
			return false
		}
		for _, p := range picked {
			if p == s || p.w == s.w && (p.text == s.text || p.s.code && p.s.lead == s.text) {
				return false
			}
		}
		picked = append(picked, s)
		chars += quotedLen(s) + 1
		return true
	}
	// A heading, a question or a lead-in ("To reset it:") says little by
	// itself: the sentence or code after it is the answer.
	if next := neighbour(byPassage[best.pi], best.si+1); next != nil && !best.s.code && (leadIn(best.text) || next.s.code && next.s.lead == best.text) {
		add(next)
	}
	// The sentence after the best one in its paragraph often completes it
	// ("We need to store request data. Use gorilla/context to ...").
	if next := neighbour(byPassage[best.pi], best.si+1); len(picked) == 1 && next != nil && !best.s.code && next.s.para == best.s.para {
		add(next)
	}
	covered := newTermSet(best.text + "\n" + best.s.lead)
	for _, s := range ranked[1:] {
		if s.score < max(e.SentenceMatch*0.7, best.score*0.6) {
			break
		}
		// Only sentences that say something new about the question.
		fresh := false
		for _, t := range q {
			if !covered.covers(t) && newTermSet(s.text).covers(t) {
				fresh = true
			}
		}
		// A neighbour in the same paragraph completes the best sentence; a
		// neighbouring code snippet is another command.
		near := s.pi == best.pi && (s.si == best.si+1 || s.si == best.si-1) && !s.s.code && !best.s.code && s.s.para == best.s.para
		if (fresh || near) && add(s) {
			for t := range newTermSet(s.text) {
				covered[t] = true
			}
		}
	}
	// A lead-in quoted without what it leads into ("Run this:") becomes the
	// code it introduces, which is quoted after it.
	for i, s := range picked {
		leads := strings.HasSuffix(s.text, ":") || kind != askFact && kind != askName && kind != askNumber
		if next := neighbour(byPassage[s.pi], s.si+1); !s.s.code && leads && next != nil &&
			next.s.code && next.s.lead == s.text && !slices.Contains(picked, next) {
			picked[i] = next
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
	quoted := map[string]bool{}
	for _, s := range picked {
		quoted[s.text] = true
	}
	for _, s := range picked {
		// A code snippet is quoted with the sentence that leads into it,
		// unless that sentence is quoted already.
		withLead := s.s.code && s.s.lead != "" && !quoted[s.s.lead]
		quoted[s.s.lead] = true
		q := quote(s.s, withLead)
		body = append(body, q)
		snippets[s.w] = append(snippets[s.w], q)
	}
	for _, s := range picked {
		if s.w.used {
			continue
		}
		s.w.used = true
		sources = append(sources, source(s.w.p, strings.Join(snippets[s.w], " ")))
	}
	first := picked[0].w.p
	title := strings.TrimSpace(first.Title)
	prefix := say(lang, tone, phraseExtractiveUntitled)
	switch {
	case title != "" && first.Page > 0:
		prefix = say(lang, tone, phraseExtractive, say(lang, tone, phrasePage, title, first.Page))
	case title != "":
		prefix = say(lang, tone, phraseExtractive, title)
	}
	return e.finish(prefix+strings.Join(body, " "), StrategyExtractive, ws, sources), true
}

// maxCodeLines bounds a quoted code snippet; longer blocks are cut to the
// lines around the one that matters.
const maxCodeLines = 6

// quote renders a sentence as the reply quotes it: prose as it is, a code
// snippet verbatim between backticks (a block of several lines fenced), after
// its lead-in sentence when withLead.
func quote(s sentenceOf, withLead bool) string {
	if !s.code {
		return terminate(s.text)
	}
	lines := strings.Split(s.text, "\n")
	if len(lines) > maxCodeLines {
		lines = lines[:maxCodeLines]
	}
	var code string
	if len(lines) == 1 {
		code = "`" + lines[0] + "`"
	} else {
		code = "\n```\n" + strings.Join(lines, "\n") + "\n```\n"
	}
	if !withLead {
		return code
	}
	return strings.TrimSpace(s.lead) + " " + code
}

func quotedLen(s *sentence) int { return len(quote(s.s, s.s.code)) }

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
	return Source{KnowledgeID: p.KnowledgeID, Title: p.Title, Snippet: truncate(snippet, SnippetLen), Score: p.Score, Page: p.Page}
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

// Quoted tells which of the request's passages the embedded engine would
// quote or answer with (indices into req.Passages, best first), so that a
// model's prompt can be sure to carry them.
func (e *Embedded) Quoted(req Request) []int {
	if strings.TrimSpace(req.Question) == "" {
		return nil
	}
	r := e.decide(req, Language(req), normalizeTone(req.Persona.Tone))
	var out []int
	for _, s := range r.Sources {
		for i, p := range req.Passages {
			if i < e.MaxPassages && p.KnowledgeID == s.KnowledgeID && r.Trace.Candidates[i].Used && !slices.Contains(out, i) {
				out = append(out, i)
			}
		}
	}
	return out
}

// NewSource cites p with a snippet of at most SnippetLen characters.
func NewSource(p Passage, snippet string) Source { return source(p, snippet) }
