// Package extract turns uploaded files and fetched web pages into structured
// documents (headings, paragraphs, list items, tables, with page numbers where
// the format has pages), so that chunking can keep the structure intact.
//
// Every error it returns is meant to be shown to the person who uploaded the
// file: it says what is wrong and what to do about it.
package extract

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/knowledge"
)

// Errors a caller can match with errors.Is; their wrapped text says more.
var (
	// ErrUnsupportedType means the file type is none of those in Types.
	ErrUnsupportedType = errors.New("unsupported file type")
	// ErrTypeMismatch means the content is not what its declared file type says.
	ErrTypeMismatch = errors.New("file content does not match its file type")
	// ErrCorrupt means the file is damaged or not readable in its format.
	ErrCorrupt = errors.New("file is damaged or unreadable")
	// ErrNoText means the file holds no extractable text (a scanned PDF, an empty file).
	ErrNoText = errors.New("file contains no extractable text")
	// ErrEncrypted means the file is protected by a password.
	ErrEncrypted = errors.New("file is password-protected")
)

// Types lists the accepted file types, in the order error messages name them.
var Types = knowledge.FileTypes

// NormalizeType maps a declared file type (any case, with or without a dot,
// common aliases and MIME types) to one of Types, or reports ErrUnsupportedType.
func NormalizeType(t string) (string, error) {
	ft, err := knowledge.ParseFileType("file_type", t)
	if err != nil {
		var ie *domain.InvalidError
		if errors.As(err, &ie) {
			return "", fmt.Errorf("%w: file_type %s", ErrUnsupportedType, ie.Message)
		}
		return "", fmt.Errorf("%w: %v", ErrUnsupportedType, err)
	}
	return ft, nil
}

// Check tells whether data looks like the given (normalized) file type, so an
// upload can be refused at once instead of failing later in the background.
func Check(fileType string, data []byte) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return fmt.Errorf("%w: the file is empty", ErrNoText)
	}
	switch fileType {
	case "pdf":
		if !bytes.HasPrefix(bytes.TrimLeft(data[:min(len(data), 1024)], "\x00\t\r\n "), []byte("%PDF-")) {
			return fmt.Errorf("%w: file_type is pdf but the file does not start with a PDF header", ErrTypeMismatch)
		}
	case "docx":
		if !bytes.HasPrefix(data, []byte("PK\x03\x04")) {
			return fmt.Errorf("%w: file_type is docx but the file is not a Word (.docx) document; save it as .docx (Word 2007 or later) and upload again", ErrTypeMismatch)
		}
	case "html", "md", "txt", "csv":
		if looksBinary(data) {
			return fmt.Errorf("%w: file_type is %s but the file is binary, not text", ErrTypeMismatch, fileType)
		}
	default:
		_, err := NormalizeType(fileType)
		return err
	}
	return nil
}

func looksBinary(data []byte) bool {
	head := data[:min(len(data), 8192)]
	if bytes.IndexByte(head, 0) >= 0 {
		return true
	}
	if bytes.HasPrefix(data, []byte("%PDF-")) || bytes.HasPrefix(data, []byte("PK\x03\x04")) {
		return true
	}
	return false
}

// File extracts the document from the bytes of an uploaded file of the
// given type, within DefaultLimits.
func File(ctx context.Context, fileType string, data []byte) (knowledge.Document, error) {
	return DefaultLimits.File(ctx, fileType, data)
}

// Page extracts a document fetched from pageURL, within DefaultLimits: like
// File, except that a web page is read for its article (see WebPage).
func Page(ctx context.Context, fileType, pageURL string, data []byte) (knowledge.Document, error) {
	return DefaultLimits.Page(ctx, fileType, pageURL, data)
}

// File extracts the document from the bytes of an uploaded file.
func (l Limits) File(ctx context.Context, fileType string, data []byte) (knowledge.Document, error) {
	return l.extract(ctx, fileType, data, HTML)
}

// Page extracts a document fetched from pageURL.
func (l Limits) Page(ctx context.Context, fileType, pageURL string, data []byte) (knowledge.Document, error) {
	return l.extract(ctx, fileType, data, func(data []byte, _ string) (knowledge.Document, error) {
		return WebPage(data, pageURL)
	})
}

func (l Limits) extract(ctx context.Context, fileType string, data []byte, readHTML func([]byte, string) (knowledge.Document, error)) (knowledge.Document, error) {
	l = l.orDefault()
	ft, err := NormalizeType(fileType)
	if err != nil {
		return knowledge.Document{}, err
	}
	if err := Check(ft, data); err != nil {
		return knowledge.Document{}, err
	}
	var doc knowledge.Document
	switch ft {
	case "pdf":
		doc, err = l.PDF(ctx, data)
	case "docx":
		doc, err = l.DOCX(data)
	case "html":
		doc, err = readHTML(data, "")
	case "md":
		doc, err = Markdown(toUTF8(data))
	case "txt":
		doc, err = Text(toUTF8(data))
	case "csv":
		doc, err = CSV(data)
	}
	if err != nil {
		return knowledge.Document{}, err
	}
	return l.finish(doc)
}

// finish makes every text valid UTF-8 without NUL or control characters,
// drops empty blocks, and refuses documents without text or with more text
// than the limits allow.
func (l Limits) finish(doc knowledge.Document) (knowledge.Document, error) {
	doc.Title = strings.TrimSpace(clean(doc.Title))
	kept := doc.Blocks[:0]
	chars := 0
	for _, b := range doc.Blocks {
		b.Text = strings.TrimSpace(clean(b.Text))
		if b.Text != "" {
			chars += utf8.RuneCountInString(b.Text)
			kept = append(kept, b)
		}
	}
	doc.Blocks = kept
	if chars > l.MaxChars {
		return doc, tooManyChars(l.MaxChars)
	}
	words := 0
	for _, b := range doc.Blocks {
		words += len(strings.Fields(b.Text))
	}
	if words == 0 {
		return doc, fmt.Errorf("%w: nothing readable was found in the file", ErrNoText)
	}
	if doc.Title == "" {
		for _, b := range doc.Blocks {
			if b.Kind == knowledge.Heading {
				doc.Title = b.Text
				break
			}
		}
	}
	return doc, nil
}

// toUTF8 returns text as valid UTF-8, reading invalid input as Latin-1 (the
// usual culprit: a file saved by an old Windows editor).
func toUTF8(data []byte) string {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if utf8.Valid(data) {
		return string(data)
	}
	var b strings.Builder
	b.Grow(len(data))
	for _, c := range data {
		b.WriteRune(rune(c))
	}
	return b.String()
}
