package answer

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Text analysis for the embedded engine: the same small analyzer runs on the
// question and the passages, so a match means the same stem on both sides.
// It is deliberately simple (lowercase, umlaut folding, suffix stripping for
// English and German, stop words of both): retrieval has done the heavy
// lifting, the engine only has to pick the sentences that answer.

var umlauts = strings.NewReplacer("ä", "a", "ö", "o", "ü", "u", "ß", "ss", "é", "e", "è", "e", "à", "a")

// words splits s into lowercase words of letters and digits.
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// stem reduces a lowercase word to a crude stem shared by its inflections
// ("hours"/"hour", "Bestellungen"/"Bestellung", "setzen"/"setze").
func stem(w string) string {
	w = umlauts.Replace(w)
	if utf8.RuneCountInString(w) < 4 {
		return w
	}
	rules := []struct{ suffix, repl string }{
		{"ungen", "ung"}, {"ies", "y"}, {"ing", ""}, {"ed", ""}, {"es", ""}, {"en", ""},
		{"er", ""}, {"em", ""}, {"ly", ""}, {"e", ""}, {"s", ""},
	}
	for _, r := range rules {
		if strings.HasSuffix(w, r.suffix) && len(w)-len(r.suffix)+len(r.repl) >= 3 {
			if r.suffix == "s" && strings.HasSuffix(w, "ss") {
				return w
			}
			w = w[:len(w)-len(r.suffix)] + r.repl
			if (r.suffix == "ing" || r.suffix == "ed") && len(w) >= 4 && w[len(w)-1] == w[len(w)-2] && !strings.ContainsRune("aeiouls", rune(w[len(w)-1])) {
				w = w[:len(w)-1] // shipped -> ship
			}
			return w
		}
	}
	return w
}

// terms returns the distinct content stems of s, in order of appearance.
func terms(s string) []string {
	var out []string
	seen := map[string]bool{}
	for _, w := range words(s) {
		if stopwords[umlauts.Replace(w)] || (utf8.RuneCountInString(w) < 2 && !unicode.IsDigit([]rune(w)[0])) {
			continue
		}
		t := stem(w)
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

// termSet is the stems of a text, for coverage checks.
type termSet map[string]bool

func newTermSet(s string) termSet {
	ts := termSet{}
	for _, t := range terms(s) {
		ts[t] = true
	}
	return ts
}

// has tells whether the set holds t, or a word that t starts or that starts
// t when both are long enough, or a compound ending in t: German compounds
// ("Passwort" in "Passwortänderung") and English derivations ("deliver",
// "delivery").
func (ts termSet) has(t string) bool {
	if ts[t] {
		return true
	}
	if len(t) < 4 {
		return false
	}
	for u := range ts {
		if len(u) >= 5 && len(t) >= 5 && (strings.HasPrefix(u, t) || strings.HasPrefix(t, u)) {
			return true
		}
		// The head of a German compound is its last word: "setz" in "zurucksetz".
		if len(u) > len(t)+2 && strings.HasSuffix(u, t) {
			return true
		}
	}
	return false
}

// coverage is the share of the question's terms found in ts, weighting
// longer (rarer, more specific) terms a little more.
func coverage(q []string, ts termSet) float64 {
	if len(q) == 0 {
		return 0
	}
	var got, all float64
	for _, t := range q {
		w := termWeight(t)
		all += w
		if ts.has(t) {
			got += w
		}
	}
	return got / all
}

func termWeight(t string) float64 {
	if softTerms[t] {
		return 0.4
	}
	n := utf8.RuneCountInString(t)
	switch {
	case n >= 7:
		return 1.5
	case n >= 4:
		return 1.2
	default:
		return 1
	}
}

// sentence is one sentence or list item of a passage, with the heading it
// stands under, which tells what it is about.
type sentenceOf struct {
	text    string
	heading string
}

// sentences splits a passage into sentences and list items, dropping
// markdown decoration and headings (a short line without end punctuation
// followed by more text), which go into the context of the sentences after
// them. Line breaks end a sentence: passages keep the line structure of
// their document, where a line is a heading, item or paragraph.
func sentences(text string) []sentenceOf {
	var out []sentenceOf
	heading := ""
	lines := logicalLines(text)
	for li, line := range lines {
		trimmed := strings.TrimSpace(line)
		isHeading := strings.HasPrefix(trimmed, "#")
		isItem := strings.HasPrefix(trimmed, "-") || strings.HasPrefix(trimmed, "*") || strings.HasPrefix(trimmed, "•")
		line = strings.TrimSpace(strings.TrimLeft(strings.TrimSpace(line), "#*->•|"))
		if line == "" {
			continue
		}
		if !isItem && (isHeading || len(strings.Fields(line)) <= 8 && !strings.ContainsAny(line[len(line)-1:], ".!?:;,")) && li < len(lines)-1 {
			heading = line
			continue
		}
		start := 0
		rs := []rune(line)
		for i := 0; i < len(rs); i++ {
			if rs[i] != '.' && rs[i] != '!' && rs[i] != '?' {
				continue
			}
			// End of sentence: punctuation followed by space and an upper-case
			// letter or digit (not "e.g. this", not "3.5", not "z. B.").
			j := i + 1
			for j < len(rs) && (rs[j] == '"' || rs[j] == '\'' || rs[j] == ')' || rs[j] == '“' || rs[j] == '”') {
				j++
			}
			if j >= len(rs) || rs[j] != ' ' {
				continue
			}
			k := j
			for k < len(rs) && rs[k] == ' ' {
				k++
			}
			if k < len(rs) && (unicode.IsUpper(rs[k]) || rs[k] == '"' || rs[k] == '„') && !abbreviation(rs[start:i+1]) {
				out = append(out, sentenceOf{strings.TrimSpace(string(rs[start:j])), heading})
				start = k
				i = k - 1
			}
		}
		if s := strings.TrimSpace(string(rs[start:])); s != "" {
			out = append(out, sentenceOf{s, heading})
		}
	}
	return out
}

// logicalLines undoes the line wrapping of PDFs and plain text: a line
// that does not end a sentence continues on the next one, unless it is
// short (a heading) or the next line starts a list item or heading.
func logicalLines(text string) []string {
	raw := strings.Split(text, "\n")
	var out []string
	for i := 0; i < len(raw); i++ {
		line := strings.TrimSpace(raw[i])
		for i+1 < len(raw) && continues(line, strings.TrimSpace(raw[i+1])) {
			i++
			line += " " + strings.TrimSpace(raw[i])
		}
		out = append(out, line)
	}
	return out
}

func continues(line, next string) bool {
	if line == "" || next == "" || strings.HasPrefix(line, "#") {
		return false
	}
	if strings.ContainsAny(line[len(line)-1:], ".!?:;") || strings.ContainsAny(next[:1], "#*-•|") {
		return false
	}
	r, _ := utf8.DecodeRuneInString(next)
	return len(strings.Fields(line)) > 8 || unicode.IsLower(r)
}

// abbreviation tells whether the text ends with a short abbreviation like
// "z. B." or "Dr." rather than a sentence.
func abbreviation(rs []rune) bool {
	s := strings.ToLower(string(rs))
	for _, a := range []string{" dr.", " mr.", " mrs.", " ms.", " z.", " b.", " bzw.", " ca.", " vgl.", " inkl.", " ggf.", " usw.", " etc.", " st.", " nr.", " e.g.", " i.e.", " vs."} {
		if strings.HasSuffix(" "+s, a) {
			return true
		}
	}
	return false
}

// detectLanguage guesses "de" or "en" from function words; "" when unsure.
func detectLanguage(s string) string {
	var de, en int
	for _, w := range words(s) {
		if germanWords[w] {
			de++
		}
		if englishWords[w] {
			en++
		}
	}
	switch {
	case de > en:
		return "de"
	case en > de:
		return "en"
	default:
		if strings.ContainsAny(s, "äöüßÄÖÜ") {
			return "de"
		}
		return ""
	}
}

func set(ws ...string) map[string]bool {
	m := map[string]bool{}
	for _, w := range ws {
		m[w] = true
	}
	return m
}

var englishWords = set("the", "a", "an", "is", "are", "was", "what", "how", "when", "where", "why", "who",
	"do", "does", "can", "could", "i", "you", "my", "your", "we", "our", "to", "of", "and", "or", "in", "on",
	"for", "with", "it", "this", "that", "please", "hello", "hi", "need", "help", "which", "have", "there")

var germanWords = set("der", "die", "das", "ist", "sind", "was", "wie", "wann", "wo", "warum", "wer", "ich",
	"du", "sie", "wir", "mein", "meine", "meiner", "meinen", "dein", "ihr", "ihre", "unser", "und", "oder",
	"mit", "für", "bei", "zu", "zum", "zur", "von", "ein", "eine", "einen", "nicht", "bitte", "hallo", "brauche",
	"hilfe", "kann", "können", "welche", "welchen", "welcher", "gibt", "es", "habe", "auf", "empfiehlst")

// stopwords are left out of matching: function words, question words and
// the phrases people wrap a question in ("I need help with", "können Sie").
// Keys are umlaut-folded.
var stopwords = set(
	// English
	"a", "an", "the", "is", "are", "am", "was", "were", "be", "been", "being", "do", "does", "did", "done",
	"have", "has", "had", "i", "me", "my", "mine", "you", "your", "yours", "we", "us", "our", "ours", "he",
	"she", "it", "its", "they", "them", "their", "this", "that", "these", "those", "there", "here", "what",
	"which", "who", "whom", "whose", "when", "where", "why", "how", "can", "could", "would", "should", "will",
	"shall", "may", "might", "must", "to", "of", "in", "on", "at", "by", "for", "with", "about", "from", "into",
	"as", "and", "or", "but", "if", "then", "so", "not", "no", "yes", "any", "some", "all", "please", "help",
	"need", "want", "like", "know", "tell", "get", "hello", "hi", "hey", "thanks", "thank", "just", "also",
	"too", "very", "much", "many", "more", "most", "up", "out", "over", "again", "let", "lets", "im", "dont",
	"cant", "id", "ive", "youre", "s", "t", "question", "anyone", "someone", "something", "kind", "regards",
	"good", "morning", "evening", "afternoon", "ok", "okay", "find", "give", "show", "explain", "via",
	// German (umlauts folded)
	"der", "die", "das", "den", "dem", "des", "ein", "eine", "einer", "eines", "einem", "einen", "ist", "sind",
	"war", "waren", "bin", "bist", "sein", "seid", "wird", "werden", "wurde", "hat", "haben", "habe", "hast",
	"ich", "mich", "mir", "mein", "meine", "meiner", "meinen", "meinem", "meines", "du", "dich", "dir", "dein",
	"deine", "deinen", "deinem", "deiner", "sie", "ihnen", "ihr", "ihre", "ihren", "ihrem", "ihrer", "wir",
	"uns", "unser", "unsere", "unseren", "unserem", "unserer", "er", "es", "man", "was", "wer", "wie", "wo",
	"wann", "warum", "wieso", "weshalb", "welche", "welcher", "welches", "welchen", "welchem", "kann", "kannst",
	"konnen", "konnte", "konnten", "soll", "sollte", "muss", "mussen", "will", "mochte", "mochten", "darf",
	"zu", "zum", "zur", "von", "vom", "in", "im", "an", "am", "auf", "aus", "bei", "mit", "nach", "fur", "uber",
	"unter", "um", "und", "oder", "aber", "wenn", "dann", "dass", "ob", "nicht", "kein", "keine", "ja", "nein",
	"bitte", "danke", "hilfe", "helfen", "brauche", "brauchen", "hallo", "moin", "servus", "guten", "tag",
	"gibt", "geht", "gern", "gerne", "mal", "noch", "auch", "schon", "so", "sehr", "viel", "frage", "etwas",
	"jemand", "sagen", "sag", "erklaren", "finde", "finden", "zuruck", "denn", "doch", "eigentlich", "hier", "da",
)

// greetings mark a message that only says hello.
var greetings = set("hello", "hi", "hey", "hallo", "moin", "servus", "guten", "morgen", "abend", "tag",
	"good", "morning", "evening", "afternoon", "greetings", "gruss", "gruezi", "howdy")

// softTerms frame a question more than they name its subject ("how long
// does it take", "was kostet"): they count, but little. Keys are stems.
var softTerms = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range []string{"long", "take", "takes", "cost", "costs", "price", "time", "possible", "work",
		"works", "way", "use", "using", "make", "change", "lange", "dauert", "dauer", "dauern", "kostet", "kosten",
		"preis", "moglich", "funktioniert", "funktionieren", "machen", "mache", "tun", "gehen", "andern",
		"recommend", "recommendation", "suggest", "best", "empfiehlst", "empfiehlt", "empfehlen", "empfehlung", "beste", "besten"} {
		m[stem(w)] = true
	}
	return m
}()
