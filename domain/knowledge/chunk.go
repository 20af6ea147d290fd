package knowledge

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Chunking sizes, in words. A chunk grows to about TargetWords, may run to
// MaxWords to keep a list together, and a single block longer than MaxWords
// (a long paragraph) is split between sentences. Tables are never split.
const (
	TargetWords  = 220
	MaxWords     = 380
	OverlapWords = 40
)

// Chunk is a passage of a document's text, the unit retrieval returns.
// Start and End are byte offsets into the extracted text, so the passage is
// text[Start:End]; chunks that follow each other within a section overlap by
// a sentence, so an answer cut at a chunk border is still found whole.
type Chunk struct {
	Index int `json:"index"`
	Start int `json:"start"`
	End   int `json:"end"`
	// TitlePath is the trail of headings above the chunk, outermost first.
	TitlePath []string `json:"title_path"`
	// Page is the page the chunk starts on (0: the format has no pages).
	Page int `json:"page,omitempty"`
}

// unit is the smallest piece chunking moves around: a block, or a sentence
// run of a block too long to keep whole.
type unit struct {
	start, end int
	words      int
	kind       BlockKind
	level      int
	page       int
	block      int
}

// Split lays out doc's blocks as one text (blocks separated by blank lines)
// and cuts it into chunks along its structure: a heading starts a new chunk
// and stays with what follows it; paragraphs, list items and tables are kept
// whole where the size allows; a list is kept together up to MaxWords.
func Split(doc Document) (string, []Chunk) {
	var b strings.Builder
	var units []unit
	for i, blk := range doc.Blocks {
		text := strings.TrimSpace(blk.Text)
		if text == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("\n\n")
		}
		start := b.Len()
		b.WriteString(text)
		units = append(units, splitBlock(text, start, blk, i)...)
	}
	text := b.String()

	var chunks []Chunk
	var headings []string // the heading trail, index = level-1
	var levels []int
	trail := func() []string { return append([]string{}, headings...) }
	pushHeading := func(level int, t string) {
		for len(levels) > 0 && levels[len(levels)-1] >= level {
			levels, headings = levels[:len(levels)-1], headings[:len(headings)-1]
		}
		levels, headings = append(levels, level), append(headings, strings.Join(strings.Fields(t), " "))
	}

	var cur *Chunk
	words, content := 0, 0
	lastUnit := -1
	closeChunk := func() {
		if cur != nil && content > 0 {
			cur.Index = len(chunks)
			chunks = append(chunks, *cur)
		}
		cur, words, content = nil, 0, 0
	}
	for i, u := range units {
		if u.kind == Heading {
			if content > 0 {
				closeChunk()
			}
			pushHeading(u.level, text[u.start:u.end])
			if cur == nil {
				cur = &Chunk{Start: u.start, Page: u.page}
			}
			cur.TitlePath, cur.End = trail(), u.end
			words += u.words
			lastUnit = i
			continue
		}
		if cur != nil && content > 0 && words+u.words > TargetWords {
			sameList := u.kind == ListItem && units[lastUnit].kind == ListItem && words+u.words <= MaxWords
			if !sameList {
				prev := units[lastUnit]
				closeChunk()
				cur = &Chunk{Start: u.start, Page: u.page, TitlePath: trail()}
				if o, ok := overlapStart(text, prev); ok {
					cur.Start, cur.Page = o, prev.page
					words = len(strings.Fields(text[o:prev.end]))
				}
			}
		}
		if cur == nil {
			cur = &Chunk{Start: u.start, Page: u.page, TitlePath: trail()}
		}
		cur.End = u.end
		words += u.words
		content += u.words
		lastUnit = i
	}
	closeChunk()
	return text, chunks
}

// overlapStart returns where the next chunk should start to repeat the last
// sentence of u, when u is prose and that sentence is short enough.
func overlapStart(text string, u unit) (int, bool) {
	if u.kind == Table || u.kind == Code || u.kind == Heading {
		return 0, false
	}
	s := text[u.start:u.end]
	bounds := sentenceStarts(s)
	last := bounds[len(bounds)-1]
	if last == 0 && u.words > OverlapWords {
		return 0, false
	}
	if len(strings.Fields(s[last:])) > OverlapWords {
		return 0, false
	}
	return u.start + last, true
}

// splitBlock returns the block as one unit, or as runs of sentences (lines,
// for code) when it is longer than MaxWords. Tables stay whole.
func splitBlock(text string, start int, blk Block, idx int) []unit {
	n := len(strings.Fields(text))
	whole := unit{start: start, end: start + len(text), words: n, kind: blk.Kind, level: blk.Level, page: blk.Page, block: idx}
	if n <= MaxWords || blk.Kind == Table || blk.Kind == Heading {
		return []unit{whole}
	}
	var cuts []int
	if blk.Kind == Code {
		cuts = []int{0}
		for i, r := range text {
			if r == '\n' && i+1 < len(text) {
				cuts = append(cuts, i+1)
			}
		}
	} else {
		cuts = sentenceStarts(text)
	}
	cuts = append(cuts, len(text))
	var out []unit
	from, words := 0, 0
	for i := 1; i < len(cuts); i++ {
		w := len(strings.Fields(text[cuts[i-1]:cuts[i]]))
		if words > 0 && words+w > TargetWords {
			out = append(out, unit{start: start + from, end: start + trimmedEnd(text[:cuts[i-1]]), words: words, kind: blk.Kind, page: blk.Page, block: idx})
			from, words = cuts[i-1], 0
		}
		words += w
	}
	out = append(out, unit{start: start + from, end: start + len(text), words: words, kind: blk.Kind, page: blk.Page, block: idx})
	return out
}

// trimmedEnd returns the length of s without trailing spaces: the end of its
// last character, never inside it (a cut inside "…" or "”" made the text of
// a chunk invalid UTF-8, which PostgreSQL refuses).
func trimmedEnd(s string) int {
	return len(strings.TrimRightFunc(s, unicode.IsSpace))
}

// sentenceStarts returns the byte offsets in s where sentences begin: after
// ., ! or ? followed by space and an upper-case letter or digit, and after
// line breaks; always including 0.
func sentenceStarts(s string) []int {
	starts := []int{0}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if r != '.' && r != '!' && r != '?' && r != '\n' {
			continue
		}
		j := i
		for j < len(s) && (s[j] == ' ' || s[j] == '\n' || s[j] == '\t') {
			j++
		}
		if j == i && r != '\n' || j >= len(s) {
			continue
		}
		next, _ := utf8.DecodeRuneInString(s[j:])
		if r == '\n' || unicode.IsUpper(next) || unicode.IsDigit(next) || next == '"' || next == '„' {
			if j > starts[len(starts)-1] {
				starts = append(starts, j)
			}
		}
	}
	return starts
}
