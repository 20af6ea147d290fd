package extract

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/companin/companin/domain/knowledge"
)

// csvRowsPerTable bounds a table block, so that a long sheet becomes several
// tables that each repeat the header row instead of one block nobody can cite.
const csvRowsPerTable = 25

// CSV reads a spreadsheet export: the first row is taken as the header and
// repeated at the top of every table block. Comma, semicolon and tab
// delimiters are recognized.
func CSV(data []byte) (knowledge.Document, error) {
	text := toUTF8(data)
	r := csv.NewReader(strings.NewReader(text))
	r.Comma = sniffDelimiter(text)
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	var rows [][]string
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return knowledge.Document{}, fmt.Errorf("%w: the CSV cannot be read (%v); check the quoting around that line", ErrCorrupt, err)
		}
		if strings.TrimSpace(strings.Join(rec, "")) == "" {
			continue
		}
		rows = append(rows, rec)
	}
	var doc knowledge.Document
	if len(rows) == 0 {
		return doc, nil
	}
	header := tableRow(append([]string(nil), rows[0]...))
	body := rows[1:]
	if len(body) == 0 {
		doc.Blocks = append(doc.Blocks, knowledge.Block{Kind: knowledge.Table, Text: header})
		return doc, nil
	}
	for len(body) > 0 {
		n := min(len(body), csvRowsPerTable)
		var b bytes.Buffer
		b.WriteString(header)
		for _, rec := range body[:n] {
			b.WriteString("\n")
			b.WriteString(tableRow(rec))
		}
		doc.Blocks = append(doc.Blocks, knowledge.Block{Kind: knowledge.Table, Text: b.String()})
		body = body[n:]
	}
	return doc, nil
}

func sniffDelimiter(text string) rune {
	first, _, _ := strings.Cut(text, "\n")
	best, count := ',', strings.Count(first, ",")
	for _, d := range []rune{';', '\t'} {
		if c := strings.Count(first, string(d)); c > count {
			best, count = d, c
		}
	}
	return best
}
