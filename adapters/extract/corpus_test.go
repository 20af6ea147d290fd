package extract

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode"

	"golang.org/x/net/html"

	"github.com/companin/companin/domain/knowledge"
)

// The corpus: real documents made by others (testdata/corpus/SOURCES names
// each one's origin and licence). Every document's vocabulary is compared
// with a peer that is known to read it well: poppler's pdftotext for PDFs,
// the whole text of the body for HTML, the text of every w:t element for DOCX.
const (
	corpusMedianFloor = 0.97
	corpusDocFloor    = 0.90
)

// vocabulary returns the set of lower-cased words of two or more letters or
// digits in s.
func vocabulary(s string) map[string]bool {
	words := map[string]bool{}
	for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		if len([]rune(w)) >= 2 {
			words[w] = true
		}
	}
	return words
}

// f1 compares two vocabularies: the harmonic mean of recall (the peer's words
// we have) and precision (our words the peer has).
func f1(got, want map[string]bool) (f, recall, precision float64) {
	if len(got) == 0 || len(want) == 0 {
		if len(got) == len(want) {
			return 1, 1, 1
		}
		return 0, 0, 0
	}
	both := 0
	for w := range got {
		if want[w] {
			both++
		}
	}
	recall, precision = float64(both)/float64(len(want)), float64(both)/float64(len(got))
	if both == 0 {
		return 0, recall, precision
	}
	return 2 * recall * precision / (recall + precision), recall, precision
}

func documentText(doc knowledge.Document) string {
	var b strings.Builder
	for _, blk := range doc.Blocks {
		b.WriteString(blk.Text)
		b.WriteString("\n")
	}
	return b.String()
}

// htmlBodyText is the peer for HTML: every text node under <body>, without
// scripts and styles.
func htmlBodyText(t *testing.T, data []byte) string {
	t.Helper()
	root, err := html.Parse(strings.NewReader(toUTF8(data)))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	var rec func(n *html.Node, in bool)
	rec = func(n *html.Node, in bool) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "script", "style", "noscript", "template", "head":
				return
			case "body":
				in = true
			}
		}
		if n.Type == html.TextNode && in {
			b.WriteString(n.Data)
			b.WriteString(" ")
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			rec(c, in)
		}
	}
	rec(root, false)
	return b.String()
}

func pdftotext(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("pdftotext", "-q", "-enc", "UTF-8", path, "-").Output()
	if err != nil && len(out) == 0 {
		t.Logf("pdftotext %s: %v", filepath.Base(path), err)
	}
	return string(out)
}

type corpusRow struct {
	name, kind      string
	pages, words    int
	f, recall, prec float64
	took            time.Duration
}

func corpusDir() string {
	if d := os.Getenv("COMPANIN_EXTRACT_CORPUS"); d != "" {
		return d
	}
	return filepath.Join("testdata", "corpus")
}

// TestCorpusVocabulary extracts every document of the corpus and compares its
// vocabulary with the peer's; it fails when the median F1 is below 0.97 or
// any document is below 0.90. It needs pdftotext (poppler-utils).
func TestCorpusVocabulary(t *testing.T) {
	if _, err := exec.LookPath("pdftotext"); err != nil {
		t.Fatal("pdftotext (poppler-utils) is needed as the peer of the PDF corpus test: apt-get install poppler-utils")
	}
	dir := corpusDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var rows []corpusRow
	counts := map[string]int{}
	for _, e := range entries {
		name := e.Name()
		ext := strings.TrimPrefix(strings.ToLower(filepath.Ext(name)), ".")
		if ext == "htm" {
			ext = "html"
		}
		if ext != "pdf" && ext != "html" && ext != "docx" {
			continue
		}
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var peer string
		switch ext {
		case "pdf":
			peer = pdftotext(t, path)
		case "html":
			peer = htmlBodyText(t, data)
		case "docx":
			peer = docxAllText(t, data)
		}
		start := time.Now()
		doc, err := File(context.Background(), ext, data)
		took := time.Since(start)
		want := vocabulary(peer)
		if err != nil {
			if len(want) == 0 {
				t.Logf("%s: %v (the peer finds no words either)", name, err)
				continue
			}
			t.Errorf("%s: %v", name, err)
		}
		got := vocabulary(documentText(doc))
		f, r, p := f1(got, want)
		rows = append(rows, corpusRow{name: name, kind: ext, pages: doc.Pages, words: len(want), f: f, recall: r, prec: p, took: took})
		counts[ext]++
	}
	if counts["pdf"] == 0 && counts["html"] == 0 {
		t.Fatalf("no documents in %s", dir)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-44s %-4s %5s %6s %6s %6s %6s %8s\n", "document", "type", "pages", "vocab", "F1", "recall", "prec", "time")
	var fs []float64
	for _, r := range rows {
		fmt.Fprintf(&b, "%-44s %-4s %5d %6d %6.3f %6.3f %6.3f %8s\n", trimName(r.name), r.kind, r.pages, r.words, r.f, r.recall, r.prec, r.took.Round(time.Millisecond))
		fs = append(fs, r.f)
	}
	sort.Float64s(fs)
	med := fs[len(fs)/2]
	if len(fs)%2 == 0 {
		med = (fs[len(fs)/2-1] + fs[len(fs)/2]) / 2
	}
	fmt.Fprintf(&b, "documents: %d PDF, %d HTML, %d DOCX; median F1 %.3f, lowest %.3f\n", counts["pdf"], counts["html"], counts["docx"], med, fs[0])
	t.Log(b.String())
	if med < corpusMedianFloor {
		t.Errorf("median F1 %.3f below %.2f", med, corpusMedianFloor)
	}
	for _, r := range rows {
		if r.f < corpusDocFloor {
			t.Errorf("%s: F1 %.3f below %.2f (recall %.3f, precision %.3f)", r.name, r.f, corpusDocFloor, r.recall, r.prec)
		}
	}
}

func trimName(s string) string {
	if len(s) > 44 {
		return s[:41] + "..."
	}
	return s
}

// docxAllText is the peer for DOCX: the text of every w:t element of the
// document body, read with encoding/xml.
func docxAllText(t *testing.T, data []byte) string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, f := range zr.File {
		if f.Name != "word/document.xml" {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		d := xml.NewDecoder(rc)
		in := false
		for {
			tok, err := d.Token()
			if err != nil {
				break
			}
			switch x := tok.(type) {
			case xml.StartElement:
				in = x.Name.Local == "t"
			case xml.EndElement:
				in = false
				if x.Name.Local == "p" {
					b.WriteString("\n")
				}
			case xml.CharData:
				if in {
					b.Write(x)
				}
			}
		}
		rc.Close()
	}
	return b.String()
}

// Page numbers and headings reach the chunks, for citations: a calibre-made
// manual of the corpus is cut into chunks that say where they start and
// under which heading they stand.
func TestPDFChunksCarryPagesAndHeadings(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "corpus", "BuildingWebappsWithGo.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := File(context.Background(), "pdf", data)
	if err != nil {
		t.Fatal(err)
	}
	text, chunks := knowledge.Split(doc)
	pages, titled, last := map[int]bool{}, 0, 0
	for _, c := range chunks {
		if c.Page < last || c.Page < 1 || c.Page > doc.Pages {
			t.Errorf("chunk %d on page %d after page %d (of %d)", c.Index, c.Page, last, doc.Pages)
		}
		last = c.Page
		pages[c.Page] = true
		if len(c.TitlePath) > 0 {
			titled++
		}
	}
	if len(pages) < doc.Pages/2 || titled < len(chunks)/2 {
		t.Errorf("%d chunks over %d of %d pages, %d under a heading", len(chunks), len(pages), doc.Pages, titled)
	}
	i := strings.Index(text, "git push heroku master")
	if i < 0 {
		t.Fatal("the deployment command is not in the text")
	}
	for _, c := range chunks {
		if c.Start <= i && i < c.End {
			t.Logf("'git push heroku master': chunk %d, page %d, under %q", c.Index, c.Page, c.TitlePath)
			if c.Page < 2 || len(c.TitlePath) == 0 {
				t.Errorf("chunk %d: page %d, headings %q", c.Index, c.Page, c.TitlePath)
			}
		}
	}
}
