package knowledge

import (
	"strings"
	"unicode"
)

// stopwords holds frequent function words per language: enough to tell the
// languages PostgreSQL ships full-text configurations for apart on a few
// sentences, without a model.
var stopwords = map[string][]string{
	"en": strings.Fields("the and of to a in is are that for it i my me am on with as you your be this by or not at from we can have an will if our was all do does how what which when there their has more"),
	"de": strings.Fields("der die das und ist nicht sie ich mein meine mich mir ein eine es zu den dem mit auf für von sich des im auch wird werden wir ihr ihre oder bei nach wie kann können sind haben hat einen wenn nur noch über aus zum zur"),
	"fr": strings.Fields("le la les et est une des du de mon ma mes je en que qui pour dans pas sur au avec vous nous ce cette sont par plus mais ou être avez votre"),
	"es": strings.Fields("el la los las y es un una de que en por para con no se del al lo como más pero sus está son usted puede su"),
	"it": strings.Fields("il lo la gli le e è un una di che per con non si del della sono come più ma anche questo essere può"),
	"nl": strings.Fields("de het een en is van dat niet op te zijn met voor je u wij ook maar bij als er dit aan kan worden heeft"),
}

var stopwordIndex = func() map[string][]string {
	idx := map[string][]string{}
	for lang, words := range stopwords {
		for _, w := range words {
			idx[w] = append(idx[w], lang)
		}
	}
	return idx
}()

// DetectLanguage guesses the language of text from its stopwords: "en", "de",
// "fr", "es", "it", "nl", or "" when the text is too short or unclear. It
// reads at most the first few thousand words.
func DetectLanguage(text string) string {
	counts := map[string]int{}
	n := 0
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) }) {
		if n++; n > 5000 {
			break
		}
		for _, lang := range stopwordIndex[w] {
			counts[lang]++
		}
	}
	best, top, second := "", 0, 0
	for _, lang := range []string{"en", "de", "fr", "es", "it", "nl"} {
		switch c := counts[lang]; {
		case c > top:
			best, top, second = lang, c, top
		case c > second:
			second = c
		}
	}
	if top < 2 || float64(top) < 1.3*float64(second) {
		return ""
	}
	return best
}

// TextSearchConfig names the PostgreSQL full-text configuration for a
// language from DetectLanguage: stemming and stopwords of that language, or
// "simple" (no stemming) when the language is unknown.
func TextSearchConfig(lang string) string {
	switch lang {
	case "en":
		return "english"
	case "de":
		return "german"
	case "fr":
		return "french"
	case "es":
		return "spanish"
	case "it":
		return "italian"
	case "nl":
		return "dutch"
	}
	return "simple"
}

// ContentWords drops the stopwords of every known language from a query, so
// that similarity on trigrams compares what the question is about, not "how
// do I" and "wie kann ich".
func ContentWords(q string) string {
	var out []string
	for _, w := range strings.FieldsFunc(q, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '-' }) {
		if _, stop := stopwordIndex[strings.ToLower(w)]; stop || len([]rune(w)) < 2 {
			continue
		}
		out = append(out, w)
	}
	return strings.Join(out, " ")
}
