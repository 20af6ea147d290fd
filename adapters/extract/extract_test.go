package extract

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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
