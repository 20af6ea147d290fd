package answer

import "fmt"

// Phrasing of the embedded engine, by language and tone. Every language
// needs every key: a missing one falls back to English.

type phrase int

const (
	phraseExtractive phrase = iota // %s: the source's title
	phraseExtractiveUntitled
	phraseUnknown
	phraseGreeting // %s: ", Name" or ""; second %s: assistant intro or ""
	phraseIntro    // %s: the assistant's name
	phrasePage     // %s: the source's title, %d: the page
)

var phrases = map[string]map[Tone]map[phrase]string{
	"en": {
		Professional: {
			phraseExtractive:         "According to our documentation (“%s”): ",
			phraseExtractiveUntitled: "According to our documentation: ",
			phraseUnknown:            "I'm sorry, I could not find this in our knowledge base, and I would rather not guess. Would you like me to connect you with a member of our team?",
			phraseGreeting:           "Hello%s!%s How can I help you today?",
			phraseIntro:              " I'm %s.",
			phrasePage:               "%s, page %d",
		},
		Friendly: {
			phraseExtractive:         "Happy to help! Here's what “%s” says: ",
			phraseExtractiveUntitled: "Happy to help! Here's what I found: ",
			phraseUnknown:            "Hmm, I don't know that one yet, and I'd rather not guess! Shall I hand you over to someone from our team who can help?",
			phraseGreeting:           "Hi%s!%s What can I do for you today?",
			phraseIntro:              " I'm %s, nice to meet you.",
			phrasePage:               "%s, page %d",
		},
		Casual: {
			phraseExtractive:         "Here's what I found in “%s”: ",
			phraseExtractiveUntitled: "Here's what I found: ",
			phraseUnknown:            "Sorry, no idea — that's not in anything I know, and I won't make stuff up. Want me to get a human on it?",
			phraseGreeting:           "Hey%s!%s What's up?",
			phraseIntro:              " %s here.",
			phrasePage:               "%s, p. %d",
		},
	},
	"de": {
		Professional: {
			phraseExtractive:         "Laut unserer Dokumentation („%s“): ",
			phraseExtractiveUntitled: "Laut unserer Dokumentation: ",
			phraseUnknown:            "Dazu habe ich in unserer Wissensdatenbank leider nichts gefunden, und ich möchte nicht raten. Soll ich Sie mit einem Mitarbeiter aus unserem Team verbinden?",
			phraseGreeting:           "Guten Tag%s!%s Wie kann ich Ihnen helfen?",
			phraseIntro:              " Ich bin %s.",
			phrasePage:               "%s, Seite %d",
		},
		Friendly: {
			phraseExtractive:         "Gern! In „%s“ steht dazu: ",
			phraseExtractiveUntitled: "Gern! Dazu habe ich Folgendes gefunden: ",
			phraseUnknown:            "Das weiß ich leider noch nicht, und raten möchte ich nicht. Soll ich Sie an jemanden aus unserem Team weitergeben, der Ihnen helfen kann?",
			phraseGreeting:           "Hallo%s!%s Was kann ich für Sie tun?",
			phraseIntro:              " Ich bin %s, schön, dass Sie da sind.",
			phrasePage:               "%s, Seite %d",
		},
		Casual: {
			phraseExtractive:         "Hab was gefunden, in „%s“ steht: ",
			phraseExtractiveUntitled: "Hab was gefunden: ",
			phraseUnknown:            "Sorry, das weiß ich nicht – und raten will ich nicht. Soll ich dich an jemanden aus dem Team weiterleiten?",
			phraseGreeting:           "Hey%s!%s Was kann ich für dich tun?",
			phraseIntro:              " Hier ist %s.",
			phrasePage:               "%s, S. %d",
		},
	},
}

// normalizeLanguage maps "de-DE", "DE", "german" to "de"; languages without
// phrasing become "en".
func normalizeLanguage(l string) string {
	if len(l) >= 2 {
		switch l[:2] {
		case "de", "De", "DE", "ge", "Ge":
			return "de"
		}
	}
	return "en"
}

func normalizeTone(t Tone) Tone {
	switch t {
	case Friendly, Casual:
		return t
	case "informal", "playful", "relaxed", "humorous":
		return Casual
	case "warm", "empathetic", "enthusiastic", "helpful":
		return Friendly
	default:
		return Professional
	}
}

func say(lang string, tone Tone, p phrase, args ...any) string {
	byTone, ok := phrases[lang]
	if !ok {
		byTone = phrases["en"]
	}
	s := byTone[normalizeTone(tone)][p]
	if len(args) == 0 {
		return s
	}
	return fmt.Sprintf(s, args...)
}
