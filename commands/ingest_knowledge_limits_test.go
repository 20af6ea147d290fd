package commands_test

import (
	"context"
	"github.com/companin/companin/adapters/extract/bombs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/companin/companin/adapters/eventstore/memory"
	"github.com/companin/companin/adapters/extract"
	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/knowledge"
)

// peakRSSMB is the process's peak resident memory so far (VmHWM), in MB.
func peakRSSMB(t testing.TB) int {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.Atoi(f[1])
			return kb >> 10
		}
	}
	return 0
}

// Hostile and large documents end ready or failed with a reason a person can
// act on, never crash the process, and the worker never asks for a retry: a
// failure of the document itself is final. What is stored is valid UTF-8
// without NUL.
func TestIngestionOfHostileDocumentsEndsReadyOrFailed(t *testing.T) {
	walden, err := os.ReadFile(filepath.Join("..", "adapters", "extract", "testdata", "corpus", "WaldenFull.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	pdfBomb := bombs.PDF(100 << 20)
	docx := bombs.DOCX(60 << 20)
	t.Logf("PDF bomb %d KB (inflates to 100 MB), DOCX bomb %d KB (unpacks to 60 MB)", len(pdfBomb)>>10, len(docx)>>10)
	cases := []struct {
		name, fileType string
		data           []byte
		ready, failed  bool   // which ends are right (both: either)
		reason         string // what a failure's reason must say
	}{
		{"WaldenFull.pdf, 249 pages", "pdf", walden, true, false, ""},
		// PDFium reads at most 32 KB of one string, so this may end ready.
		{"PDF whose one stream inflates to 100 MB", "pdf", pdfBomb, true, true, "split"},
		{"PDF whose one stream inflates past the engine's memory cap", "pdf", bombs.PDF(400 << 20), false, true, "split"},
		{"DOCX unpacking to 60 MB of XML", "docx", docx, false, true, "split"},
		{"text with control characters and invalid UTF-8", "md", []byte("Reset\x01 the router:\x1b hold the button for ten seconds.\r\n\xff\xfe Done."), true, false, ""},
	}
	store := memory.New()
	ctx := es.WithMetadata(context.Background(), es.Metadata{OrganizationID: "org-hostile", Actor: "test"})
	worker := commands.IngestKnowledgeHandler{Store: store, Extract: extract.File, Fetch: noFetch{}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := addFile(ctx, store, knowledge.Common{Title: c.name}, c.fileType, "f."+c.fileType, c.data)
			if err != nil {
				t.Fatal(err)
			}
			triggers, err := store.ReadAll(context.Background(), es.Start, 100, es.Filter{Types: knowledge.IngestionTriggers})
			if err != nil || len(triggers) == 0 {
				t.Fatalf("triggers: %v %d", err, len(triggers))
			}
			if err := worker.HandleEvent(context.Background(), triggers[len(triggers)-1]); err != nil {
				t.Fatalf("the worker asked for a retry: %v", err)
			}
			events, err := store.ReadStream(context.Background(), knowledge.Kind+"-"+res.ID.String(), 1, 10)
			if err != nil || len(events) != 2 {
				t.Fatalf("events: %v %d", err, len(events))
			}
			last, err := knowledge.Decode(events[1].Type, events[1].Data)
			if err != nil {
				t.Fatal(err)
			}
			switch e := last.(type) {
			case knowledge.Ingested:
				if !c.ready {
					t.Fatalf("ingested %d chunks, want a failure", len(e.Chunks))
				}
				if !utf8.ValidString(e.Text) || strings.ContainsFunc(e.Text, func(r rune) bool { return r < 0x20 && r != '\n' && r != '\t' }) {
					t.Errorf("stored text is not clean UTF-8: %q", e.Text[:min(len(e.Text), 200)])
				}
				for _, ch := range e.Chunks {
					if !utf8.ValidString(e.Text[ch.Start:ch.End]) {
						t.Errorf("chunk %d cut inside a character", ch.Index)
					}
				}
				t.Logf("ready: %d pages, %d chunks, %d characters", e.Pages, len(e.Chunks), utf8.RuneCountInString(e.Text))
			case knowledge.IngestionFailed:
				if !c.failed {
					t.Fatalf("failed: %s", e.Reason)
				}
				if !strings.Contains(e.Reason, c.reason) {
					t.Errorf("reason %q does not say %q", e.Reason, c.reason)
				}
				t.Logf("failed: %s", e.Reason)
			default:
				t.Fatalf("last event %T", last)
			}
			runtime.GC()
			t.Logf("peak resident memory of the test process so far: %d MB", peakRSSMB(t))
		})
	}
	// The limits exist so that no upload can take the process down: the
	// PDF bomb once took 4.7 GB; the aim for a server is under 1 GB.
	if peak := peakRSSMB(t); peak > 1024 {
		t.Errorf("peak resident memory %d MB", peak)
	}
}
