package extract

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMain shares PDFium's compiled code between test runs and packages, as
// the server does under its data directory.
func TestMain(m *testing.M) {
	_ = UseCompilationCache(filepath.Join(os.TempDir(), "companin-pdfium-cache"))
	os.Exit(m.Run())
}
