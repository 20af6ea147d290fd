// Package bombs makes decompression bombs for tests: small files that are
// valid documents and unpack to far more text than they weigh. Tests of the
// extractors, the ingestion limits and the whole server feed them to the
// upload path.
package bombs

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/zlib"
	"fmt"
	"io"
	"strings"
)

// PDF is a valid one-page PDF whose single content stream shows one string of
// about n bytes ("bomb bomb ..."), Flate-compressed to about n/1000 bytes.
func PDF(n int) []byte {
	var content bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&content, zlib.BestCompression)
	_, _ = io.WriteString(zw, "BT /F1 12 Tf 72 720 Td (")
	chunk := bytes.Repeat([]byte("bomb "), 1<<16)
	for written := 0; written < n; written += len(chunk) {
		_, _ = zw.Write(chunk)
	}
	_, _ = io.WriteString(zw, ") Tj ET")
	_ = zw.Close()

	var pdf bytes.Buffer
	var offsets []int
	obj := func(s string) {
		offsets = append(offsets, pdf.Len())
		pdf.WriteString(s)
	}
	pdf.WriteString("%PDF-1.4\n")
	obj("1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n")
	obj("2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n")
	obj("3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >> endobj\n")
	obj(fmt.Sprintf("4 0 obj << /Length %d /Filter /FlateDecode >> stream\n", content.Len()))
	pdf.Write(content.Bytes())
	pdf.WriteString("\nendstream endobj\n")
	obj("5 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> endobj\n")
	xref := pdf.Len()
	fmt.Fprintf(&pdf, "xref\n0 %d\n0000000000 65535 f \n", len(offsets)+1)
	for _, o := range offsets {
		fmt.Fprintf(&pdf, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&pdf, "trailer << /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offsets)+1, xref)
	return pdf.Bytes()
}

// DOCX is a valid .docx whose word/document.xml unpacks to about n bytes of
// paragraphs.
func DOCX(n int) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	zw.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, flate.BestCompression)
	})
	add := func(name, body string) {
		w, _ := zw.Create(name)
		_, _ = io.WriteString(w, body)
	}
	add("[Content_Types].xml", `<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>`)
	add("_rels/.rels", `<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>`)
	w, _ := zw.Create("word/document.xml")
	_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>`)
	para := []byte(strings.Repeat(`<w:p><w:r><w:t>common words again and again</w:t></w:r></w:p>`, 1024))
	for written := 0; written < n; written += len(para) {
		_, _ = w.Write(para)
	}
	_, _ = io.WriteString(w, `</w:body></w:document>`)
	_ = zw.Close()
	return buf.Bytes()
}
