package message_test

import (
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/companin/companin/domain"
	"github.com/companin/companin/domain/message"
)

// FuzzParseContent: content is trimmed, valid UTF-8, not empty and bounded,
// or a field error; never a panic.
func FuzzParseContent(f *testing.F) {
	for _, s := range []string{"Hello, I need help with my order", "", "  \t\n", "\xff", "Ich brauche Hilfe 🙂"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := message.ParseContent(s)
		if err != nil {
			var ie *domain.InvalidError
			if !errors.As(err, &ie) || ie.Field != "content" {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		if c.String() == "" || !utf8.ValidString(c.String()) || utf8.RuneCountInString(c.String()) > message.MaxContent {
			t.Fatalf("%q parsed to %q", s, c.String())
		}
	})
}
