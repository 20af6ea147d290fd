package commands_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/companin/companin/adapters/extract"
	"github.com/companin/companin/commands"
	"github.com/companin/companin/domain/es"
	"github.com/companin/companin/domain/knowledge"
)

// TestMain shares PDFium's compiled code between test runs and packages, as
// the server does under its data directory.
func TestMain(m *testing.M) {
	_ = extract.UseCompilationCache(filepath.Join(os.TempDir(), "companin-pdfium-cache"))
	os.Exit(m.Run())
}

// addFile uploads a file as the API does: parsed, then added.
func addFile(ctx context.Context, store es.Store, c knowledge.Common, fileType, fileName string, content []byte) (commands.Written, error) {
	spec, err := knowledge.ParseFile(c, fileType, fileName, content)
	if err != nil {
		return commands.Written{}, err
	}
	return commands.AddKnowledgeHandler{Store: store}.Handle(ctx, commands.AddKnowledge{Spec: spec})
}
