package extract

import (
	"context"
	"errors"
	"github.com/companin/companin/adapters/extract/bombs"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLongPDFCallDoesNotStopTheProcess reads a PDF whose one content stream
// inflates to 100 MB (seconds inside a single PDFium call) while this process
// allocates enough to need garbage collections. In-process, the collector's
// stop-the-world waited for that call and a goroutine sleeping 5 ms saw a
// 3 s gap; with PDFium in a child process, nothing here waits for it.
func TestLongPDFCallDoesNotStopTheProcess(t *testing.T) {
	if _, ok := workerExecutable(); !ok {
		t.Fatal("no executable to start as the PDF worker")
	}
	bomb := bombs.PDF(100 << 20)
	done := make(chan struct{})
	var wg sync.WaitGroup
	var maxGap atomic.Int64
	wg.Add(2)
	go func() { // the unrelated goroutine
		defer wg.Done()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			now := time.Now()
			if g := int64(now.Sub(last)); g > maxGap.Load() {
				maxGap.Store(g)
			}
			last = now
		}
	}()
	var gcs atomic.Int64
	go func() { // allocation pressure: collections must happen meanwhile
		defer wg.Done()
		var keep [][]byte
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			keep = append(keep, make([]byte, 1<<20))
			if len(keep) > 64 {
				keep = keep[:0]
			}
			if i%64 == 0 {
				runtime.GC()
				gcs.Add(1)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	start := time.Now()
	doc, err := File(context.Background(), "pdf", bomb)
	took := time.Since(start)
	close(done)
	wg.Wait()
	chars := 0
	for _, b := range doc.Blocks {
		chars += len(b.Text)
	}
	if err != nil || doc.Pages != 1 || !strings.HasPrefix(doc.Blocks[0].Text, "bomb bomb") {
		t.Fatalf("the bomb: %d pages, %d bytes of text, error %v", doc.Pages, chars, err)
	}
	gap := time.Duration(maxGap.Load())
	t.Logf("extraction %v, %d forced collections, longest gap of a 5 ms sleeper %v", took.Round(time.Millisecond), gcs.Load(), gap.Round(time.Millisecond))
	if gcs.Load() < 2 {
		t.Fatalf("only %d collections ran during the extraction", gcs.Load())
	}
	if gap >= time.Second {
		t.Fatalf("a goroutine sleeping 5 ms waited %v while the PDF was read", gap)
	}
}

// TestKilledWorkerFailsTheDocument ends the context while the child is in the
// middle of the bomb: the child is killed and the document fails with a
// reason, leaving no slot taken.
func TestKilledWorkerFailsTheDocument(t *testing.T) {
	bomb := bombs.PDF(100 << 20)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := File(ctx, "pdf", bomb)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("got %v, want the reading stopped at its deadline", err)
	}
	if n := len(worker.slots); n != 0 {
		t.Fatalf("%d worker slots still taken", n)
	}
	// The engine still works afterwards.
	if _, err := File(context.Background(), "pdf", bombs.PDF(1<<10)); err != nil {
		t.Fatalf("a small PDF after the kill: %v", err)
	}
}

// TestBrokenWorkerFailsTheDocument starts real programs in the worker's
// place: one that exits at once with an error, one that writes without end.
// Both fail the document with a reason a person can act on.
func TestBrokenWorkerFailsTheDocument(t *testing.T) {
	endIdleChildren() // else an idle worker would answer
	for _, c := range []struct{ prog, want string }{
		{"false", "stopped on this file (exit status 1)"},
		{"yes", "split it"},
	} {
		exe, err := exec.LookPath(c.prog)
		if err != nil {
			t.Fatalf("%s: %v", c.prog, err)
		}
		_, err = DefaultLimits.pdfInChild(context.Background(), exe, []byte("%PDF-1.4"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s in the worker's place: got %v, want %q", c.prog, err, c.want)
		}
		if c.prog == "false" && !errors.Is(err, ErrCorrupt) || c.prog == "yes" && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%s: %v matches the wrong error", c.prog, err)
		}
	}
}

// TestWorkerReadsSeveralDocuments checks that one child reads documents one
// after another, so only the first pays for starting it, and that a document
// that fails does not cost the child.
func TestWorkerReadsSeveralDocuments(t *testing.T) {
	endIdleChildren()
	small := bombs.PDF(1 << 10)
	for i := range 3 {
		if _, err := File(context.Background(), "pdf", small); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
	}
	if _, err := File(context.Background(), "pdf", []byte("%PDF-1.4\nnot really")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a broken PDF: got %v, want ErrCorrupt", err)
	}
	worker.mu.Lock()
	defer worker.mu.Unlock()
	if len(worker.idle) != 1 || worker.idle[0].served != 4 {
		served := []int{}
		for _, c := range worker.idle {
			served = append(served, c.served)
		}
		t.Fatalf("idle children served %v documents, want one child that served 4", served)
	}
}

// endIdleChildren ends the idle workers, so that the next document starts one.
func endIdleChildren() {
	for c := takeIdleChild(); c != nil; c = takeIdleChild() {
		_ = c.stdin.Close()
	}
}

// BenchmarkPDFWorkerOverhead measures what the child process costs a small
// one-page PDF: read by a new child (start it, load PDFium's compiled code
// from the cache), by a warm child, and in this process (the old way; a
// fresh PDFium instance each time, as always).
func BenchmarkPDFWorkerOverhead(b *testing.B) {
	small := bombs.PDF(1 << 10)
	if _, err := File(context.Background(), "pdf", small); err != nil { // compile into the cache if needed
		b.Fatal(err)
	}
	measure := func(name string, before func(), read func() error) {
		var total time.Duration
		const n = 5
		for range n {
			before()
			start := time.Now()
			if err := read(); err != nil {
				b.Fatal(err)
			}
			total += time.Since(start)
		}
		b.ReportMetric(float64(total.Milliseconds())/n, "ms-"+name)
	}
	child := func() error { _, err := File(context.Background(), "pdf", small); return err }
	for b.Loop() {
		measure("new-child", endIdleChildren, child)
		measure("warm-child", func() {}, child)
		measure("in-process", func() {}, func() error {
			_, err := DefaultLimits.pdfInProcess(context.Background(), small)
			return err
		})
	}
}
