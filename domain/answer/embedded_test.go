package answer

import (
	"context"
	"errors"
	"strings"
	"testing"
)

var (
	hoursQA = Passage{KnowledgeID: "k-hours", Title: "Business hours", Kind: QA, Score: 0.9,
		Question: "What are your business hours?", Text: "We are open Monday to Friday, 9 AM to 6 PM EST."}
	passwordQA = Passage{KnowledgeID: "k-pw", Title: "Passwort", Kind: QA, Score: 0.8,
		Question: "Wie setze ich mein Passwort zurück?", Text: `Gehe zu Einstellungen und klicke auf "Passwort zurücksetzen".`}
	manual = Passage{KnowledgeID: "k-manual", Title: "Product Manual", Kind: Chunk, Score: 0.7, Text: `# Router X100
The X100 ships with a quick start guide and a power adapter. It supports Wi-Fi 6.
## Resetting the router
To reset the router, press and hold the reset button on the back for 10 seconds until the light blinks orange. All settings return to factory defaults.
## Warranty
The warranty covers two years from the date of purchase. Keep your receipt.`}
	handbuch = Passage{KnowledgeID: "k-handbuch", Title: "Handbuch", Kind: Chunk, Score: 0.7, Text: `Lieferung und Versand
Die Lieferung erfolgt innerhalb von 3 bis 5 Werktagen. Bestellungen vor 14 Uhr verlassen das Lager am selben Tag.
Rücksendungen sind innerhalb von 30 Tagen kostenlos möglich.`}
)

func TestEmbeddedAnswers(t *testing.T) {
	tests := []struct {
		name         string
		req          Request
		strategy     Strategy
		want         []string // substrings the reply must contain
		wantNot      []string // substrings it must not contain
		wantSources  []string // knowledge ids, in order
		maxSentences int
	}{
		{
			name:        "qa pair asked the same way",
			req:         Request{Question: "What are your business hours?", Passages: []Passage{hoursQA, manual}},
			strategy:    StrategyQA,
			want:        []string{"We are open Monday to Friday, 9 AM to 6 PM EST."},
			wantSources: []string{"k-hours"},
		},
		{
			name:        "qa pair asked in other words",
			req:         Request{Question: "When are you open?", Passages: []Passage{manual, hoursQA}},
			strategy:    StrategyQA,
			want:        []string{"Monday to Friday"},
			wantSources: []string{"k-hours"},
		},
		{
			name:        "german qa pair with a compound verb",
			req:         Request{Question: "Wie kann ich mein Passwort zurücksetzen?", Persona: Persona{Language: "de"}, Passages: []Passage{passwordQA}},
			strategy:    StrategyQA,
			want:        []string{"Einstellungen"},
			wantSources: []string{"k-pw"},
		},
		{
			name:         "extractive: the sentences that answer, not the page",
			req:          Request{Question: "How do I reset my router?", Persona: Persona{Language: "en", Tone: Professional}, Passages: []Passage{manual, hoursQA}},
			strategy:     StrategyExtractive,
			want:         []string{"According to our documentation (“Product Manual”)", "press and hold the reset button"},
			wantNot:      []string{"warranty", "Wi-Fi 6", "Monday"},
			wantSources:  []string{"k-manual"},
			maxSentences: 3,
		},
		{
			name:         "extractive in german",
			req:          Request{Question: "Wie lange dauert die Lieferung?", Persona: Persona{Language: "de", Tone: Professional}, Passages: []Passage{handbuch}},
			strategy:     StrategyExtractive,
			want:         []string{"Laut unserer Dokumentation („Handbuch“)", "3 bis 5 Werktagen"},
			wantNot:      []string{"Rücksendungen"},
			wantSources:  []string{"k-handbuch"},
			maxSentences: 3,
		},
		{
			name:     "unknown, professional",
			req:      Request{Question: "What is the weather on Mars tomorrow?", Persona: Persona{Language: "en", Tone: Professional}, Passages: []Passage{manual, hoursQA}},
			strategy: StrategyUnknown,
			want:     []string{"could not find", "member of our team"},
		},
		{
			name:     "unknown, friendly",
			req:      Request{Question: "Do you sell garden furniture?", Persona: Persona{Tone: Friendly}, Passages: []Passage{manual}},
			strategy: StrategyUnknown,
			want:     []string{"rather not guess", "hand you over"},
		},
		{
			name:     "unknown, casual german with nothing retrieved",
			req:      Request{Question: "Ich brauche Hilfe bei meiner Bestellung", Persona: Persona{Language: "de", Tone: Casual}},
			strategy: StrategyUnknown,
			want:     []string{"weiß ich nicht", "dich"},
		},
		{
			name:     "language from the question when the assistant has none",
			req:      Request{Question: "Welchen Laptop empfiehlst du?"},
			strategy: StrategyUnknown,
			want:     []string{"Wissensdatenbank"},
		},
		{
			name:     "two similar pairs: no coin toss",
			req:      Request{Question: "What are your opening hours?", Passages: []Passage{hoursQA, {KnowledgeID: "k-hours2", Kind: QA, Question: "What are your holiday opening hours?", Text: "Closed on public holidays."}}},
			strategy: StrategyExtractive,
		},
		{
			name:     "greeting with the customer's name",
			req:      Request{Question: "Hello!", Persona: Persona{Name: "Ava", Tone: Friendly}, Traits: map[string]any{"name": "John Doe"}, Passages: []Passage{manual}},
			strategy: StrategyGreeting,
			want:     []string{"Hi John!", "I'm Ava"},
		},
		{
			name: "follow-up uses the earlier question",
			req: Request{Question: "And how long does it take?", Persona: Persona{Language: "en"},
				History:  []Turn{{Role: "user", Content: "Tell me about the warranty"}, {Role: "assistant", Content: "..."}},
				Passages: []Passage{manual}},
			strategy:    StrategyExtractive,
			want:        []string{"two years"},
			wantSources: []string{"k-manual"},
		},
	}
	e := NewEmbedded()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := e.Answer(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if r.Trace.Strategy != tt.strategy {
				t.Fatalf("strategy %s, want %s; reply %q", r.Trace.Strategy, tt.strategy, r.Text)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.Text, w) {
					t.Errorf("reply %q lacks %q", r.Text, w)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(strings.ToLower(r.Text), strings.ToLower(w)) {
					t.Errorf("reply %q contains %q", r.Text, w)
				}
			}
			if tt.wantSources != nil {
				var got []string
				for _, s := range r.Sources {
					got = append(got, s.KnowledgeID)
					if s.Snippet == "" || len([]rune(s.Snippet)) > SnippetLen+2 {
						t.Errorf("source %s snippet %q", s.KnowledgeID, s.Snippet)
					}
				}
				if strings.Join(got, ",") != strings.Join(tt.wantSources, ",") {
					t.Errorf("sources %v, want %v", got, tt.wantSources)
				}
			}
			if tt.strategy == StrategyUnknown && len(r.Sources) != 0 {
				t.Errorf("a reply that knows nothing cites %v", r.Sources)
			}
			if tt.maxSentences > 0 {
				if n := strings.Count(r.Text, ". ") + 1; n > tt.maxSentences+1 {
					t.Errorf("reply has %d sentences: %q", n, r.Text)
				}
			}
			if r.Trace.Engine != EngineName || len(r.Trace.Candidates) != len(tt.req.Passages) {
				t.Errorf("trace %+v", r.Trace)
			}
		})
	}
}

func TestEmbeddedRejectsEmptyQuestion(t *testing.T) {
	_, err := NewEmbedded().Answer(context.Background(), Request{Question: "  "})
	if !errors.Is(err, ErrEmptyQuestion) {
		t.Fatalf("err %v", err)
	}
}

func TestEmbeddedStreamsTheSameText(t *testing.T) {
	var b strings.Builder
	n := 0
	r, err := NewEmbedded().AnswerStream(context.Background(), Request{Question: "How do I reset my router?", Passages: []Passage{manual}},
		func(d string) error { n++; b.WriteString(d); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != r.Text || n < 5 {
		t.Fatalf("%d deltas %q, reply %q", n, b.String(), r.Text)
	}
	stop := errors.New("client gone")
	if _, err := NewEmbedded().AnswerStream(context.Background(), Request{Question: "How do I reset my router?", Passages: []Passage{manual}},
		func(string) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("err %v", err)
	}
}

func TestAnalyzer(t *testing.T) {
	tests := []struct{ a, b string }{
		{"hours", "hour"}, {"Bestellungen", "Bestellung"}, {"setzen", "setze"}, {"shipping", "ship"},
		{"returned", "returns"}, {"deliveries", "delivery"}, {"Laptops", "Laptop"},
	}
	for _, tt := range tests {
		if stem(tt.a) != stem(tt.b) {
			t.Errorf("stem(%q)=%q, stem(%q)=%q", tt.a, stem(tt.a), tt.b, stem(tt.b))
		}
	}
	var got []string
	for _, s := range sentences("# Heading\nCall us e.g. on Monday. Version 3.5 is out! Was nun? Ja.\n- item one\nLast line") {
		got = append(got, s.text)
	}
	want := []string{"Call us e.g. on Monday.", "Version 3.5 is out!", "Was nun?", "Ja.", "item one", "Last line"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("sentences %q", got)
	}
	if detectLanguage("Wie setze ich mein Passwort zurück?") != "de" || detectLanguage("How do I reset it?") != "en" {
		t.Error("language detection")
	}
}

func TestFollowUpMustStillNameTheSubject(t *testing.T) {
	r, err := NewEmbedded().Answer(context.Background(), Request{Question: "Ich brauche Hilfe bei meiner Bestellung", Persona: Persona{Language: "de"},
		History:  []Turn{{Role: "user", Content: "Wie setze ich mein Passwort zurück?"}},
		Passages: []Passage{passwordQA}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Trace.Strategy != StrategyUnknown || len(r.Sources) != 0 {
		t.Fatalf("%s: %q %v", r.Trace.Strategy, r.Text, r.Sources)
	}
}

func TestWrappedLinesAreJoined(t *testing.T) {
	pdf := Passage{KnowledgeID: "k", Title: "Manual", Kind: Chunk, Text: "Resetting the password\nIf you forgot the admin password, press and hold the reset button on the back for\nten seconds. The router restarts with the factory password printed on the label\nunderneath.\nTechnical data"}
	r, err := NewEmbedded().Answer(context.Background(), Request{Question: "How do I reset the admin password?", Passages: []Passage{pdf}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Text, "for ten seconds.") {
		t.Fatalf("%q", r.Text)
	}
}

// deployment is a passage as PDF extraction gives it: prose lead-ins, each
// followed by the command it introduces.
var deployment = Passage{KnowledgeID: "k-bwag", Title: "Building Web Apps with Go", Kind: Chunk, Page: 11, Text: `# Deployment
Once all these things in place, Heroku makes it easy to deploy.

Initialize the project as a Git repository:

git init
git add -A
git commit -m "Initial Commit"

Create your Heroku application (specifying the Go buildpack):

heroku create -b https://github.com/kr/heroku-buildpack-go.git

Push it to Heroku and watch your application be deployed!

git push heroku master

View your application in your browser:

heroku open`}

// The answer is the command, not the prose around it: it is quoted
// verbatim, after the sentence that leads into it, with source and page.
func TestQuotesTheCommandThatAnswers(t *testing.T) {
	tests := []struct{ q, want, notWant string }{
		{"What command pushes the application to Heroku?", "Push it to Heroku and watch your application be deployed! `git push heroku master`", "heroku open"},
		{"How do I open the deployed application in my browser?", "`heroku open`", "git push"},
		{"Which command creates the Heroku application with the Go buildpack?", "`heroku create -b https://github.com/kr/heroku-buildpack-go.git`", "git push"},
		{"How do I initialize the project as a Git repository?", "git init\ngit add -A\ngit commit -m \"Initial Commit\"", "heroku open"},
	}
	for _, tt := range tests {
		r, err := NewEmbedded().Answer(context.Background(), Request{Question: tt.q, Persona: Persona{Language: "en"}, Passages: []Passage{deployment, manual}})
		if err != nil {
			t.Fatal(err)
		}
		if r.Trace.Strategy != StrategyExtractive || !strings.Contains(r.Text, tt.want) || strings.Contains(r.Text, tt.notWant) {
			t.Errorf("%q: %q", tt.q, r.Text)
		}
		if !strings.Contains(r.Text, "“Building Web Apps with Go, page 11”") || len(r.Sources) == 0 || r.Sources[0].Page != 11 {
			t.Errorf("%q: no source and page in %q %+v", tt.q, r.Text, r.Sources)
		}
	}
}

func TestPrefersTheSentenceOfTheKindAskedFor(t *testing.T) {
	faq := Passage{KnowledgeID: "k-faq", Title: "Debian FAQ", Kind: Chunk, Text: `What is Debian GNU/Linux?
Debian includes more than 59100 software packages at present. Users can select which packages to install.
The Debian archives also carry software packages in the non-free and contrib sections.
The Debian Project was created by Ian Murdock in 1993.
Um alle mit der Installation des Pakets foo auf das System übertragenen Dateien aufzulisten, verwenden Sie den Befehl:
dpkg --listfiles foo
Beachten Sie, dass Dateien, die von den Installationsskripten erzeugt werden, hier nicht auftauchen.`}
	tests := []struct{ q, want string }{
		{"How many software packages does Debian include?", "59100"},
		{"Who created the Debian Project?", "Ian Murdock"},
		{"Wie kann ich alle Dateien eines installierten Pakets auflisten?", "`dpkg --listfiles foo`"},
	}
	for _, tt := range tests {
		r, err := NewEmbedded().Answer(context.Background(), Request{Question: tt.q, Passages: []Passage{faq}})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(r.Text, tt.want) {
			t.Errorf("%q: %q", tt.q, r.Text)
		}
	}
}

// A pair written in German is found for an English question through its
// tags and the glossary, as the seed's addFAQ example is.
func TestQAPairInTheOtherLanguageByItsTags(t *testing.T) {
	seed := passwordQA
	seed.Tags = []string{"password", "security"}
	code := Passage{KnowledgeID: "k-code", Title: "Middleware", Kind: Chunk,
		Text: "if r.URL.Query().Get(\"password\") == \"secret123\" {\nnext(rw, r)\n}"}
	for _, q := range []string{"How do I reset my password?", "Wie setze ich mein Passwort zurück?"} {
		r, err := NewEmbedded().Answer(context.Background(), Request{Question: q, Passages: []Passage{code, seed}})
		if err != nil {
			t.Fatal(err)
		}
		if r.Trace.Strategy != StrategyQA || !strings.Contains(r.Text, "Gehe zu Einstellungen") {
			t.Errorf("%q: %s %q", q, r.Trace.Strategy, r.Text)
		}
	}
	// Without the tags the English question has only the glossary to go on,
	// and the unrelated question still gets the honest answer.
	r, err := NewEmbedded().Answer(context.Background(), Request{Question: "Can I pay with PayPal?", Passages: []Passage{code, seed}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Trace.Strategy != StrategyUnknown {
		t.Errorf("unrelated question: %s %q", r.Trace.Strategy, r.Text)
	}
}

func TestQuotedNamesThePassagesTheEngineUses(t *testing.T) {
	req := Request{Question: "What command pushes the application to Heroku?", Passages: []Passage{manual, hoursQA, deployment}}
	if got := NewEmbedded().Quoted(req); len(got) != 1 || got[0] != 2 {
		t.Fatalf("quoted %v", got)
	}
	if got := NewEmbedded().Quoted(Request{Question: "What is the weather on Mars?", Passages: req.Passages}); len(got) != 0 {
		t.Fatalf("quoted %v for a question nothing answers", got)
	}
}

// The seed's pair is about the customer's own password; a question about
// the router's admin password is answered from the manual that names it.
func TestPairGivesWayToAPassageThatCoversTheQuestion(t *testing.T) {
	seed := passwordQA
	seed.Tags = []string{"password", "security"}
	router := Passage{KnowledgeID: "k-router", Title: "Product Manual", Kind: Chunk,
		Text: "Resetting the password\nIf you forgot the admin password, press and hold the reset button on the back for ten seconds."}
	r, err := NewEmbedded().Answer(context.Background(), Request{Question: "How do I reset the admin password?", Passages: []Passage{seed, router}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Trace.Strategy != StrategyExtractive || !strings.Contains(r.Text, "reset button") {
		t.Fatalf("%s %q", r.Trace.Strategy, r.Text)
	}
	r, err = NewEmbedded().Answer(context.Background(), Request{Question: "How do I reset my password?", Passages: []Passage{router, seed}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Trace.Strategy != StrategyQA || !strings.Contains(r.Text, "Gehe zu Einstellungen") {
		t.Fatalf("%s %q", r.Trace.Strategy, r.Text)
	}
}
