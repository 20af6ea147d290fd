package extract

import (
	"regexp"
	"strings"

	"github.com/companin/companin/domain/knowledge"
)

var (
	mdHeading  = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*#*\s*$`)
	listMarker = regexp.MustCompile(`^\s*([-*+•‣◦]|\d{1,3}[.)]|[a-zA-Z][.)])\s+`)
	mdSetext   = regexp.MustCompile(`^(=+|-+)\s*$`)
	mdTableSep = regexp.MustCompile(`^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$`)
)

// Text splits plain text into paragraphs (blank lines separate them) and list
// items; a short line followed by an underline or standing alone in capitals
// is taken as a heading.
func Text(s string) (knowledge.Document, error) {
	return Markdown(s)
}

// Markdown reads the structure of a Markdown document: ATX and setext
// headings, paragraphs, list items (with their continuation lines), tables
// and fenced code blocks. Inline markup is kept as written.
func Markdown(s string) (knowledge.Document, error) {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
	lines := strings.Split(s, "\n")
	var doc knowledge.Document
	var cur *knowledge.Block
	flush := func() {
		if cur != nil && strings.TrimSpace(cur.Text) != "" {
			doc.Blocks = append(doc.Blocks, *cur)
		}
		cur = nil
	}
	for i := 0; i < len(lines); i++ {
		line := strings.TrimRight(lines[i], " \t")
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~"):
			flush()
			fence := trimmed[:3]
			var code []string
			for i++; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), fence); i++ {
				code = append(code, lines[i])
			}
			doc.Blocks = append(doc.Blocks, knowledge.Block{Kind: knowledge.Code, Text: strings.Join(code, "\n")})
		case trimmed == "":
			flush()
		case mdHeading.MatchString(trimmed):
			flush()
			m := mdHeading.FindStringSubmatch(trimmed)
			doc.Blocks = append(doc.Blocks, knowledge.Block{Kind: knowledge.Heading, Level: len(m[1]), Text: m[2]})
		case cur != nil && cur.Kind == knowledge.Paragraph && !strings.Contains(cur.Text, "\n") && mdSetext.MatchString(trimmed):
			level := 1
			if trimmed[0] == '-' {
				level = 2
			}
			cur.Kind, cur.Level = knowledge.Heading, level
			flush()
		case strings.HasPrefix(trimmed, "|") || (strings.Count(trimmed, "|") >= 2 && i+1 < len(lines) && mdTableSep.MatchString(lines[i+1])):
			flush()
			var rows []string
			for ; i < len(lines) && strings.Contains(lines[i], "|") && strings.TrimSpace(lines[i]) != ""; i++ {
				if mdTableSep.MatchString(lines[i]) {
					continue
				}
				rows = append(rows, tableRow(splitMDRow(lines[i])))
			}
			i--
			doc.Blocks = append(doc.Blocks, knowledge.Block{Kind: knowledge.Table, Text: strings.Join(rows, "\n")})
		case listMarker.MatchString(line):
			flush()
			cur = &knowledge.Block{Kind: knowledge.ListItem, Text: trimmed}
		case cur != nil:
			cur.Text += "\n" + trimmed
		default:
			cur = &knowledge.Block{Kind: knowledge.Paragraph, Text: trimmed}
		}
	}
	flush()
	return doc, nil
}

func splitMDRow(line string) []string {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(line, "|")
	line = strings.TrimSuffix(line, "|")
	cells := strings.Split(line, "|")
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	return cells
}

// tableRow renders one table row as text: cells separated by " | ".
func tableRow(cells []string) string {
	for i := range cells {
		cells[i] = strings.Join(strings.Fields(cells[i]), " ")
	}
	return strings.Join(cells, " | ")
}
