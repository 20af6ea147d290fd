package extract

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/companin/companin/domain/knowledge"
)

var headingStyle = regexp.MustCompile(`(?i)^(heading|überschrift|berschrift|titre|título)\s*([1-9])$`)

type docxStyle struct {
	name    string
	outline int // 1-based heading level from w:outlineLvl, 0 if none
}

// DOCX reads a Word document: paragraphs, headings (by their paragraph style,
// whatever language Word was in, or by outline level), list items and tables
// (row by row, cells separated by " | ").
func DOCX(data []byte) (knowledge.Document, error) {
	return DefaultLimits.DOCX(data)
}

// DOCX reads a Word document within the limits: what its parts unpack to
// (a zip bomb fails at the limit, read as a stream, never held whole) and
// the characters of text.
func (l Limits) DOCX(data []byte) (knowledge.Document, error) {
	l = l.orDefault()
	max := int64(l.MaxUnpackedMB) << 20
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return knowledge.Document{}, fmt.Errorf("%w: the .docx file is not a valid Word document (%v); open it in Word or LibreOffice and save it again", ErrCorrupt, err)
	}
	var body, styles *zip.File
	for _, f := range zr.File {
		switch f.Name {
		case "word/document.xml":
			body = f
		case "word/styles.xml":
			styles = f
		case "EncryptedPackage":
			return knowledge.Document{}, fmt.Errorf("%w: remove the password in Word and upload again", ErrEncrypted)
		}
	}
	if body == nil {
		return knowledge.Document{}, fmt.Errorf("%w: the file is a zip archive without word/document.xml, so not a Word document", ErrCorrupt)
	}
	st := map[string]docxStyle{}
	if styles != nil {
		if raw, err := readZip(styles, max); err == nil {
			st = parseDocxStyles(raw)
		}
	}
	if body.UncompressedSize64 > uint64(max) {
		return knowledge.Document{}, unpacksTooLarge(l.MaxUnpackedMB)
	}
	rc, err := body.Open()
	if err != nil {
		return knowledge.Document{}, fmt.Errorf("%w: %s cannot be unpacked (%v)", ErrCorrupt, body.Name, err)
	}
	defer rc.Close()
	return parseDocxBody(&limitedReader{r: rc, left: max, mb: l.MaxUnpackedMB}, st, l.MaxChars)
}

func unpacksTooLarge(mb int) error {
	return fmt.Errorf("%w: the document unpacks to more than %d MB; split it into smaller files and upload them separately", ErrTooLarge, mb)
}

// limitedReader fails with ErrTooLarge once more than left bytes were read:
// the size a zip entry declares can be a lie.
type limitedReader struct {
	r    io.Reader
	left int64
	mb   int
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, unpacksTooLarge(l.mb)
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

func readZip(f *zip.File, max int64) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: %s cannot be unpacked (%v)", ErrCorrupt, f.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s cannot be unpacked (%v)", ErrCorrupt, f.Name, err)
	}
	if int64(len(b)) > max {
		return nil, unpacksTooLarge(int(max >> 20))
	}
	return b, nil
}

func attr(e xml.StartElement, local string) string {
	for _, a := range e.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

func parseDocxStyles(raw []byte) map[string]docxStyle {
	out := map[string]docxStyle{}
	d := xml.NewDecoder(bytes.NewReader(raw))
	var id string
	var cur docxStyle
	for {
		tok, err := d.Token()
		if err != nil {
			return out
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "style":
				id, cur = attr(t, "styleId"), docxStyle{}
			case "name":
				cur.name = attr(t, "val")
			case "outlineLvl":
				if n, err := strconv.Atoi(attr(t, "val")); err == nil && n < 9 {
					cur.outline = n + 1
				}
			}
		case xml.EndElement:
			if t.Name.Local == "style" && id != "" {
				out[id] = cur
				id = ""
			}
		}
	}
}

func headingLevel(styleID string, styles map[string]docxStyle, outline int) int {
	if outline > 0 {
		return outline
	}
	s, ok := styles[styleID]
	if ok && s.outline > 0 {
		return s.outline
	}
	for _, name := range []string{s.name, styleID} {
		if strings.EqualFold(name, "title") || strings.EqualFold(name, "titel") {
			return 1
		}
		if m := headingStyle.FindStringSubmatch(name); m != nil {
			n, _ := strconv.Atoi(m[2])
			return n
		}
	}
	return 0
}

type docxPara struct {
	text    strings.Builder
	style   string
	outline int
	list    bool
}

func parseDocxBody(r io.Reader, styles map[string]docxStyle, maxChars int) (knowledge.Document, error) {
	var doc knowledge.Document
	d := xml.NewDecoder(r)
	chars := 0
	var (
		para     *docxPara
		inText   bool
		tblDepth int
		rows     []string
		cells    []string
		cell     strings.Builder
		inPPr    bool
	)
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, ErrTooLarge) {
			return doc, err
		}
		if err != nil {
			return doc, fmt.Errorf("%w: word/document.xml is malformed (%v); open the file in Word or LibreOffice and save it again", ErrCorrupt, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "tbl":
				tblDepth++
			case "tr":
				if tblDepth == 1 {
					cells = cells[:0]
				}
			case "tc":
				if tblDepth == 1 {
					cell.Reset()
				}
			case "p":
				para = &docxPara{}
			case "pPr":
				inPPr = true
			case "pStyle":
				if para != nil && inPPr {
					para.style = attr(t, "val")
				}
			case "outlineLvl":
				if para != nil && inPPr {
					if n, err := strconv.Atoi(attr(t, "val")); err == nil && n < 9 {
						para.outline = n + 1
					}
				}
			case "numPr":
				if para != nil && inPPr {
					para.list = true
				}
			case "t":
				inText = true
			case "tab":
				if para != nil && !inPPr {
					para.text.WriteString("\t")
				}
			case "br", "cr":
				if para != nil {
					para.text.WriteString("\n")
				}
			}
		case xml.CharData:
			if inText && para != nil {
				if chars += utf8.RuneCount(t); chars > maxChars {
					return doc, tooManyChars(maxChars)
				}
				para.text.Write(t)
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "t":
				inText = false
			case "pPr":
				inPPr = false
			case "p":
				if para == nil {
					continue
				}
				text := strings.TrimSpace(para.text.String())
				if tblDepth > 0 {
					if text != "" {
						if cell.Len() > 0 {
							cell.WriteString(" ")
						}
						cell.WriteString(text)
					}
				} else if text != "" {
					b := knowledge.Block{Kind: knowledge.Paragraph, Text: text}
					if lvl := headingLevel(para.style, styles, para.outline); lvl > 0 {
						b.Kind, b.Level = knowledge.Heading, lvl
					} else if para.list || strings.Contains(strings.ToLower(styles[para.style].name), "list") {
						b.Kind = knowledge.ListItem
					}
					doc.Blocks = append(doc.Blocks, b)
				}
				para = nil
			case "tc":
				if tblDepth == 1 {
					cells = append(cells, cell.String())
				}
			case "tr":
				if tblDepth == 1 && len(cells) > 0 {
					rows = append(rows, tableRow(append([]string(nil), cells...)))
				}
			case "tbl":
				tblDepth--
				if tblDepth == 0 {
					if len(rows) > 0 {
						doc.Blocks = append(doc.Blocks, knowledge.Block{Kind: knowledge.Table, Text: strings.Join(rows, "\n")})
					}
					rows = nil
				}
			}
		}
	}
	return doc, nil
}
