package queries

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/knowledge"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// SearchKnowledgeQuery asks which passages of an organization's knowledge
// answer a question. AssistantID (optional) leaves out sources narrowed to
// other assistants. Limit is 1-50; 0 means 5.
type SearchKnowledgeQuery struct {
	OrganizationID uuid.UUID
	AssistantID    uuid.UUID
	Query          string
	Limit          int
}

// Passage is one search result: a chunk of a document, or a Q&A pair.
type Passage struct {
	KnowledgeID uuid.UUID `json:"knowledge_id"`
	ChunkID     uuid.UUID `json:"chunk_id"`
	// Kind is "qa" for a Q&A pair (Question and Answer set), else "passage".
	Kind      string   `json:"kind"`
	Title     string   `json:"title"`
	TitlePath []string `json:"title_path"`
	Page      int      `json:"page,omitempty"`
	URL       string   `json:"url,omitempty"`
	// Snippet is the part of Text around the matched words, for display.
	Snippet  string `json:"snippet"`
	Text     string `json:"text"`
	Question string `json:"question,omitempty"`
	Answer   string `json:"answer,omitempty"`
	Language string `json:"language,omitempty"`
	// Tags are the source's tags (what a Q&A pair is about).
	Tags []string `json:"tags"`
	// Score is the fused score in [0, 1]: 1 would be first in every signal.
	Score float64 `json:"score"`
	Why   Why     `json:"why"`
}

// Why explains a passage's score: each signal's raw value and the rank it
// gave the passage (0: the signal did not find it), and the query words
// found in the passage.
type Why struct {
	FullText     float64  `json:"full_text"`
	FullTextRank int      `json:"full_text_rank"`
	Similarity   float64  `json:"similarity"`
	SimilarRank  int      `json:"similarity_rank"`
	Question     float64  `json:"question"`
	QuestionRank int      `json:"question_rank"`
	MatchedTerms []string `json:"matched_terms"`
}

// knowledgeSearchDB is what search needs of the database; *pgxpool.Pool has it.
type knowledgeSearchDB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// SearchKnowledgeHandler searches the knowledge_chunks read model
// (projections.Knowledge).
type SearchKnowledgeHandler struct {
	db           knowledgeSearchDB
	commonChunks int
}

// NewSearchKnowledgeHandler searches through db.
func NewSearchKnowledgeHandler(db knowledgeSearchDB) SearchKnowledgeHandler {
	return SearchKnowledgeHandler{db: db, commonChunks: CommonWordChunks}
}

// CommonWordChunks is how many chunks of an organization a word may occur in
// before search stops looking for passages by it alone: in a large
// knowledge base words such as "use", "type" or "Paket" occur in thousands
// of chunks, and ranking each of them (ts_rank_cd reads its whole tsvector)
// took most of a search's time. Such a word still counts in the ranking of
// the passages the question's rarer words find. A knowledge base of fewer
// chunks than this is searched exactly as without the cut-off.
const CommonWordChunks = 300

// maxCandidates bounds the chunks ranked per signal that its rare words
// find, or, when there are neither rare words nor two common ones, any of
// its words ("how do I use this": one of those chunks is as good an answer
// to it as another).
const maxCandidates = 1000

// maxPairedWords bounds the common words paired (a long message has many):
// 12 make at most 66 pairs.
const maxPairedWords = "12"

// maxPairCandidates bounds the chunks ranked per signal that two common
// words of the question find together ("type" and "method" in a Go manual).
const maxPairCandidates = 200

// WithCommonWordChunks returns the handler with another cut-off (see
// CommonWordChunks); zero or less ranks every chunk that has a word of the
// question, as a reference for benchmarks and quality tests.
func (h SearchKnowledgeHandler) WithCommonWordChunks(n int) SearchKnowledgeHandler {
	h.commonChunks = n
	return h
}

// MaxSearchQuery bounds the query text, in characters.
const MaxSearchQuery = 2000

// rrfK is the reciprocal-rank-fusion constant: 60, as in the literature,
// keeps one signal's first place from drowning the others' agreement.
const rrfK = 60

// Signal weights in the fusion: a Q&A pair whose question matches is the
// most direct answer there is.
const (
	weightFullText   = 1.0
	weightSimilarity = 1.0
	weightQuestion   = 1.5
)

// otherLanguage scales the score of passages in another language than the
// question's (when both are known): they may still answer, but a passage in
// the customer's language answers better.
const otherLanguage = 0.7

// candidates per signal before fusion.
const perSignal = 40

var highlight = regexp.MustCompile(`«([^»]*)»`)

// Handle runs three searches and fuses them by reciprocal rank: full text
// (any of the query's words, stemmed in every language configuration, ranked
// by cover density with titles and headings weighted up); the same over the
// knowledge's own words most similar by trigrams to each query word (typos,
// inflections and compounds the stemmer misses), looked up in the small
// vocabulary table rather than in every chunk; and Q&A questions by
// similarity to the query, or by a tag the query contains: tags say what a
// pair is about in whatever language they were written, so "password"
// finds a German pair tagged with it.
func (h SearchKnowledgeHandler) Handle(ctx context.Context, q SearchKnowledgeQuery) ([]Passage, error) {
	text, err := domain.Text("query", q.Query, MaxSearchQuery, true)
	if err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 5
	}
	limit = min(limit, 50)
	var assistant *uuid.UUID
	if q.AssistantID != uuid.Nil {
		assistant = &q.AssistantID
	}
	content := knowledge.ContentWords(text)

	tx, err := h.db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("search knowledge: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	// The planner underestimates matching a tsquery row by row (each tsvector
	// is detoasted): with a scan allowed it reads every chunk of the
	// organization, ten times slower than the GIN index at 10,000 chunks.
	// JIT compilation costs tens of milliseconds and never pays off on these
	// short queries; the planner chose it whenever its estimates ran high.
	if _, err := tx.Exec(ctx, `SELECT set_config('pg_trgm.similarity_threshold', '0.3', true),
		set_config('statement_timeout', '10s', true), set_config('enable_seqscan', 'off', true), set_config('jit', 'off', true)`); err != nil {
		return nil, fmt.Errorf("search knowledge: %w", err)
	}
	// The tsqueries are computed first and passed as values, so that the
	// planner sees them and searches the GIN indexes instead of every chunk.
	// Stopwords of every language are left out (content), and each distinct
	// stem is asked for once: a query of all the configurations' stems of
	// "how do I" would match nearly every chunk indexed without a language.
	words := content
	if words == "" {
		words = text
	}
	// Chunks are found by the question's rarer words, or two of its common
	// words together, and ranked by all of them (CommonWordChunks); when
	// that finds nothing to look for, by any word, at most maxCandidates.
	// The similar words rank the passages the question's own words found
	// and those that only the similar words find (a typo's correction).
	var anyQuery, fuzzyQuery, anyRare, fuzzyRare, anyPairs, fuzzyPairs string
	common := h.commonChunks
	if common <= 0 {
		common = -1
	}
	if err := tx.QueryRow(ctx, queryTermsSQL, q.OrganizationID, words, fuzzyWords(content), common).
		Scan(&anyQuery, &fuzzyQuery, &anyRare, &fuzzyRare, &anyPairs, &fuzzyPairs); err != nil {
		return nil, fmt.Errorf("search knowledge: %w", err)
	}
	if common < 0 {
		anyRare, fuzzyRare = anyQuery, fuzzyQuery
	}
	if anyRare == "" && anyPairs == "" {
		anyRare = anyQuery
	}
	rare, pairs := maxCandidates, maxPairCandidates
	if common < 0 {
		rare = math.MaxInt32
	}
	rows, err := tx.Query(ctx, searchSQL, q.OrganizationID, assistant, text, content, perSignal, limit,
		weightFullText, weightSimilarity, weightQuestion, rrfK, anyQuery, fuzzyQuery,
		knowledge.TextSearchConfig(knowledge.DetectLanguage(text)), otherLanguage, anyRare, fuzzyRare, rare, anyPairs, fuzzyPairs, pairs)
	if err != nil {
		return nil, fmt.Errorf("search knowledge: %w", err)
	}
	defer rows.Close()
	maxScore := (weightFullText + weightSimilarity + weightQuestion) / float64(rrfK+1)
	var out []Passage
	for rows.Next() {
		var p Passage
		var headline string
		var fts, sim, qs *float64
		var fr, sr, qr *int64
		if err := rows.Scan(&p.KnowledgeID, &p.ChunkID, &p.Kind, &p.Title, &p.TitlePath, &p.Page, &p.URL,
			&p.Text, &p.Question, &p.Answer, &p.Language, &p.Tags, &p.Score, &fts, &fr, &sim, &sr, &qs, &qr, &headline); err != nil {
			return nil, fmt.Errorf("search knowledge: %w", err)
		}
		p.Score = min(1, p.Score/maxScore)
		p.Why = Why{FullText: scoreOrZero(fts), FullTextRank: int(rankOrZero(fr)), Similarity: scoreOrZero(sim),
			SimilarRank: int(rankOrZero(sr)), Question: scoreOrZero(qs), QuestionRank: int(rankOrZero(qr)), MatchedTerms: []string{}}
		for _, m := range highlight.FindAllStringSubmatch(headline, -1) {
			t := strings.ToLower(m[1])
			if !containsTerm(p.Why.MatchedTerms, t) {
				p.Why.MatchedTerms = append(p.Why.MatchedTerms, t)
			}
		}
		p.Snippet = strings.Join(strings.Fields(strings.NewReplacer("«", "", "»", "").Replace(headline)), " ")
		if p.TitlePath == nil {
			p.TitlePath = []string{}
		}
		if p.Tags == nil {
			p.Tags = []string{}
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("search knowledge: %w", err)
	}
	if out == nil {
		out = []Passage{}
	}
	return out, nil
}

// searchConfigs are the text search configurations a query is stemmed in:
// every language a document may be indexed in.
const searchConfigs = `ARRAY['english', 'german', 'french', 'spanish', 'italian', 'dutch', 'simple']::regconfig[]`

// maxFuzzyWords bounds how many query words are looked up in the vocabulary.
const maxFuzzyWords = 12

// fuzzyWords are the query's content words worth looking up in the
// vocabulary: four letters or more, each once.
func fuzzyWords(content string) []string {
	out := []string{}
	for _, w := range strings.Fields(strings.ToLower(content)) {
		if utf8.RuneCountInString(w) >= 4 && !containsTerm(out, w) && len(out) < maxFuzzyWords {
			out = append(out, w)
		}
	}
	return out
}

// queryTermsSQL turns the query into tsqueries (as text): $2's words in
// every configuration, ORed; the same for the words of the organization's
// knowledge ($1) most similar by trigrams to each of $3's (up to three
// each): "pasword" finds "password", "repariert" "reparatur"; and for each
// of the two, the queries that find the chunks to rank: any of its rare
// words (in at most $4 of the organization's chunks, counted through the
// full-text index up to $4 + 1; for the similar words, only those the
// question did not use, all of them when none is rare), and two of its
// common words together (of the first maxPairedWords; empty when there
// are none; every word is rare when $4 < 0).
var queryTermsSQL = `
WITH fuzzy AS (
	SELECT coalesce(string_agg(t.term, ' '), '') AS words
	FROM unnest($3::text[]) AS w(word)
	CROSS JOIN LATERAL (
		SELECT kt.term FROM knowledge_terms kt
		WHERE kt.organization_id = $1 AND kt.term % w.word
		ORDER BY similarity(kt.term, w.word) DESC, kt.term LIMIT 3
	) t
),
exact AS (
	SELECT DISTINCT unnest(tsvector_to_array(to_tsvector(cfg, $2))) AS l FROM unnest(` + searchConfigs + `) AS cfg
),
near AS (
	SELECT DISTINCT unnest(tsvector_to_array(to_tsvector(cfg, fuzzy.words))) AS l FROM fuzzy, unnest(` + searchConfigs + `) AS cfg
),
counted AS (
	SELECT l, $4::int < 0 OR (SELECT count(*) FROM (
		SELECT 1 FROM knowledge_chunks c
		WHERE c.tsv @@ plainto_tsquery('simple', u.l) AND c.organization_id = $1 LIMIT $4::int + 1) n) <= $4::int AS rare
	FROM (SELECT l FROM exact UNION SELECT l FROM near) u
),
near_only AS (
	SELECT l, rare FROM near JOIN counted USING (l) WHERE l NOT IN (SELECT l FROM exact)
),
common AS (
	SELECT query, l FROM (
		SELECT x.query, x.l, row_number() OVER (PARTITION BY x.query ORDER BY x.l) AS n
		FROM (SELECT 'exact' AS query, l FROM exact UNION ALL SELECT 'near', l FROM near) x
		JOIN counted c ON c.l = x.l AND NOT c.rare
	) r WHERE n <= ` + maxPairedWords + `
),
pairs AS (
	SELECT a.query, plainto_tsquery('simple', a.l) && plainto_tsquery('simple', b.l) AS q
	FROM common a JOIN common b ON b.query = a.query AND b.l > a.l
)
SELECT
	(SELECT coalesce(knowledge_tsquery_or_agg(plainto_tsquery('simple', l))::text, '') FROM exact),
	(SELECT coalesce(knowledge_tsquery_or_agg(plainto_tsquery('simple', l))::text, '') FROM near),
	(SELECT coalesce(knowledge_tsquery_or_agg(plainto_tsquery('simple', l))::text, '') FROM exact JOIN counted USING (l) WHERE rare),
	(SELECT coalesce(knowledge_tsquery_or_agg(plainto_tsquery('simple', l))::text, '') FROM near_only
	 WHERE rare OR NOT EXISTS (SELECT 1 FROM near_only WHERE rare)),
	(SELECT coalesce(knowledge_tsquery_or_agg(q)::text, '') FROM pairs WHERE query = 'exact'),
	(SELECT coalesce(knowledge_tsquery_or_agg(q)::text, '') FROM pairs WHERE query = 'near')`

// rankedBy is a full-text signal of searchSQL: the chunks matching the
// tsquery query among the candidates that the tsqueries rare (up to $17
// chunks) and pairs (up to $20) find, and those of the SQL also (a UNION
// clause, or ""), ranked by query with titles and headings weighted up.
func rankedBy(query, rare, pairs, also string) string {
	return `
	SELECT c.id, ts_rank_cd('{0.1, 0.2, 0.4, 1.0}', c.tsv, ` + query + `::tsquery, 1) AS score
	FROM knowledge_chunks c
	WHERE c.id IN ((` + candidatesBy(rare, "$17") + `) UNION (` + candidatesBy(pairs, "$20") + `)` + also + `)
	  AND c.tsv @@ ` + query + `::tsquery
	ORDER BY score DESC, c.knowledge_id, c.ord LIMIT $5
`
}

// candidatesBy selects the ids of at most limit chunks the tsquery query
// finds among those the assistant ($2) may use in the organization ($1).
func candidatesBy(query, limit string) string {
	return `SELECT k.id FROM knowledge_chunks k
		WHERE k.tsv @@ ` + query + `::tsquery AND k.organization_id = $1
		  AND ($2::uuid IS NULL OR cardinality(k.assistant_ids) = 0 OR $2::uuid = ANY (k.assistant_ids))
		LIMIT ` + limit
}

func scoreOrZero(f *float64) float64 {
	if f == nil {
		return 0
	}
	return *f
}

func rankOrZero(i *int64) int64 {
	if i == nil {
		return 0
	}
	return *i
}

func containsTerm(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// searchSQL: $1 organization, $2 assistant (nullable), $3 query, $4 query
// without stopwords, $5 candidates per signal, $6 limit, $7-$9 weights, $10 k,
// $11 the query's words ORed in every configuration, $12 the same for the
// similar vocabulary words, $13 the question's text search configuration,
// $14 the factor for passages in another language; the chunks $11 and $12
// rank are those $15 and $16 find (at most $17 each) and those $18 and $19
// find (at most $20 each).
var searchSQL = `
WITH fts AS (` + rankedBy("$11", "$15", "$18", "") + `),
sim AS (` + rankedBy("$12", "$16", "$19", " UNION (SELECT id FROM fts)") + `),
qa AS (
	SELECT c.id, greatest(word_similarity($4, c.question), similarity(c.question, $3) * 0.6,
		coalesce((SELECT max(word_similarity(t, $4)) FROM unnest(s.tags) AS t), 0) * 0.8) AS score
	FROM knowledge_chunks c JOIN knowledge_sources s ON s.id = c.knowledge_id
	WHERE c.kind = 'qa' AND c.organization_id = $1 AND ($2::uuid IS NULL OR cardinality(c.assistant_ids) = 0 OR $2::uuid = ANY (c.assistant_ids))
	  AND greatest(word_similarity($4, c.question), similarity(c.question, $3) * 0.6,
		coalesce((SELECT max(word_similarity(t, $4)) FROM unnest(s.tags) AS t), 0) * 0.8) > 0.15
	ORDER BY score DESC, c.knowledge_id, c.ord LIMIT $5
),
ranked AS (
	SELECT id, score, 'fts' AS signal, row_number() OVER (ORDER BY score DESC, id) AS rank FROM fts
	UNION ALL
	SELECT id, score, 'sim', row_number() OVER (ORDER BY score DESC, id) FROM sim
	UNION ALL
	SELECT id, score, 'qa', row_number() OVER (ORDER BY score DESC, id) FROM qa
),
fused AS (
	SELECT r.id,
		sum(CASE r.signal WHEN 'fts' THEN $7::float8 WHEN 'sim' THEN $8::float8 ELSE $9::float8 END / ($10::int + r.rank))
			* CASE WHEN $13 = 'simple' OR c.ts_config::text IN ($13, 'simple') THEN 1 ELSE $14::float8 END AS score,
		max(r.score) FILTER (WHERE r.signal = 'fts') AS fts_score, max(r.rank) FILTER (WHERE r.signal = 'fts') AS fts_rank,
		max(r.score) FILTER (WHERE r.signal = 'sim') AS sim_score, max(r.rank) FILTER (WHERE r.signal = 'sim') AS sim_rank,
		max(r.score) FILTER (WHERE r.signal = 'qa') AS qa_score, max(r.rank) FILTER (WHERE r.signal = 'qa') AS qa_rank
	FROM ranked r JOIN knowledge_chunks c ON c.id = r.id
	GROUP BY r.id, c.ts_config
	ORDER BY score DESC, id LIMIT $6
)
SELECT c.knowledge_id, c.id, c.kind, c.title, c.title_path, c.page, s.url, c.body, c.question, c.answer, s.language,
	s.tags, f.score, f.fts_score::float8, f.fts_rank, f.sim_score::float8, f.sim_rank, f.qa_score::float8, f.qa_rank,
	ts_headline(c.ts_config, c.body, $11::tsquery || $12::tsquery, 'StartSel=«, StopSel=», MaxWords=40, MinWords=15, MaxFragments=2, FragmentDelimiter=" … "')
FROM fused f
JOIN knowledge_chunks c ON c.id = f.id
JOIN knowledge_sources s ON s.id = c.knowledge_id
ORDER BY f.score DESC, c.id`
