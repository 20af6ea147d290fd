package extract

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/klippa-app/go-pdfium"
	pdfiumerrors "github.com/klippa-app/go-pdfium/errors"
	"github.com/klippa-app/go-pdfium/references"
	"github.com/klippa-app/go-pdfium/requests"

	"github.com/companin/companin/domain/knowledge"
)

var bulletLine = regexp.MustCompile(`^\s*([•●▪■◦‣∙·\-–*\x{f0b7}\x{f0a7}]|\d{1,3}[.)])\s+`)

// PDF extracts a PDF's text page by page with PDFium (DefaultLimits).
func PDF(ctx context.Context, data []byte) (knowledge.Document, error) {
	return DefaultLimits.PDF(ctx, data)
}

// PDF extracts a PDF's text page by page with PDFium, the engine of Chrome.
// PDFium decodes fonts and encodings; the words, lines and paragraphs are
// rebuilt here from each character's box and font size, because PDFium's own
// plain text splits and joins words on justified text (where word gaps are
// positioning, not space characters). Lines in a clearly larger font than the
// body text become headings; every block keeps its page number.
func (l Limits) PDF(ctx context.Context, data []byte) (doc knowledge.Document, err error) {
	l = l.orDefault()
	err = withPDFium(ctx, l.PDFMemoryMB, func(p pdfium.Pdfium) error {
		var e error
		doc, e = l.readPDF(ctx, p, data)
		return e
	})
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return doc, err
	}
	if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrEncrypted) || errors.Is(err, ErrNoText) || errors.Is(err, ErrTooLarge) {
		return doc, err
	}
	// PDFium stopped inside: in practice it ran out of the memory it may use,
	// because a stream unpacks to more than that.
	return doc, fmt.Errorf("%w: the PDF needs more than %d MB of memory to read (it unpacks to more than that, or it is damaged); split it into smaller files or re-export it with \"Save as PDF\"", ErrTooLarge, l.PDFMemoryMB)
}

func (l Limits) readPDF(ctx context.Context, p pdfium.Pdfium, data []byte) (knowledge.Document, error) {
	var doc knowledge.Document
	opened, err := p.OpenDocument(&requests.OpenDocument{File: &data})
	if err != nil {
		switch {
		case errors.Is(err, pdfiumerrors.ErrPassword), errors.Is(err, pdfiumerrors.ErrSecurity):
			return doc, fmt.Errorf("%w: remove the password (print or export it to a new PDF) and upload again", ErrEncrypted)
		case errors.Is(err, pdfiumerrors.ErrFormat), errors.Is(err, pdfiumerrors.ErrFile), errors.Is(err, pdfiumerrors.ErrUnknown):
			return doc, fmt.Errorf("%w: the PDF structure cannot be read; re-export it with \"Save as PDF\" and upload again", ErrCorrupt)
		}
		return doc, err
	}
	defer p.FPDF_CloseDocument(&requests.FPDF_CloseDocument{Document: opened.Document})
	count, err := p.FPDF_GetPageCount(&requests.FPDF_GetPageCount{Document: opened.Document})
	if err != nil {
		return doc, err
	}
	n := count.PageCount
	if n <= 0 {
		return doc, fmt.Errorf("%w: the PDF has no pages", ErrCorrupt)
	}
	if n > l.MaxPages {
		return doc, fmt.Errorf("%w: the PDF has %d pages, more than the %d one document may have; split it into smaller files and upload them separately", ErrTooLarge, n, l.MaxPages)
	}
	doc.Pages = n
	var sizes sizeHistogram
	pages := make([][]pdfLine, n)
	chars, failed := 0, 0
	for i := range n {
		if err := ctx.Err(); err != nil {
			return doc, err
		}
		lines, got, err := l.pageLines(ctx, p, opened.Document, i, l.MaxChars-chars, &sizes)
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				return doc, err
			}
			if errPage(err) {
				failed++
				continue
			}
			return doc, err
		}
		chars += got
		pages[i] = lines
	}
	if failed == n {
		return doc, fmt.Errorf("%w: none of the %d pages could be read; re-export it with \"Save as PDF\" and upload again", ErrCorrupt, n)
	}
	body := sizes.median()
	levels := headingLevels(pages, body)
	for i, lines := range pages {
		doc.Blocks = append(doc.Blocks, pageBlocks(lines, body, levels, i+1)...)
	}
	if len(doc.Blocks) == 0 {
		return doc, fmt.Errorf("%w: the PDF has %d page(s) but no text layer, probably scanned images; run it through OCR (e.g. ocrmypdf) or upload the original document", ErrNoText, n)
	}
	if t, err := p.FPDF_GetMetaText(&requests.FPDF_GetMetaText{Document: opened.Document, Tag: "Title"}); err == nil {
		doc.Title = strings.TrimSpace(clean(t.Value))
	}
	return doc, nil
}

// errPageLoad marks a page PDFium could not load: that page is skipped.
type errPageLoad struct{ err error }

func (e errPageLoad) Error() string { return e.err.Error() }

func errPage(err error) bool {
	var pe errPageLoad
	return errors.As(err, &pe)
}

// pageLoadError tells a page PDFium refused (skipped) from PDFium itself
// stopping (a trap, in practice out of its capped memory), which ends the
// document: the instance is not to be used again.
func pageLoadError(err error) error {
	if strings.Contains(err.Error(), "wasm error") {
		return err
	}
	return errPageLoad{err}
}

// glyph is one character placed on the page (PDF units, y upwards).
type glyph struct {
	r              rune
	x0, x1, y0, y1 float64
	size           float64
}

type pdfLine struct {
	text string
	y    float64
	x    float64
	size float64
}

// pageLines reads page i's characters and returns its lines in PDFium's
// reading order and the number of characters read, at most budget.
func (l Limits) pageLines(ctx context.Context, p pdfium.Pdfium, d references.FPDF_DOCUMENT, i, budget int, sizes *sizeHistogram) ([]pdfLine, int, error) {
	page, err := p.FPDF_LoadPage(&requests.FPDF_LoadPage{Document: d, Index: i})
	if err != nil {
		return nil, 0, pageLoadError(err)
	}
	defer p.FPDF_ClosePage(&requests.FPDF_ClosePage{Page: page.Page})
	tp, err := p.FPDFText_LoadPage(&requests.FPDFText_LoadPage{Page: requests.Page{ByReference: &page.Page}})
	if err != nil {
		return nil, 0, pageLoadError(err)
	}
	defer p.FPDFText_ClosePage(&requests.FPDFText_ClosePage{TextPage: tp.TextPage})
	cc, err := p.FPDFText_CountChars(&requests.FPDFText_CountChars{TextPage: tp.TextPage})
	if err != nil {
		return nil, 0, err
	}
	if cc.Count > budget {
		return nil, 0, tooManyChars(l.MaxChars)
	}
	var lb lineBuilder
	for c := 0; c < cc.Count; c++ {
		if c&4095 == 4095 && ctx.Err() != nil {
			return nil, 0, ctx.Err()
		}
		u, err := p.FPDFText_GetUnicode(&requests.FPDFText_GetUnicode{TextPage: tp.TextPage, Index: c})
		if err != nil {
			return nil, 0, err
		}
		r := rune(u.Unicode)
		if r == 0 || r == '\r' || r == '\n' || r == 0xfffe || r == 0xffff {
			continue // unmapped glyphs and PDFium's own line breaks (lines come from geometry)
		}
		if unicode.IsSpace(r) {
			g, err := p.FPDFText_IsGenerated(&requests.FPDFText_IsGenerated{TextPage: tp.TextPage, Index: c})
			if err != nil {
				return nil, 0, err
			}
			if !g.IsGenerated {
				lb.space = true
			}
			continue
		}
		box, err := p.FPDFText_GetLooseCharBox(&requests.FPDFText_GetLooseCharBox{TextPage: tp.TextPage, Index: c})
		if err != nil {
			return nil, 0, err
		}
		rb := box.Rect
		// The size that matters is the one on the page: the loose box spans
		// the font's ascent to descent (about 1.15 em) with every scaling
		// applied, where PDFium's font size is the bare operand of Tf.
		g := glyph{r: r, x0: float64(rb.Left), x1: float64(rb.Right), y0: float64(rb.Bottom), y1: float64(rb.Top)}
		g.size = (g.y1 - g.y0) / 1.15
		if !(g.size > 0.5 && g.size < 2000) {
			continue // no usable box: a glyph drawn nowhere
		}
		if g.x1-g.x0 < 0.15*g.size && !unicode.IsPunct(r) {
			// A font without widths: take the glyph's drawn extent instead.
			if tb, err := p.FPDFText_GetCharBox(&requests.FPDFText_GetCharBox{TextPage: tp.TextPage, Index: c}); err == nil && tb.Right > tb.Left {
				g.x0, g.x1 = math.Min(g.x0, tb.Left), math.Max(g.x1, tb.Right)
			}
		}
		sizes.add(g.size)
		lb.add(g)
	}
	lb.end()
	return lb.lines, cc.Count, nil
}

// lineBuilder joins characters into lines. A character starts a new line
// when it does not overlap the line's height by half or jumps back to the left;
// within a line, a gap wider than a tenth of the font size (what poppler's
// pdftotext also takes for a word break) separates words. Space characters
// count only where there is some gap too: some PDFs draw their spaces apart
// from the words, so that in reading order they fall inside words.
type lineBuilder struct {
	lines       []pdfLine
	cur         strings.Builder
	line        pdfLine
	top, bottom float64 // vertical extent of the line's first character
	lastX       float64 // right edge of the last character
	space       bool    // a space character was seen since the last character
	open        bool
}

func (b *lineBuilder) add(g glyph) {
	if b.open {
		overlap := math.Min(g.y1, b.top) - math.Max(g.y0, b.bottom)
		if overlap < 0.5*math.Min(g.y1-g.y0, b.top-b.bottom) || g.x0 < b.lastX-2*math.Max(g.size, b.line.size) {
			b.end()
		}
	}
	if !b.open {
		b.open, b.top, b.bottom = true, g.y1, g.y0
		b.line = pdfLine{x: g.x0, y: g.y0, size: g.size}
		b.cur.Reset()
	} else if gap := g.x0 - b.lastX; gap > 0.1*g.size || b.space && gap > 0.04*g.size {
		b.cur.WriteByte(' ')
	}
	b.space = false
	switch g.r {
	case 0x02:
		g.r = '-' // PDFium marks a hyphen that ends a line so
	case 0xad:
		g.r = '-'
	}
	b.cur.WriteRune(g.r)
	b.line.size = math.Max(b.line.size, g.size)
	b.lastX = math.Max(g.x1, g.x0)
}

func (b *lineBuilder) end() {
	if b.open {
		if t := strings.TrimSpace(b.cur.String()); t != "" {
			b.line.text = t
			b.lines = append(b.lines, b.line)
		}
	}
	b.open, b.space = false, false
	b.cur.Reset()
}

// sizeHistogram counts characters by font size (in half points), so that
// the body size is found without keeping a number per character.
type sizeHistogram struct {
	counts map[int]int
	total  int
}

func (h *sizeHistogram) add(size float64) {
	if h.counts == nil {
		h.counts = map[int]int{}
	}
	h.counts[int(math.Round(size*2))]++
	h.total++
}

func (h *sizeHistogram) median() float64 {
	if h.total == 0 {
		return 0
	}
	keys := make([]int, 0, len(h.counts))
	for k := range h.counts {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	seen := 0
	for _, k := range keys {
		seen += h.counts[k]
		if seen*2 >= h.total {
			return float64(k) / 2
		}
	}
	return float64(keys[len(keys)-1]) / 2
}

// isHeading tells a heading line: short, with letters, in a font clearly
// larger than the body's.
func isHeading(l pdfLine, body float64) bool {
	return body > 0 && l.size > body*1.15 && len(strings.Fields(l.text)) <= 16 && hasLetter(l.text)
}

// headingLevels ranks the sizes of the document's heading lines: the largest
// is level 1, the next level 2, any smaller level 3 (sizes in half points).
func headingLevels(pages [][]pdfLine, body float64) map[int]int {
	seen := map[int]bool{}
	for _, lines := range pages {
		for _, l := range lines {
			if isHeading(l, body) {
				seen[int(math.Round(l.size*2))] = true
			}
		}
	}
	sizes := make([]int, 0, len(seen))
	for s := range seen {
		sizes = append(sizes, s)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(sizes)))
	levels := map[int]int{}
	for i, s := range sizes {
		levels[s] = min(i+1, 3)
	}
	return levels
}

// pageBlocks turns a page's lines into blocks: a vertical gap clearly larger
// than the usual line spacing ends a paragraph, a bullet starts a list item,
// a short line in a larger font is a heading. A word hyphenated at the end of
// a line is joined again.
func pageBlocks(lines []pdfLine, body float64, levels map[int]int, page int) []knowledge.Block {
	var gaps []float64
	for i := 1; i < len(lines); i++ {
		if g := lines[i-1].y - lines[i].y; g > 0 {
			gaps = append(gaps, g)
		}
	}
	spacing := quantile(gaps, 0.25)
	var blocks []knowledge.Block
	var cur *knowledge.Block
	flush := func() {
		if cur != nil {
			blocks = append(blocks, *cur)
			cur = nil
		}
	}
	for i, l := range lines {
		if isHeading(l, body) {
			level := levels[int(math.Round(l.size*2))]
			if cur != nil && cur.Kind == knowledge.Heading && cur.Level == level && i > 0 && lines[i-1].y-l.y < l.size*1.6 {
				cur.Text += " " + l.text // a heading wrapped over two lines
				continue
			}
			flush()
			cur = &knowledge.Block{Kind: knowledge.Heading, Level: level, Text: l.text, Page: page}
			continue
		}
		newPara := cur == nil || cur.Kind == knowledge.Heading
		if !newPara && i > 0 {
			gap := lines[i-1].y - l.y
			if spacing > 0 && (gap > spacing*1.45 || gap < -spacing) {
				newPara = true
			}
		}
		if bulletLine.MatchString(l.text) {
			flush()
			text := strings.NewReplacer("\uf0b7", "•", "\uf0a7", "▪").Replace(l.text)
			cur = &knowledge.Block{Kind: knowledge.ListItem, Text: text, Page: page}
			continue
		}
		if newPara {
			flush()
			cur = &knowledge.Block{Kind: knowledge.Paragraph, Text: l.text, Page: page}
			continue
		}
		cur.Text = joinLine(cur.Text, l.text)
	}
	flush()
	return blocks
}

// joinLine appends a line to a paragraph, joining a word hyphenated at the
// line end ("docu-" + "ment") as pdftotext does.
func joinLine(para, line string) string {
	if n := len(para); n >= 2 && para[n-1] == '-' {
		prev, _ := utf8.DecodeLastRuneInString(para[:n-1])
		first, _ := utf8.DecodeRuneInString(line)
		if unicode.IsLetter(prev) && unicode.IsLower(first) {
			return para[:n-1] + line
		}
	}
	return para + "\n" + line
}

func hasLetter(s string) bool { return strings.IndexFunc(s, unicode.IsLetter) >= 0 }

// quantile returns the q-quantile of xs (0 for none): the usual line spacing
// is a low quantile of the gaps, since paragraph and heading gaps are larger.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[int(float64(len(s)-1)*q)]
}
