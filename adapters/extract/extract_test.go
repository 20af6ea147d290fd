package extract

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/PuerkitoBio/goquery"

	"github.com/companin/companin/domain/knowledge"
)

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func find(doc knowledge.Document, kind knowledge.BlockKind, contains string) *knowledge.Block {
	for i, b := range doc.Blocks {
		if b.Kind == kind && strings.Contains(b.Text, contains) {
			return &doc.Blocks[i]
		}
	}
	return nil
}

// checkManual asserts the structure every rendering of manual.html must keep.
func checkManual(t *testing.T, doc knowledge.Document, tableKind knowledge.BlockKind) {
	t.Helper()
	if h := find(doc, knowledge.Heading, "Resetting the password"); h == nil || h.Level != 2 {
		t.Errorf("heading 'Resetting the password' level 2 missing: %+v", doc.Blocks)
	}
	if find(doc, knowledge.ListItem, "yellow WAN port") == nil {
		t.Errorf("list item missing: %+v", doc.Blocks)
	}
	if p := find(doc, knowledge.Paragraph, "reset button"); p == nil || !strings.Contains(p.Text, "underneath") {
		t.Errorf("paragraph about the reset button not kept whole: %+v", p)
	}
	if find(doc, tableKind, "802.11ax") == nil {
		t.Errorf("table row missing: %+v", doc.Blocks)
	}
	if find(doc, knowledge.Paragraph, "Geräte neu") == nil {
		t.Errorf("German umlauts lost: %+v", doc.Blocks)
	}
}

func TestLibreOfficePDF(t *testing.T) {
	doc, err := File(context.Background(), "pdf", read(t, "manual.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	checkManual(t, doc, knowledge.Paragraph)
	if doc.Pages != 1 || doc.Blocks[0].Page != 1 {
		t.Errorf("pages = %d, first block page %d", doc.Pages, doc.Blocks[0].Page)
	}
	if doc.Blocks[0].Kind != knowledge.Heading || doc.Blocks[0].Text != "Acme Router X200 Manual" {
		t.Errorf("first block = %+v, want the title heading", doc.Blocks[0])
	}
	p := find(doc, knowledge.Paragraph, "Connect the router")
	if p == nil || strings.Count(p.Text, "\n") != 2 {
		t.Errorf("line breaks within the paragraph not kept: %+v", p)
	}
	if li := find(doc, knowledge.ListItem, "grey LAN"); li == nil || !strings.HasPrefix(li.Text, "•") {
		t.Errorf("bullet not normalized: %+v", li)
	}
}

func TestGhostscriptPDFPages(t *testing.T) {
	doc, err := File(context.Background(), "pdf", read(t, "guide.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	if doc.Pages != 2 {
		t.Fatalf("pages = %d, want 2", doc.Pages)
	}
	pay := find(doc, knowledge.Paragraph, "credit cards")
	if pay == nil || pay.Page != 2 {
		t.Errorf("payment paragraph on page 2 expected: %+v", pay)
	}
	ship := find(doc, knowledge.Paragraph, "Delivery within Germany")
	intl := find(doc, knowledge.Paragraph, "International parcels")
	if ship == nil || intl == nil || ship == intl {
		t.Errorf("the blank line between paragraphs did not split them: %+v", doc.Blocks)
	}
	if h := find(doc, knowledge.Heading, "Shipping Guide"); h == nil || h.Page != 1 {
		t.Errorf("heading missing: %+v", doc.Blocks)
	}
}

func TestFreshPDFsFromInstalledTools(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs LibreOffice and Ghostscript")
	}
	dir := t.TempDir()
	if gs, err := exec.LookPath("ps2pdf"); err == nil {
		out := filepath.Join(dir, "guide.pdf")
		if b, err := exec.Command(gs, filepath.Join("testdata", "guide.ps"), out).CombinedOutput(); err != nil {
			t.Fatalf("ps2pdf: %v %s", err, b)
		}
		data, _ := os.ReadFile(out)
		doc, err := File(context.Background(), "pdf", data)
		if err != nil || find(doc, knowledge.Paragraph, "Invoices are due") == nil {
			t.Errorf("fresh Ghostscript PDF: %v %+v", err, doc.Blocks)
		}
	} else {
		t.Log("ps2pdf not installed; using the committed guide.pdf only")
	}
	if soffice, err := exec.LookPath("soffice"); err == nil {
		src := filepath.Join(dir, "manual.html")
		_ = os.WriteFile(src, read(t, "manual.html"), 0o644)
		cmd := exec.Command(soffice, "--headless", "-env:UserInstallation=file://"+filepath.Join(dir, "profile"), "--convert-to", "pdf", "--outdir", dir, src)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("soffice: %v %s", err, b)
		}
		data, err := os.ReadFile(filepath.Join(dir, "manual.pdf"))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := File(context.Background(), "pdf", data)
		if err != nil {
			t.Fatal(err)
		}
		if find(doc, knowledge.Heading, "Resetting the password") == nil || find(doc, knowledge.Paragraph, "reset button") == nil {
			t.Errorf("fresh LibreOffice PDF: %+v", doc.Blocks)
		}
	} else {
		t.Log("soffice not installed; using the committed manual.pdf only")
	}
}

func TestDOCX(t *testing.T) {
	doc, err := File(context.Background(), "docx", read(t, "manual.docx"))
	if err != nil {
		t.Fatal(err)
	}
	checkManual(t, doc, knowledge.Table)
	tbl := find(doc, knowledge.Table, "Warranty")
	if tbl == nil || !strings.Contains(tbl.Text, "Warranty | 3 years") || strings.Count(tbl.Text, "\n") != 3 {
		t.Errorf("table = %+v", tbl)
	}
}

func TestHTML(t *testing.T) {
	doc, err := File(context.Background(), "html", read(t, "manual.html"))
	if err != nil {
		t.Fatal(err)
	}
	checkManual(t, doc, knowledge.Table)
	if doc.Title != "Acme Router X200 Manual" {
		t.Errorf("title = %q", doc.Title)
	}
}

func TestHTMLDropsNavigation(t *testing.T) {
	page := `<html><head><title>Blog</title><script>var x=1</script></head><body>
<nav><a href="/">Home</a> <a href="/pricing">Pricing</a></nav>
<article><h1>New features</h1><p>` + strings.Repeat("Our new dashboard shows every conversation at a glance. ", 12) + `</p>
<p>` + strings.Repeat("Export your data as CSV from the settings page. ", 10) + `</p></article>
<footer>Copyright 2026 Example GmbH</footer></body></html>`
	doc, err := File(context.Background(), "html", []byte(page))
	if err != nil {
		t.Fatal(err)
	}
	all := ""
	for _, b := range doc.Blocks {
		all += b.Text + "\n"
	}
	for _, junk := range []string{"Pricing", "Copyright", "var x"} {
		if strings.Contains(all, junk) {
			t.Errorf("%q kept: %s", junk, all)
		}
	}
	if !strings.Contains(all, "Export your data as CSV") {
		t.Errorf("content lost: %s", all)
	}
}

func TestMarkdownAndText(t *testing.T) {
	md := "# Billing\n\nWe bill monthly.\nInvoices go out on the 1st.\n\n## Refunds\n\n- Full refund within 14 days\n- Partial refund\n  after that\n\n| Plan | Price |\n|---|---|\n| Basic | 10 € |\n| Pro | 30 € |\n\n```\ncurl -X POST /refunds\n```\n"
	doc, err := File(context.Background(), "md", []byte(md))
	if err != nil {
		t.Fatal(err)
	}
	want := []knowledge.Block{
		{Kind: knowledge.Heading, Level: 1, Text: "Billing"},
		{Kind: knowledge.Paragraph, Text: "We bill monthly.\nInvoices go out on the 1st."},
		{Kind: knowledge.Heading, Level: 2, Text: "Refunds"},
		{Kind: knowledge.ListItem, Text: "- Full refund within 14 days"},
		{Kind: knowledge.ListItem, Text: "- Partial refund\nafter that"},
		{Kind: knowledge.Table, Text: "Plan | Price\nBasic | 10 €\nPro | 30 €"},
		{Kind: knowledge.Code, Text: "curl -X POST /refunds"},
	}
	if len(doc.Blocks) != len(want) {
		t.Fatalf("blocks = %+v", doc.Blocks)
	}
	for i := range want {
		if doc.Blocks[i] != want[i] {
			t.Errorf("block %d = %+v, want %+v", i, doc.Blocks[i], want[i])
		}
	}
	latin1 := []byte("Gr\xfc\xdfe aus M\xfcnchen")
	doc, err = File(context.Background(), "txt", latin1)
	if err != nil || doc.Blocks[0].Text != "Grüße aus München" {
		t.Errorf("latin-1 text: %v %+v", err, doc.Blocks)
	}
}

func TestCSV(t *testing.T) {
	data := "product;price;stock\nRouter X200;129,00;12\n\"Cable; 2m\";9,90;300\n"
	doc, err := File(context.Background(), "csv", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Blocks) != 1 || doc.Blocks[0].Text != "product | price | stock\nRouter X200 | 129,00 | 12\nCable; 2m | 9,90 | 300" {
		t.Errorf("blocks = %+v", doc.Blocks)
	}
}

func TestErrorsAPersonCanActOn(t *testing.T) {
	cases := []struct {
		name, fileType string
		data           []byte
		want           error
		mention        string
	}{
		{"corrupt pdf", "pdf", read(t, "corrupt.pdf"), ErrCorrupt, "Save as PDF"},
		{"scanned pdf", "pdf", read(t, "scan.pdf"), ErrNoText, "OCR"},
		{"pdf that is a docx", "pdf", read(t, "manual.docx"), ErrTypeMismatch, "PDF header"},
		{"docx that is a pdf", "docx", read(t, "manual.pdf"), ErrTypeMismatch, ".docx"},
		{"zip that is no docx", "docx", []byte("PK\x03\x04garbage"), ErrCorrupt, "Word"},
		{"text that is binary", "txt", read(t, "manual.pdf"), ErrTypeMismatch, "binary"},
		{"empty", "txt", []byte("  \n"), ErrNoText, "empty"},
		{"unknown type", "exe", []byte("MZ"), ErrUnsupportedType, "pdf, docx, html, md, txt, csv"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := File(context.Background(), c.fileType, c.data)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.mention) {
				t.Errorf("err %q does not mention %q", err, c.mention)
			}
		})
	}
}

// An uploaded HTML file keeps every table, definition list and code block of
// its body (a real page of the Debian Developer's Reference, in German).
func TestUploadedHTMLKeepsTablesListsAndCode(t *testing.T) {
	data := read(t, filepath.Join("corpus", "devref-tools.de.html"))
	doc, err := File(context.Background(), "html", data)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(strings.Fields(documentText(doc)), " ")
	gdoc, _, err := parseHTML(data)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	gdoc.Find("table, dl, pre, ul, ol").Each(func(_ int, s *goquery.Selection) {
		want := strings.Join(strings.Fields(s.Text()), " ")
		words := strings.Fields(want)
		if len(words) > 12 {
			want = strings.Join(words[:12], " ") // a table's cells are joined with " | "
		}
		n++
		for _, w := range strings.Fields(want) {
			if !strings.Contains(got, w) {
				t.Errorf("%s lost: %q (from %q)", goquery.NodeName(s), w, want)
				return
			}
		}
	})
	if n < 5 {
		t.Fatalf("only %d structures found; the fixture changed?", n)
	}
}

// A fetched documentation page is read for its article, but a table or
// definition list that Readability leaves out brings the whole body back.
func TestWebPageKeepsDocumentationTables(t *testing.T) {
	prose := strings.Repeat("The gateway forwards every request to the upstream service and retries idempotent calls once. ", 8)
	page := `<html><head><title>Gateway settings</title></head><body>
<nav><a href="/">Docs home</a> <a href="/pricing">Pricing</a></nav>
<div class="content"><article><h1>Gateway settings</h1><p>` + prose + `</p><p>` + prose + `</p></article>
<div class="supplemental"><table><tr><th>Setting</th><th>Default</th></tr><tr><td>retry_budget</td><td>0.2</td></tr></table>
<dl><dt>upstream_timeout</dt><dd>Seconds before a call is abandoned.</dd></dl></div></div>
<footer>© Example Corp</footer></body></html>`
	doc, err := Page(context.Background(), "html", "https://docs.example.com/gateway", []byte(page))
	if err != nil {
		t.Fatal(err)
	}
	all := documentText(doc)
	for _, want := range []string{"retry_budget | 0.2", "upstream_timeout", "abandoned", "retries idempotent"} {
		if !strings.Contains(all, want) {
			t.Errorf("%q lost:\n%s", want, all)
		}
	}
	for _, junk := range []string{"Pricing", "Example Corp"} {
		if strings.Contains(all, junk) {
			t.Errorf("%q kept:\n%s", junk, all)
		}
	}
}

// Whatever the format, extracted text is valid UTF-8 without NUL or other
// control characters: PostgreSQL refuses them, and one such value stopped a
// projection for every organization.
func TestExtractedTextIsCleanUTF8(t *testing.T) {
	if got := clean("a\x00b\xffc\x07d\r\ne\u0085f\tg"); got != "ab\uFFFDcd\n\ne f\tg" {
		t.Errorf("clean = %q", got)
	}
	cases := map[string][]byte{
		"md":   []byte("# Title\x01\n\nReset\x1b the router.\x7f"),
		"html": []byte("<p>Reset&#0; the &#x1b;router\x01.</p>"),
		"csv":  []byte("name,value\nrouter\x02,ok\n"),
	}
	for ft, data := range cases {
		doc, err := File(context.Background(), ft, data)
		if err != nil {
			t.Fatalf("%s: %v", ft, err)
		}
		text := doc.Title + documentText(doc)
		if !utf8.ValidString(text) || strings.ContainsFunc(text, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\t' || r == 0x7f }) {
			t.Errorf("%s: %q", ft, text)
		}
		if !strings.Contains(text, "Reset") && !strings.Contains(text, "router") {
			t.Errorf("%s: text lost: %q", ft, text)
		}
	}
}

// Over a limit, a document fails with ErrTooLarge and a reason that says to
// split it.
func TestLimitsFailWithAReason(t *testing.T) {
	l := Limits{MaxChars: 1000, MaxPages: 10}
	big := []byte(strings.Repeat("Every word counts here. ", 100))
	if _, err := l.File(context.Background(), "txt", big); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "split") {
		t.Errorf("characters: %v", err)
	}
	walden := read(t, filepath.Join("corpus", "WaldenFull.pdf"))
	if _, err := l.File(context.Background(), "pdf", walden); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "249 pages") {
		t.Errorf("pages: %v", err)
	}
}
