package es

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The log keeps text that every reader can store: PostgreSQL refuses NUL in
// text and jsonb (22P05) and invalid UTF-8 (22021), so one such string let
// into the log would stop every projection that copies it, for every
// organization. The checks below run at the edge (the HTTP API names the
// field) and once more at every append (nothing from a worker or the command
// line gets past them either).

// TextError says where a JSON document holds text the log cannot keep.
type TextError struct {
	// Path is the JSON path of the string: "traits.x", "tags[2]"; for a
	// bad object key, the path of that key. "" is the document itself.
	Path string
	// Problem says what is wrong, for a person: "contains a NUL character".
	Problem string
}

func (e *TextError) Error() string {
	if e.Path == "" {
		return e.Problem
	}
	return e.Path + " " + e.Problem
}

// Problems CheckText and CheckJSONText report.
const (
	problemNUL       = "contains a NUL character (\\u0000), which cannot be stored"
	problemUTF8      = "is not valid UTF-8 text"
	problemSurrogate = "contains an unpaired UTF-16 surrogate escape (\\uD800-\\uDFFF), which is not text"
)

// CheckText returns what is wrong with s as text for the log ("" when
// nothing): a NUL character or invalid UTF-8.
func CheckText(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		return problemNUL
	}
	if !utf8.ValidString(s) {
		return problemUTF8
	}
	return ""
}

// CheckJSONText reports the first string of a JSON document, value or object
// key, at any depth, that holds a NUL character (raw or as \u0000), invalid
// UTF-8, or an unpaired surrogate escape; nil when there is none. data
// should be valid JSON; on anything else it stops without a panic and
// reports what it found so far.
func CheckJSONText(data []byte) *TextError {
	if utf8.Valid(data) && !suspectEscape(data) && bytes.IndexByte(data, 0) < 0 {
		return nil
	}
	w := textWalker{b: data}
	w.value(0)
	return w.err
}

// suspectEscape tells whether data holds a \u escape of NUL or a surrogate
// (possibly after an escaped backslash, which the walk tells apart).
func suspectEscape(data []byte) bool {
	for i := 0; ; {
		j := bytes.Index(data[i:], []byte(`\u`))
		if j < 0 {
			return false
		}
		i += j + 2
		if i+4 > len(data) {
			return true
		}
		if string(data[i:i+4]) == "0000" {
			return true
		}
		if c := data[i] | 0x20; c == 'd' {
			if d := data[i+1] | 0x20; d >= '8' && d <= '9' || d >= 'a' && d <= 'f' {
				return true
			}
		}
	}
}

// maxDepth bounds the walk as encoding/json bounds its decoder.
const maxDepth = 10000

type textWalker struct {
	b   []byte
	i   int
	err *TextError
	// at is where the walk is: per level, an object key (raw, quoted) or an
	// array index. The path is spelled out only for an error, so that a
	// deeply nested document costs no quadratic string building.
	at []step
}

type step struct {
	key   []byte // nil in an array
	index int
}

func (w *textWalker) path() string {
	var sb strings.Builder
	for _, s := range w.at {
		if s.key == nil {
			sb.WriteString("[" + strconv.Itoa(s.index) + "]")
			continue
		}
		if sb.Len() > 0 {
			sb.WriteByte('.')
		}
		sb.WriteString(keyText(s.key))
	}
	return sb.String()
}

func (w *textWalker) fail(problem string) bool {
	w.err = &TextError{Path: w.path(), Problem: problem}
	return false
}

func (w *textWalker) ws() {
	for w.i < len(w.b) {
		switch w.b[w.i] {
		case ' ', '\t', '\r', '\n':
			w.i++
		default:
			return
		}
	}
}

// value walks one JSON value at w.i; it returns false to stop the walk.
func (w *textWalker) value(depth int) bool {
	w.ws()
	if w.i >= len(w.b) || depth > maxDepth {
		return false
	}
	switch w.b[w.i] {
	case '{':
		w.i++
		w.at = append(w.at, step{})
		defer func() { w.at = w.at[:len(w.at)-1] }()
		for {
			w.ws()
			if w.i >= len(w.b) {
				return false
			}
			if w.b[w.i] == '}' {
				w.i++
				return true
			}
			if w.b[w.i] == ',' {
				w.i++
				continue
			}
			if w.b[w.i] != '"' {
				return false
			}
			start := w.i
			problem, ok := w.str()
			w.at[len(w.at)-1] = step{key: w.b[start:w.i]}
			if problem != "" {
				return w.fail("(a key) " + problem)
			}
			if !ok {
				return false
			}
			w.ws()
			if w.i >= len(w.b) || w.b[w.i] != ':' {
				return false
			}
			w.i++
			if !w.value(depth + 1) {
				return false
			}
		}
	case '[':
		w.i++
		w.at = append(w.at, step{})
		defer func() { w.at = w.at[:len(w.at)-1] }()
		for n := 0; ; {
			w.ws()
			if w.i >= len(w.b) {
				return false
			}
			switch w.b[w.i] {
			case ']':
				w.i++
				return true
			case ',':
				w.i++
				continue
			}
			w.at[len(w.at)-1] = step{index: n}
			if !w.value(depth + 1) {
				return false
			}
			n++
		}
	case '"':
		problem, ok := w.str()
		if problem != "" {
			return w.fail(problem)
		}
		return ok
	default:
		// number, true, false, null: no text in them.
		start := w.i
		for w.i < len(w.b) {
			switch w.b[w.i] {
			case ',', ']', '}', ' ', '\t', '\r', '\n':
				return w.i > start // no progress: not JSON, stop
			}
			w.i++
		}
		return true
	}
}

// str walks the string at w.i (its opening quote) to just after its closing
// quote, and says what is wrong with its text ("" when nothing); ok is false
// when the document ends inside it.
func (w *textWalker) str() (problem string, ok bool) {
	w.i++ // the opening quote
	for w.i < len(w.b) {
		c := w.b[w.i]
		switch {
		case c == '"':
			w.i++
			return problem, true
		case c == 0:
			if problem == "" {
				problem = problemNUL
			}
			w.i++
		case c == '\\':
			if w.i+1 >= len(w.b) {
				return problem, false
			}
			if w.b[w.i+1] != 'u' {
				w.i += 2
				continue
			}
			r, ok := hex4(w.b, w.i+2)
			if !ok {
				w.i += 2
				continue
			}
			w.i += 6
			switch {
			case r == 0:
				if problem == "" {
					problem = problemNUL
				}
			case r >= 0xDC00 && r <= 0xDFFF:
				if problem == "" {
					problem = problemSurrogate
				}
			case r >= 0xD800 && r <= 0xDBFF:
				// A high surrogate must be followed by an escaped low one.
				if w.i+1 < len(w.b) && w.b[w.i] == '\\' && w.b[w.i+1] == 'u' {
					if lo, ok := hex4(w.b, w.i+2); ok && lo >= 0xDC00 && lo <= 0xDFFF {
						w.i += 6
						continue
					}
				}
				if problem == "" {
					problem = problemSurrogate
				}
			}
		case c < utf8.RuneSelf:
			w.i++
		default:
			r, size := utf8.DecodeRune(w.b[w.i:])
			if r == utf8.RuneError && size <= 1 && problem == "" {
				problem = problemUTF8
			}
			w.i += max(size, 1)
		}
	}
	return problem, false
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(b[at:at+4]), 16, 32)
	return rune(n), err == nil
}

// keyText is how a key shows in a path: decoded, with what cannot be shown
// spelled out, and bounded.
func keyText(raw []byte) string {
	var k string
	if json.Unmarshal(raw, &k) != nil {
		k = strings.Trim(string(raw), `"`)
	}
	k = strings.ToValidUTF8(k, "\uFFFD")
	k = strings.ReplaceAll(k, "\x00", `\u0000`)
	if len(k) > 100 {
		k = strings.ToValidUTF8(k[:100], "") + "…"
	}
	return k
}

// checkText is the text check of one event about to be appended: its type,
// its data and every string of its metadata.
func (e NewEvent) checkText() error {
	if p := CheckText(e.Type); p != "" {
		return fmt.Errorf("%w: type %s", ErrInvalidText, p)
	}
	if terr := CheckJSONText(e.Data); terr != nil {
		return fmt.Errorf("%w: data of %s: %v", ErrInvalidText, e.Type, terr)
	}
	m := e.Metadata
	fields := map[string]string{"organization_id": m.OrganizationID, "actor": m.Actor, "request_id": m.RequestID,
		"correlation_id": m.CorrelationID, "causation_id": m.CausationID, "subject": m.Subject}
	for i, p := range m.Personal {
		fields["personal["+strconv.Itoa(i)+"]"] = p
	}
	for k, v := range m.Extra {
		if p := CheckText(k); p != "" {
			return fmt.Errorf("%w: metadata of %s: an extra key %s", ErrInvalidText, e.Type, p)
		}
		if p := CheckText(v); p != "" {
			return fmt.Errorf("%w: metadata of %s: extra %q %s", ErrInvalidText, e.Type, keyText([]byte(strconv.Quote(k))), p)
		}
	}
	for name, v := range fields {
		if p := CheckText(v); p != "" {
			return fmt.Errorf("%w: metadata %s of %s %s", ErrInvalidText, name, e.Type, p)
		}
	}
	return nil
}
