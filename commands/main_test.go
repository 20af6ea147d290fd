package commands_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/companin/companin/adapters/extract"
)

// TestMain shares PDFium's compiled code between test runs and packages, as
// the server does under its data directory.
func TestMain(m *testing.M) {
	_ = extract.UseCompilationCache(filepath.Join(os.TempDir(), "companin-pdfium-cache"))
	os.Exit(m.Run())
}
