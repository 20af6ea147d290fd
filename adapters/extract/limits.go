package extract

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ErrTooLarge means the document is over one of the Limits; its text names
// the limit and says to split the document.
var ErrTooLarge = errors.New("document is too large")

// Limits bound the work one document may cause, so that a hostile or broken
// file fails with a reason instead of taking the process down. Every limit is
// deterministic: a document over it fails the same way each time, so the
// failure is final and never retried.
type Limits struct {
	// MaxPages bounds the pages of a PDF.
	MaxPages int
	// MaxChars bounds the extracted text, in characters.
	MaxChars int
	// MaxUnpackedMB bounds what a compressed format (DOCX) unpacks to.
	MaxUnpackedMB int
	// PDFMemoryMB caps the memory PDFium may use for one PDF (its
	// WebAssembly memory); a PDF that unpacks to more fails.
	PDFMemoryMB int
}

// DefaultLimits fit a 20 MB upload of any ordinary manual or book with room
// to spare: 2,000 pages, 4 million characters (about 700,000 words).
var DefaultLimits = Limits{MaxPages: 2000, MaxChars: 4_000_000, MaxUnpackedMB: 100, PDFMemoryMB: 384}

func (l Limits) orDefault() Limits {
	d := DefaultLimits
	if l.MaxPages > 0 {
		d.MaxPages = l.MaxPages
	}
	if l.MaxChars > 0 {
		d.MaxChars = l.MaxChars
	}
	if l.MaxUnpackedMB > 0 {
		d.MaxUnpackedMB = l.MaxUnpackedMB
	}
	if l.PDFMemoryMB > 0 {
		d.PDFMemoryMB = l.PDFMemoryMB
	}
	return d
}

func tooManyChars(max int) error {
	return fmt.Errorf("%w: the document has more than %d characters of text; split it into smaller files and upload them separately", ErrTooLarge, max)
}

// clean returns s as valid UTF-8 without NUL and other control characters
// (tabs and line breaks stay): PostgreSQL refuses both in text, and one such
// value would stop the projection that stores it.
func clean(s string) string {
	ok := utf8.ValidString(s)
	if ok {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c < 0x20 && c != '\n' && c != '\t' || c == 0x7f {
				ok = false
				break
			}
		}
	}
	if ok && !strings.ContainsFunc(s, badRune) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteRune('\uFFFD')
		case r == '\r':
			b.WriteByte('\n')
		case badRune(r):
			if unicode.IsSpace(r) {
				b.WriteByte(' ')
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// badRune tells characters that carry no text: controls other than tab and
// line feed, unpaired surrogates, non-characters.
func badRune(r rune) bool {
	if r == '\n' || r == '\t' {
		return false
	}
	return r < 0x20 || (r >= 0x7f && r < 0xa0) || (r >= 0xd800 && r < 0xe000) || r == 0xfffe || r == 0xffff
}
