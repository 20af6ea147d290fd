package extract

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"sync"

	"github.com/klippa-app/go-pdfium"
	"github.com/klippa-app/go-pdfium/webassembly"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// PDFium runs as WebAssembly inside the process (wazero), so a PDF that makes
// it misbehave costs one sandboxed instance, never the process: each document
// gets a fresh instance whose memory is capped at Limits.PDFMemoryMB.
//
// Compiling the module takes seconds, so it happens once per process, on the
// first PDF (or on Warm), never at server start.
var engine struct {
	mu    sync.Mutex
	pools map[int]pdfium.Pool // by memory cap in MB: one in practice
	cache wazero.CompilationCache
}

// UseCompilationCache keeps PDFium's compiled code in dir (e.g. under the
// data directory), so that a later process loads it in a fraction of the
// time and memory that compiling takes. Call it before the first PDF; an
// unusable dir only means compiling again.
func UseCompilationCache(dir string) error {
	c, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		return fmt.Errorf("PDF engine cache %s: %w", dir, err)
	}
	engine.mu.Lock()
	defer engine.mu.Unlock()
	engine.cache = c
	return nil
}

// pdfInstances bounds the PDFium instances alive at once; with their memory
// cap it bounds what PDF extraction can take from the process.
const pdfInstances = 2

// wasmPage is the WebAssembly memory page size.
const wasmPage = 64 << 10

// Warm compiles the PDF engine ahead of the first PDF, e.g. in the background
// after the server has started.
func Warm() error {
	_, err := pdfPool(DefaultLimits.PDFMemoryMB)
	return err
}

func pdfPool(memMB int) (pdfium.Pool, error) {
	engine.mu.Lock()
	defer engine.mu.Unlock()
	if p, ok := engine.pools[memMB]; ok {
		return p, nil
	}
	rc := wazero.NewRuntimeConfig().
		WithCoreFeatures(api.CoreFeaturesV2 | experimental.CoreFeaturesExceptionHandling).
		WithMemoryLimitPages(uint32(int64(memMB) << 20 / wasmPage))
	if engine.cache != nil {
		rc = rc.WithCompilationCache(engine.cache)
	}
	p, err := webassembly.Init(webassembly.Config{
		Context:       experimental.WithMemoryAllocator(context.Background(), wasmMemory),
		MinIdle:       0,
		MaxIdle:       pdfInstances,
		MaxTotal:      pdfInstances,
		RuntimeConfig: rc,
		// No file system: PDFium reads the document from memory only.
		FSConfig: wazero.NewFSConfig(),
		Stdout:   io.Discard,
		Stderr:   io.Discard,
	})
	if err != nil {
		return nil, fmt.Errorf("start the PDF engine: %w", err)
	}
	if engine.pools == nil {
		engine.pools = map[int]pdfium.Pool{}
	}
	engine.pools[memMB] = p
	// The compiler's garbage is a few hundred MB: give it back now rather
	// than keep it as the process's high-water mark.
	debug.FreeOSMemory()
	return p, nil
}

// withPDFium runs fn on a fresh PDFium instance, thrown away afterwards, so
// no memory a document made PDFium take outlives its job. fn checks ctx
// between its calls into PDFium (each call's work is bounded by the memory
// cap); wazero's own interruption on context end is not used, as it costs a
// goroutine per call and calls here are per character.
func withPDFium(ctx context.Context, memMB int, fn func(pdfium.Pdfium) error) (err error) {
	pool, err := pdfPool(memMB)
	if err != nil {
		return err
	}
	inst, err := pool.GetInstanceWithContext(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("start the PDF engine: %w", err)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the PDF engine stopped on this file: %v", r)
		}
		// A failed call may have left the module unusable: kill it rather
		// than trust it; Close returns a healthy instance's memory.
		if err != nil || inst.Close() != nil {
			_ = inst.Kill()
		}
	}()
	return fn(inst)
}
