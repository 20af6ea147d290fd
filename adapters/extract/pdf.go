package extract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"

	"github.com/ledongthuc/pdf"

	"github.com/companin/companin/domain/knowledge"
)

var bulletLine = regexp.MustCompile(`^\s*([•●▪■◦‣∙·\-–*\x{f0b7}\x{f0a7}]|\d{1,3}[.)])\s+`)

// PDF extracts a PDF's text page by page, rebuilding lines from glyph
// positions and paragraphs from the vertical gaps between lines; lines in a
// clearly larger font become headings. A page whose layout cannot be read
// falls back to the page's plain text, so one odd page does not lose the file.
func PDF(ctx context.Context, data []byte) (doc knowledge.Document, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: the PDF structure cannot be read (%v); re-export it with \"Save as PDF\" and upload again", ErrCorrupt, r)
		}
	}()
	r, err := pdf.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		if errors.Is(err, pdf.ErrInvalidPassword) {
			return doc, fmt.Errorf("%w: remove the password (print or export it to a new PDF) and upload again", ErrEncrypted)
		}
		return doc, fmt.Errorf("%w: %v; re-export it with \"Save as PDF\" and upload again", ErrCorrupt, err)
	}
	n := r.NumPage()
	if n <= 0 {
		return doc, fmt.Errorf("%w: the PDF has no pages", ErrCorrupt)
	}
	doc.Pages = n
	var pages [][]pdfLine
	var sizes []float64
	failed := 0
	for i := 1; i <= n; i++ {
		if err := ctx.Err(); err != nil {
			return doc, err
		}
		lines, ok := pageLines(r.Page(i))
		if !ok {
			failed++
		}
		for _, l := range lines {
			for range len([]rune(l.text)) {
				sizes = append(sizes, l.size)
			}
		}
		pages = append(pages, lines)
	}
	if failed == n {
		return doc, fmt.Errorf("%w: none of the %d pages could be read; re-export it with \"Save as PDF\" and upload again", ErrCorrupt, n)
	}
	body := median(sizes)
	for i, lines := range pages {
		doc.Blocks = append(doc.Blocks, pageBlocks(lines, body, i+1)...)
	}
	if len(doc.Blocks) == 0 {
		return doc, fmt.Errorf("%w: the PDF has %d page(s) but no text layer, probably scanned images; run it through OCR (e.g. ocrmypdf) or upload the original document", ErrNoText, n)
	}
	if info := r.Trailer().Key("Info").Key("Title"); info.Kind() == pdf.String {
		doc.Title = strings.TrimSpace(info.Text())
	}
	return doc, nil
}

type pdfLine struct {
	text string
	y    float64
	x    float64
	size float64
}

// pageLines returns the page's lines in reading order, from positioned glyphs,
// or from the page's plain text when that fails (ok false then).
func pageLines(p pdf.Page) (lines []pdfLine, ok bool) {
	if p.V.IsNull() {
		return nil, false
	}
	texts, err := pageContent(p)
	if err == nil {
		return groupLines(texts), true
	}
	plain, perr := pagePlain(p)
	if perr != nil {
		return nil, false
	}
	for _, l := range strings.Split(plain, "\n") {
		if t := strings.Join(strings.Fields(l), " "); t != "" {
			lines = append(lines, pdfLine{text: t})
		}
	}
	return lines, true
}

// pageContent runs the page's content stream and returns each shown string
// with its position, font size and width. It stands in for pdf.Page.Content,
// which appends a decoded "\n" glyph after every TJ array.
func pageContent(p pdf.Page) (texts []pdf.Text, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("page content: %v", r)
		}
	}()
	if p.V.Key("Contents").Kind() == pdf.Null {
		return nil, nil
	}
	type state struct {
		ctm            mat
		tc, tw, th, tl float64
		tfs, rise      float64
		font           pdf.Font
		enc            pdf.TextEncoding
	}
	g := state{ctm: ident, th: 1}
	var stack []state
	var tm, tlm mat
	fonts := map[string]pdf.Font{}
	show := func(raw string) {
		if g.enc == nil {
			return
		}
		decoded := g.enc.Decode(raw)
		runes := []rune(decoded)
		single := len(runes) == len(raw)
		var w float64
		for i := 0; i < len(raw); i++ {
			gw := 0.0
			if single {
				gw = g.font.Width(int(raw[i])) / 1000
			}
			if gw == 0 && single {
				gw = 0.5
			}
			adv := gw*g.tfs + g.tc
			if single && raw[i] == ' ' {
				adv += g.tw
			}
			w += adv * g.th
		}
		if !single {
			w = float64(len(runes)) * 0.5 * g.tfs * g.th
		}
		trm := mat{g.tfs * g.th, 0, 0, g.tfs, 0, g.rise}.mul(tm).mul(g.ctm)
		scale := math.Hypot(trm[2], trm[3])
		xscale := math.Hypot(tm[0], tm[1]) * math.Hypot(g.ctm[0], g.ctm[1])
		texts = append(texts, pdf.Text{FontSize: scale, X: trm[4], Y: trm[5], W: w * xscale, S: decoded})
		tm = mat{1, 0, 0, 1, w, 0}.mul(tm)
	}
	pdf.Interpret(p.V.Key("Contents"), func(stk *pdf.Stack, op string) {
		n := stk.Len()
		args := make([]pdf.Value, n)
		for i := n - 1; i >= 0; i-- {
			args[i] = stk.Pop()
		}
		num := func(i int) float64 {
			if i < len(args) {
				return args[i].Float64()
			}
			return 0
		}
		switch op {
		case "q":
			stack = append(stack, g)
		case "Q":
			if len(stack) > 0 {
				g = stack[len(stack)-1]
				stack = stack[:len(stack)-1]
			}
		case "cm":
			if len(args) == 6 {
				g.ctm = mat{num(0), num(1), num(2), num(3), num(4), num(5)}.mul(g.ctm)
			}
		case "BT":
			tm, tlm = ident, ident
		case "Tc":
			g.tc = num(0)
		case "Tw":
			g.tw = num(0)
		case "Tz":
			g.th = num(0) / 100
		case "TL":
			g.tl = num(0)
		case "Ts":
			g.rise = num(0)
		case "Tf":
			if len(args) == 2 {
				name := args[0].Name()
				f, ok := fonts[name]
				if !ok {
					f = p.Font(name)
					fonts[name] = f
				}
				g.font, g.tfs = f, num(1)
				g.enc = f.Encoder()
			}
		case "TD":
			g.tl = -num(1)
			fallthrough
		case "Td":
			tlm = mat{1, 0, 0, 1, num(0), num(1)}.mul(tlm)
			tm = tlm
		case "Tm":
			if len(args) == 6 {
				tlm = mat{num(0), num(1), num(2), num(3), num(4), num(5)}
				tm = tlm
			}
		case "T*":
			tlm = mat{1, 0, 0, 1, 0, -g.tl}.mul(tlm)
			tm = tlm
		case "\"":
			if len(args) == 3 {
				g.tw, g.tc = num(0), num(1)
				args = args[2:]
			}
			fallthrough
		case "'":
			tlm = mat{1, 0, 0, 1, 0, -g.tl}.mul(tlm)
			tm = tlm
			fallthrough
		case "Tj":
			if len(args) == 1 {
				show(args[0].RawString())
			}
		case "TJ":
			if len(args) != 1 {
				return
			}
			v := args[0]
			for i := 0; i < v.Len(); i++ {
				x := v.Index(i)
				if x.Kind() == pdf.String {
					show(x.RawString())
				} else {
					tm = mat{1, 0, 0, 1, -x.Float64() / 1000 * g.tfs * g.th, 0}.mul(tm)
				}
			}
		}
	})
	return texts, nil
}

// mat is a PDF transformation matrix [a b c d e f].
type mat [6]float64

var ident = mat{1, 0, 0, 1, 0, 0}

func (m mat) mul(n mat) mat {
	return mat{
		m[0]*n[0] + m[1]*n[2],
		m[0]*n[1] + m[1]*n[3],
		m[2]*n[0] + m[3]*n[2],
		m[2]*n[1] + m[3]*n[3],
		m[4]*n[0] + m[5]*n[2] + n[4],
		m[4]*n[1] + m[5]*n[3] + n[5],
	}
}

func pagePlain(p pdf.Page) (s string, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("page text: %v", r)
		}
	}()
	return p.GetPlainText(nil)
}

// groupLines joins glyphs into lines: a glyph on another baseline starts a new
// line, a gap wider than a fifth of the font size is a space.
func groupLines(texts []pdf.Text) []pdfLine {
	var lines []pdfLine
	var cur strings.Builder
	var curY, curX, size, lastEnd float64
	started := false
	emit := func() {
		if t := strings.Join(strings.Fields(cur.String()), " "); t != "" {
			lines = append(lines, pdfLine{text: t, y: curY, x: curX, size: size})
		}
		cur.Reset()
		started = false
	}
	for _, t := range texts {
		if t.S == "" {
			continue
		}
		fs := t.FontSize
		if fs <= 0 {
			fs = 10
		}
		if started && (math.Abs(t.Y-curY) > fs*0.4 || t.X < lastEnd-fs*2) {
			emit()
		}
		if !started {
			curY, curX, size, started = t.Y, t.X, fs, true
		} else if gap := t.X - lastEnd; gap > fs*0.2 && !strings.HasSuffix(cur.String(), " ") && t.S != " " {
			cur.WriteString(" ")
		}
		cur.WriteString(t.S)
		size = math.Max(size, fs)
		w := t.W
		if w <= 0 {
			w = fs * 0.5 * float64(len([]rune(t.S)))
		}
		lastEnd = t.X + w
	}
	emit()
	return lines
}

// pageBlocks turns a page's lines into blocks: a vertical gap clearly larger
// than the usual line spacing ends a paragraph, a bullet starts a list item,
// a short line in a larger font is a heading.
func pageBlocks(lines []pdfLine, body float64, page int) []knowledge.Block {
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
		heading := body > 0 && l.size > body*1.15 && len(strings.Fields(l.text)) <= 16
		if heading {
			level := 3
			switch {
			case l.size >= body*1.6:
				level = 1
			case l.size >= body*1.3:
				level = 2
			}
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
		cur.Text += "\n" + l.text
	}
	flush()
	return blocks
}

func median(xs []float64) float64 { return quantile(xs, 0.5) }

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
