package knowledge

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func words(n int, w string) string {
	return strings.TrimSpace(strings.Repeat(w+" ", n))
}

func TestSplitKeepsStructure(t *testing.T) {
	table := "Plan | Price\n" + strings.TrimSpace(strings.Repeat("Basic monthly plan with support | 10 €\n", 60))
	doc := Document{Blocks: []Block{
		{Kind: Heading, Level: 1, Text: "Manual", Page: 1},
		{Kind: Heading, Level: 2, Text: "Setup", Page: 1},
		{Kind: Paragraph, Text: words(150, "alpha") + ".", Page: 1},
		{Kind: ListItem, Text: "- " + words(40, "one"), Page: 1},
		{Kind: ListItem, Text: "- " + words(40, "two"), Page: 2},
		{Kind: ListItem, Text: "- " + words(40, "three"), Page: 2},
		{Kind: Heading, Level: 2, Text: "Prices", Page: 2},
		{Kind: Table, Text: table, Page: 2},
		{Kind: Heading, Level: 3, Text: "Discounts", Page: 3},
		{Kind: Paragraph, Text: "Students get ten percent off.", Page: 3},
	}}
	text, chunks := Split(doc)
	for i, c := range chunks {
		if c.Index != i || c.Start < 0 || c.End > len(text) || c.Start >= c.End {
			t.Fatalf("chunk %d has bad offsets: %+v", i, c)
		}
	}
	if len(chunks) != 3 {
		for _, c := range chunks {
			t.Logf("%v p%d %q", c.TitlePath, c.Page, text[c.Start:c.End])
		}
		t.Fatalf("got %d chunks, want 3 (setup with its whole list, the table, discounts)", len(chunks))
	}
	setup := text[chunks[0].Start:chunks[0].End]
	if !strings.HasPrefix(setup, "Manual\n\nSetup") || !strings.Contains(setup, "three") {
		t.Errorf("setup chunk does not hold heading and whole list: %q", setup)
	}
	if got := fmt.Sprint(chunks[0].TitlePath); got != "[Manual Setup]" || chunks[0].Page != 1 {
		t.Errorf("setup path %s page %d", got, chunks[0].Page)
	}
	prices := text[chunks[1].Start:chunks[1].End]
	if !strings.Contains(prices, table) {
		t.Errorf("table was cut")
	}
	if got := fmt.Sprint(chunks[2].TitlePath); got != "[Manual Prices Discounts]" || chunks[2].Page != 3 {
		t.Errorf("discount path %s page %d", got, chunks[2].Page)
	}
}

func TestSplitLongProseOverlaps(t *testing.T) {
	var sentences []string
	for i := range 80 {
		sentences = append(sentences, fmt.Sprintf("Sentence number %d talks about the product in some detail.", i))
	}
	var blocks []Block
	for i := 0; i < len(sentences); i += 8 {
		blocks = append(blocks, Block{Kind: Paragraph, Text: strings.Join(sentences[i:i+8], " ")})
	}
	text, chunks := Split(Document{Blocks: blocks})
	if len(chunks) < 3 {
		t.Fatalf("%d chunks for %d words", len(chunks), len(strings.Fields(text)))
	}
	for i, c := range chunks {
		n := len(strings.Fields(text[c.Start:c.End]))
		if n > MaxWords {
			t.Errorf("chunk %d has %d words", i, n)
		}
		if i > 0 && c.Start >= chunks[i-1].End {
			t.Errorf("chunk %d does not overlap the one before", i)
		}
		if i > 0 && chunks[i-1].End-c.Start > 400 {
			t.Errorf("chunk %d overlaps by %d bytes, more than a sentence", i, chunks[i-1].End-c.Start)
		}
	}
	if chunks[len(chunks)-1].End != len(text) {
		t.Error("the end of the text is in no chunk")
	}
}

func TestSplitCutsAnOverlongParagraphBetweenSentences(t *testing.T) {
	para := strings.Repeat("Das Gerät muss vor der Reinigung vom Strom getrennt werden. ", 100)
	text, chunks := Split(Document{Blocks: []Block{{Kind: Paragraph, Text: para}}})
	if len(chunks) < 2 {
		t.Fatalf("%d chunks", len(chunks))
	}
	for _, c := range chunks {
		s := text[c.Start:c.End]
		if !strings.HasPrefix(s, "Das") || !strings.HasSuffix(s, "werden.") {
			t.Errorf("chunk not cut at sentence boundaries: %q ... %q", s[:20], s[len(s)-20:])
		}
	}
}

func TestDetectLanguage(t *testing.T) {
	for text, want := range map[string]string{
		"What are your business hours?":                                  "en",
		"Wie setze ich mein Passwort zurück? Gehe zu den Einstellungen.": "de",
		"Comment puis-je changer mon mot de passe pour le compte?":       "fr",
		"X200 802.11ax": "",
	} {
		if got := DetectLanguage(text); got != want {
			t.Errorf("DetectLanguage(%q) = %q, want %q", text, got, want)
		}
	}
	if TextSearchConfig("de") != "german" || TextSearchConfig("") != "simple" {
		t.Error("text search configs")
	}
	if got := ContentWords("How do I reset my password?"); got != "reset password" {
		t.Errorf("ContentWords = %q", got)
	}
}

// A long paragraph whose lines end in multi-byte characters ("…", "”")
// is cut between sentences, never inside a character: the chunk texts are
// valid UTF-8 (WaldenFull.pdf once stopped the knowledge projection so).
func TestSplitCutsOnCharacterBoundaries(t *testing.T) {
	var b strings.Builder
	for i := range 120 {
		fmt.Fprintf(&b, "„Er sagte %d Wörter über Äpfel und Öl…”\n", i)
		fmt.Fprintf(&b, "Then “quoted %d” and went on…\n", i)
	}
	doc := Document{Blocks: []Block{{Kind: Paragraph, Text: b.String()}}}
	text, chunks := Split(doc)
	if len(chunks) < 2 {
		t.Fatalf("want several chunks, got %d", len(chunks))
	}
	for _, c := range chunks {
		if !utf8.ValidString(text[c.Start:c.End]) {
			t.Errorf("chunk %d [%d:%d] is not valid UTF-8: %q", c.Index, c.Start, c.End, text[max(c.End-8, c.Start):c.End])
		}
	}
}
