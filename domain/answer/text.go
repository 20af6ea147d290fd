package answer

import (
	"regexp"
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
	if base, ok := irregular[w]; ok {
		w = base
	}
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
		if len(u) > len(t)+2 && strings.HasSuffix(u, t) || strings.HasSuffix(u, t) && separable[u[:len(u)-len(t)]] {
			return true
		}
	}
	return false
}

// separable are German verb prefixes that split off ("zeige ... an" for
// "anzeigen").
var separable = set("an", "ab", "auf", "aus", "ein", "zu", "vor", "mit", "nach", "her", "hin", "um", "weg", "durch")

// covering is what coverage looks terms up in: one text's terms or several.
type covering interface{ covers(t string) bool }

// termSets are the terms of several texts read together (a heading and its
// sentence), without joining and analysing them again.
type termSets []termSet

func (tss termSets) covers(t string) bool {
	for _, ts := range tss {
		if ts.covers(t) {
			return true
		}
	}
	return false
}

// coverage is the share of the question's terms found in ts, weighting
// longer (rarer, more specific) terms a little more.
func coverage(q []string, ts covering) float64 {
	if len(q) == 0 {
		return 0
	}
	var got, all float64
	for _, t := range q {
		w := termWeight(t)
		all += w
		if ts.covers(t) {
			got += w
		}
	}
	return got / all
}

// covers is has, also through the glossary's word in the other language:
// a question in English finds a German answer's words and back.
func (ts termSet) covers(t string) bool {
	if ts.has(t) {
		return true
	}
	for _, u := range glossary[t] {
		if ts.has(u) {
			return true
		}
	}
	return false
}

// irregular maps inflections the suffix rules miss to their base form.
var irregular = map[string]string{
	"wrote": "write", "written": "write", "made": "make", "built": "build", "began": "begin", "begun": "begin",
	"ran": "run", "sent": "send", "bought": "buy", "paid": "pay", "forgot": "forget", "forgotten": "forget",
	"chose": "choose", "chosen": "choose", "gave": "give", "given": "give", "took": "take", "taken": "take",
}

// glossaryPairs are the words of customer support in English and German
// (as stems), so that a question in one language finds a Q&A pair, its tags
// or a passage written in the other. Small on purpose: the words people use
// for accounts, orders and settings, not a dictionary.
var glossaryPairs = [][2]string{
	{"password", "passwort"}, {"password", "kennwort"}, {"reset", "zurucksetz"}, {"reset", "setz"},
	{"account", "konto"}, {"account", "benutzerkonto"}, {"setting", "einstellung"}, {"invoice", "rechnung"},
	{"bill", "rechnung"}, {"billing", "abrechnung"}, {"order", "bestellung"}, {"delivery", "lieferung"},
	{"shipping", "versand"}, {"return", "rucksendung"}, {"refund", "erstattung"}, {"payment", "zahlung"},
	{"pay", "bezahl"}, {"price", "preis"}, {"delete", "losch"}, {"cancel", "kundig"}, {"cancel", "storn"},
	{"subscription", "abonnement"}, {"subscription", "abo"}, {"login", "anmeld"}, {"sign", "anmeld"},
	{"email", "mail"}, {"address", "adress"}, {"security", "sicherheit"}, {"enable", "aktivier"},
	{"enable", "schalt"}, {"disable", "deaktivier"}, {"two", "zwei"}, {"factor", "faktor"},
	{"authentication", "authentifizier"}, {"download", "herunterlad"}, {"upload", "hochlad"},
	{"support", "kundendienst"}, {"contact", "kontakt"}, {"opening", "offnungszeit"}, {"hour", "offnungszeit"},
	{"warranty", "garantie"}, {"install", "installier"}, {"update", "aktualisier"}, {"remove", "entfern"},
	{"package", "paket"}, {"file", "datei"}, {"command", "befehl"}, {"user", "benutzer"}, {"change", "ander"},
}

var glossary = func() map[string][]string {
	m := map[string][]string{}
	for _, p := range glossaryPairs {
		a, b := stem(p[0]), stem(p[1])
		m[a] = append(m[a], b)
		m[b] = append(m[b], a)
	}
	return m
}()

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

// sentenceOf is one sentence, list item or code snippet of a passage,
// with the heading it stands under, which tells what it is about. A code
// snippet (a command, a line or block of code) rarely repeats the question's
// words: the prose sentence that leads into it ("Push it to Heroku:") says
// what it does, so lead carries that sentence.
type sentenceOf struct {
	text    string
	heading string
	code    bool
	lead    string
	block   string // the whole code block a window of it belongs to
	para    int    // sentences of one paragraph share it
}

// sentences splits a passage into sentences, list items and code snippets,
// dropping markdown decoration and headings (a short line without end
// punctuation followed by more text), which go into the context of the
// sentences after them. Line breaks end a sentence: passages keep the line
// structure of their document, where a line is a heading, item, paragraph
// or line of code.
func sentences(text string) []sentenceOf {
	var out []sentenceOf
	heading, lastProse, para := "", "", 0
	var prose []string
	var code []string
	flushCode := func() {
		// A long block is quoted by the few lines that matter: each window
		// of it is weighed on its own.
		block := strings.Join(code, "\n")
		for len(code) > 0 {
			n := len(code)
			if n > maxCodeLines {
				n = codeWindow
			}
			out = append(out, sentenceOf{text: strings.Join(code[:n], "\n"), heading: heading, code: true, lead: lastProse, block: block})
			code = code[n:]
		}
	}
	flushProse := func(beforeCode bool) {
		lines := logicalLines(strings.Join(prose, "\n"))
		prose = nil
		for li, line := range lines {
			trimmed := strings.TrimSpace(line)
			isHeading := strings.HasPrefix(trimmed, "#")
			isItem := strings.HasPrefix(trimmed, "-") || strings.HasPrefix(trimmed, "*") || strings.HasPrefix(trimmed, "•")
			line = strings.TrimSpace(strings.TrimLeft(trimmed, "#*->•|"))
			if line == "" {
				continue
			}
			last := li == len(lines)-1
			if !isItem && (isHeading || len(strings.Fields(line)) <= 8 && !strings.ContainsAny(line[len(line)-1:], ".!?:;,")) && (!last || beforeCode) {
				heading, lastProse = line, ""
				continue
			}
			para++
			for _, s := range splitSentences(line) {
				out = append(out, sentenceOf{text: s, heading: heading, para: para})
				lastProse = s
			}
		}
	}
	raw := strings.Split(text, "\n")
	lines := make([]string, len(raw))
	looksCode := make([]bool, len(raw)) // by the line alone
	for i := range raw {
		lines[i] = strings.TrimSpace(raw[i])
		looksCode[i] = lines[i] != "" && codeLike(lines[i])
	}
	for i, line := range lines {
		if line == "" {
			// A blank line inside a code block (PDF text has them between
			// lines) does not end it: prose after it does.
			continue
		}
		isCode := looksCode[i]
		// A lower-case line after one that did not end its sentence continues it.
		if isCode && i > 0 && lines[i-1] != "" && !looksCode[i-1] && !codePunct.MatchString(line) {
			p, _ := utf8.DecodeLastRuneInString(lines[i-1])
			isCode = strings.ContainsRune(".!?:;", p)
		}
		// A lower-case line before one that goes on in lower case is prose wrapped by the document.
		if isCode && i+1 < len(lines) && lines[i+1] != "" && !looksCode[i+1] && !codePunct.MatchString(line) {
			r, _ := utf8.DecodeRuneInString(lines[i+1])
			isCode = !unicode.IsLower(r) && !unicode.IsDigit(r)
		}
		if isCode {
			if len(prose) > 0 {
				flushProse(true)
			}
			code = append(code, line)
		} else {
			flushCode()
			prose = append(prose, line)
		}
	}
	flushCode()
	if len(prose) > 0 {
		flushProse(false)
	}
	return out
}

// codeWindow is how many lines of a long code block are weighed and quoted
// together.
const codeWindow = 4

// splitSentences cuts a line at sentence ends: punctuation followed by space
// and an upper-case letter or digit (not "e.g. this", not "3.5", not "z. B.").
func splitSentences(line string) []string {
	var out []string
	start := 0
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		if rs[i] != '.' && rs[i] != '!' && rs[i] != '?' {
			continue
		}
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
			out = append(out, strings.TrimSpace(string(rs[start:j])))
			start = k
			i = k - 1
		}
	}
	if s := strings.TrimSpace(string(rs[start:])); s != "" {
		out = append(out, s)
	}
	return out
}

// codeLike tells whether a line, by itself, is a command or a line of code
// rather than prose or a heading: it has code punctuation ("{", ":=",
// "f(x)"), or it is short, ends without punctuation and starts like a
// command (lower case, "./", "$ "). sentences also looks at its neighbours.
func codeLike(line string) bool {
	if strings.HasPrefix(line, "$ ") || strings.HasPrefix(line, "./") || strings.HasPrefix(line, "```") {
		return true
	}
	if strings.HasPrefix(line, "#") || strings.HasPrefix(line, "- ") || strings.HasPrefix(line, "* ") || strings.HasPrefix(line, "•") {
		return false
	}
	fields := strings.Fields(line)
	end, _ := utf8.DecodeLastRuneInString(line)
	// A long line that ends a sentence is prose, even when it names a call.
	if len(fields) > 8 && strings.ContainsRune(".!?", end) {
		return false
	}
	if !strings.Contains(line, ". ") && codePunct.MatchString(line) {
		return true
	}
	first, _ := utf8.DecodeRuneInString(line)
	// Closing brackets, comments, markup and quoted strings open no prose.
	if strings.ContainsRune("}])<\"'/`", first) && !strings.ContainsRune(".!?", end) && len(fields) <= 12 {
		return true
	}
	if len(fields) > 7 || strings.ContainsRune(".!?,;", end) || !unicode.IsLower(first) || definition.MatchString(line) {
		return false
	}
	return true
}

var definition = regexp.MustCompile(`\p{L}\s?: \p{Lu}`)

var codePunct = regexp.MustCompile("`\\w" + `|[{}]|:=|==|=>|;$|\w\.\w+\(|^\w[\w.-]*\(|^[a-z][\w.-]* .*\s--?[a-zA-Z]`)

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
	// A heading does not end in a function word: "more than" / "59100
	// packages" is one sentence wrapped by the document.
	fields := strings.Fields(line)
	last := umlauts.Replace(strings.ToLower(fields[len(fields)-1]))
	return len(fields) > 8 || unicode.IsLower(r) || unicode.IsDigit(r) || stopwords[last] && len(fields) > 1
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

// questionKind is what kind of answer a question asks for, so the engine
// can prefer the sentence or code line of that kind among those on topic.
type questionKind int

const (
	askFact       questionKind = iota
	askCommand                 // "what command", "how do I install", "welcher Befehl"
	askProcedure               // "how do I ...", "wie kann ich ...": often a command in manuals
	askIdentifier              // "which function/method/package/file/variable"
	askNumber                  // "how many", "which year", "wie viele", "wann"
	askName                    // "who", "wer"
)

func kindOf(question string) questionKind {
	ws := words(question)
	has := func(xs ...string) bool {
		for _, w := range ws {
			for _, x := range xs {
				if w == x || len(x) > 4 && strings.HasPrefix(w, x) {
					return true
				}
			}
		}
		return false
	}
	first := ""
	if len(ws) > 0 {
		first = ws[0]
	}
	switch {
	case has("command", "commands", "befehl", "kommando", "aufruf", "eingeb", "terminal", "console", "konsole", "shell"):
		return askCommand
	case has("function", "method", "methode", "funktion", "variable", "identifier", "interface", "package", "paket",
		"library", "bibliothek", "file", "datei", "directory", "verzeichnis", "field", "parameter", "option", "flag", "type", "class", "klasse", "struct", "import"):
		return askIdentifier
	case first == "how" && has("many", "much", "often", "long", "old", "big") || has("wie") && has("viele", "viel", "oft", "lange", "alt", "gross") ||
		has("year", "jahr", "port", "number", "nummer", "zahl", "percent", "prozent", "version", "when", "wann", "seit"):
		return askNumber
	case first == "who" || first == "wer" || has("whom", "wem", "wen", "author", "autor"):
		return askName
	case first == "how" || first == "wie" || has("install", "installier", "run", "execut", "ausfuhr", "ausführ", "deploy", "start", "build"):
		return askProcedure
	}
	return askFact
}

var (
	numberToken = regexp.MustCompile(`\b\d[\d.,:]*\b`)
	identToken  = regexp.MustCompile(`[\w-]+[./_][\w./-]+|\w+\(|[a-z]+[A-Z]\w*|\s--?[a-z][\w-]*`)
	nameToken   = regexp.MustCompile(`\p{Lu}\p{Ll}+ \p{Lu}\p{Ll}+`)
)

// kindBonus is how much a sentence's form fits the kind of answer asked
// for: a number next to a word of the question for "how many", a code
// snippet for "which command", a person's name for "who".
func kindBonus(k questionKind, q []string, s sentenceOf) float64 {
	switch k {
	case askCommand:
		if s.code {
			return 0.25
		}
		if identToken.MatchString(s.text) {
			return 0.08
		}
	case askProcedure:
		if s.code {
			return 0.12
		}
	case askIdentifier:
		if s.code {
			return 0.15
		}
		// An identifier named next to a word of the question ("the
		// 'html/template' package") is what "which package" asks for.
		ws := strings.Fields(s.text)
		best := 0.0
		for i, w := range ws {
			if !identToken.MatchString(" " + w) {
				continue
			}
			best = max(best, 0.08)
			for j := max(0, i-1); j <= min(len(ws)-1, i+1); j++ {
				if j != i && newTermSet(ws[j]).hasAnyOf(q) {
					best = 0.15
				}
			}
		}
		return best
	case askNumber:
		if s.code {
			return 0
		}
		ws := strings.Fields(s.text)
		best := 0.0
		for i, w := range ws {
			if !numberToken.MatchString(w) {
				continue
			}
			best = max(best, 0.06)
			for j := max(0, i-2); j <= min(len(ws)-1, i+2); j++ {
				if j != i && newTermSet(ws[j]).hasAnyOf(q) {
					best = 0.2
				}
			}
		}
		return best
	case askName:
		if nameToken.MatchString(s.text) {
			return 0.12
		}
	}
	if s.code && k == askFact {
		return -0.05
	}
	return 0
}

func (ts termSet) hasAnyOf(q []string) bool {
	for _, t := range q {
		if ts.has(t) {
			return true
		}
	}
	return false
}
