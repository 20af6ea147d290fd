package extract

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchPDFs are text PDFs of the corpus from several producers, 733 pages.
var benchPDFs = []string{"WaldenFull.pdf", "BuildingWebappsWithGo.pdf", "ECSTR11-01.pdf", "T4.pdf", "itu-t81.pdf"}

func readBenchPDFs(b *testing.B) (map[string][]byte, int) {
	b.Helper()
	files := map[string][]byte{}
	pages := 0
	for _, name := range benchPDFs {
		data, err := os.ReadFile(filepath.Join("testdata", "corpus", name))
		if err != nil {
			b.Fatal(err)
		}
		files[name] = data
		doc, err := File(context.Background(), "pdf", data)
		if err != nil {
			b.Fatal(err)
		}
		pages += doc.Pages
	}
	return files, pages
}

// BenchmarkPDFText measures text extraction of real PDFs in pages/s, with
// poppler's pdftotext on the same files as the peer (a native program, text
// only: no lines, paragraphs or headings).
func BenchmarkPDFText(b *testing.B) {
	if err := Warm(); err != nil {
		b.Fatal(err)
	}
	files, pages := readBenchPDFs(b)
	b.Run("pdfium", func(b *testing.B) {
		start := time.Now()
		for b.Loop() {
			for _, data := range files {
				if _, err := File(context.Background(), "pdf", data); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(pages*b.N)/time.Since(start).Seconds(), "pages/s")
	})
	b.Run("pdftotext", func(b *testing.B) {
		if _, err := exec.LookPath("pdftotext"); err != nil {
			b.Skip("pdftotext not installed")
		}
		start := time.Now()
		for b.Loop() {
			for name := range files {
				if err := exec.Command("pdftotext", "-q", filepath.Join("testdata", "corpus", name), os.DevNull).Run(); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(pages*b.N)/time.Since(start).Seconds(), "pages/s")
	})
}

// procStatusMB reads a field of /proc/self/status in MB.
func procStatusMB(field string) float64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field+":" {
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	return 0
}

// peakGrowthMB runs fn and returns how far the process's resident memory
// rose above where it was before (the peak is reset through clear_refs).
func peakGrowthMB(fn func()) float64 {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	before := procStatusMB("VmRSS")
	fn()
	return procStatusMB("VmHWM") - before
}

// BenchmarkPDFBookMemory measures how much the process's memory grows while
// a 249-page book (WaldenFull.pdf) is extracted: the first time in the
// process (compiling PDFium included) and then warm. pdftotext's peak
// resident memory on the same file is the peer.
func BenchmarkPDFBookMemory(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("testdata", "corpus", "WaldenFull.pdf"))
	if err != nil {
		b.Fatal(err)
	}
	cold := peakGrowthMB(func() {
		if _, err := File(context.Background(), "pdf", data); err != nil {
			b.Fatal(err)
		}
	})
	var warm float64
	for b.Loop() {
		warm = max(warm, peakGrowthMB(func() {
			if _, err := File(context.Background(), "pdf", data); err != nil {
				b.Fatal(err)
			}
		}))
	}
	b.ReportMetric(cold, "MB-first")
	b.ReportMetric(warm, "MB-warm")
	cmd := exec.Command("pdftotext", "-q", filepath.Join("testdata", "corpus", "WaldenFull.pdf"), os.DevNull)
	if err := cmd.Run(); err == nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			b.ReportMetric(float64(ru.Maxrss)/1024, "MB-pdftotext")
		}
	}
}
