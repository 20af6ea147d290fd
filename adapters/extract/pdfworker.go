package extract

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/companin/companin/domain/knowledge"
)

// PDFium runs in a child process: the same executable, started again with
// workerEnv set. PDFium is WebAssembly compiled to native code by wazero, and
// Go cannot preempt a goroutine inside such code: when the garbage collector
// needs to stop the world during one long PDFium call (a content stream that
// inflates to 100 MB takes seconds), the whole process would wait for that
// call, every other organization's requests and job leases with it. In a
// child, such a call stops only the child.
//
// Protocol: the parent writes a gob-encoded workerRequest on the child's
// stdin and closes it; the child writes one gob-encoded workerResponse on
// stdout and exits. One child per document (its overhead is starting the
// process and loading PDFium's compiled code from the compilation cache).
const (
	workerEnv      = "COMPANIN_PDF_WORKER"
	workerCacheEnv = "COMPANIN_PDF_WORKER_CACHE"
)

// init serves as the PDF worker when this process was started as one. It is
// an init of this package, not something main calls, because every binary
// linking the package must be able to serve as the child: the server, the
// CLI, and each test binary of a package that reaches PDF extraction (a test
// binary started again without this would run its tests instead). Package
// initialization runs this package's dependencies first and its importers
// after, so everything the worker uses is ready here.
func init() {
	if os.Getenv(workerEnv) != "1" {
		return
	}
	if dir := os.Getenv(workerCacheEnv); dir != "" {
		_ = UseCompilationCache(dir) // an unusable dir only means compiling
	}
	if err := serveWorker(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "PDF worker:", err)
		os.Exit(2)
	}
	os.Exit(0)
}

type workerRequest struct {
	Limits Limits
	Data   []byte
	// Warm asks only to load (or compile) the engine.
	Warm bool
}

type workerResponse struct {
	Doc knowledge.Document
	// Kind names the sentinel error (see workerKinds), "" on success.
	Kind    string
	Message string
}

// workerKinds are the errors the child can report, by name, so that the
// parent returns errors that match the same sentinels with errors.Is.
var workerKinds = map[string]error{
	"corrupt":     ErrCorrupt,
	"encrypted":   ErrEncrypted,
	"no_text":     ErrNoText,
	"too_large":   ErrTooLarge,
	"type":        ErrTypeMismatch,
	"unsupported": ErrUnsupportedType,
}

func serveWorker(in io.Reader, out io.Writer) error {
	var req workerRequest
	if err := gob.NewDecoder(in).Decode(&req); err != nil {
		return fmt.Errorf("read the request: %w", err)
	}
	var resp workerResponse
	var err error
	if req.Warm {
		_, err = pdfPool(req.Limits.orDefault().PDFMemoryMB)
	} else {
		// No deadline here: the parent kills this process when its own ends.
		resp.Doc, err = req.Limits.orDefault().pdfInProcess(context.Background(), req.Data)
	}
	if err != nil {
		resp.Doc = knowledge.Document{}
		resp.Kind, resp.Message = "other", err.Error()
		for name, sentinel := range workerKinds {
			if errors.Is(err, sentinel) {
				resp.Kind = name
				break
			}
		}
	}
	return gob.NewEncoder(out).Encode(resp)
}

// workerError is an error the child reported: its text as it was, matching
// the same sentinel.
type workerError struct {
	kind error
	msg  string
}

func (e *workerError) Error() string { return e.msg }
func (e *workerError) Unwrap() error { return e.kind }

var worker struct {
	once sync.Once
	exe  string
	// slots bound the children alive at once, as pdfInstances bounds the
	// PDFium instances of one process.
	slots chan struct{}
}

// workerExecutable returns the program to start as the PDF worker, or false
// when there is none (os.Executable fails): then PDFium runs in this process.
func workerExecutable() (string, bool) {
	worker.once.Do(func() {
		worker.slots = make(chan struct{}, pdfInstances)
		// On Linux /proc/self/exe is this very program even when its file
		// was replaced or removed since (a deploy), so start that.
		if runtime.GOOS == "linux" {
			if _, err := os.Stat("/proc/self/exe"); err == nil {
				worker.exe = "/proc/self/exe"
				return
			}
		}
		if exe, err := os.Executable(); err == nil {
			worker.exe = exe
		}
	})
	return worker.exe, worker.exe != ""
}

// workerCacheDir is the compilation cache the children use: the one set with
// UseCompilationCache, else one per user in the temporary directory, so that
// PDFium is compiled once per machine rather than once per document.
func workerCacheDir() string {
	engine.mu.Lock()
	defer engine.mu.Unlock()
	if engine.dir != "" {
		return engine.dir
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("companin-pdfium-cache-%d", os.Getuid()))
}

// workerWaitDelay bounds how long the parent waits for a killed child's
// output to end.
const workerWaitDelay = 2 * time.Second

// pdfInChild extracts the PDF in a child process, killed when ctx ends.
func (l Limits) pdfInChild(ctx context.Context, exe string, data []byte) (knowledge.Document, error) {
	var resp workerResponse
	// The text comes back as gob: at most 4 bytes a character, plus per
	// block a few bytes of framing, kind, level and page.
	maxOut := int64(l.MaxChars)*4 + int64(l.MaxPages)*4096 + 1<<20
	err := runWorker(ctx, exe, workerRequest{Limits: l, Data: data}, maxOut, &resp)
	if err != nil {
		return knowledge.Document{}, err
	}
	return resp.Doc, responseError(resp)
}

func responseError(resp workerResponse) error {
	switch resp.Kind {
	case "":
		return nil
	case "other":
		return errors.New(resp.Message)
	}
	return &workerError{kind: workerKinds[resp.Kind], msg: resp.Message}
}

// warmChild has a child compile PDFium into the compilation cache (or find it
// there), so that the first document does not wait for that.
func warmChild(exe string) error {
	var resp workerResponse
	if err := runWorker(context.Background(), exe, workerRequest{Limits: DefaultLimits, Warm: true}, 1<<20, &resp); err != nil {
		return err
	}
	if err := responseError(resp); err != nil {
		return fmt.Errorf("start the PDF engine: %w", err)
	}
	return nil
}

// runWorker starts one child with req, reads at most maxOut bytes of its
// answer into resp, and waits for it to end. A child that is killed, crashes
// or answers too much fails the document with the reason: the same file
// would do the same again, so it is not worth a retry.
func runWorker(ctx context.Context, exe string, req workerRequest, maxOut int64, resp *workerResponse) error {
	select {
	case worker.slots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("waiting to read the PDF: %w", ctx.Err())
	}
	defer func() { <-worker.slots }()

	var in bytes.Buffer
	if err := gob.NewEncoder(&in).Encode(req); err != nil {
		return fmt.Errorf("start the PDF engine: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe)
	cmd.Args = []string{"companin-pdf-worker"}
	cmd.Env = append(os.Environ(), workerEnv+"=1", workerCacheEnv+"="+workerCacheDir())
	cmd.Stdin = &in
	stderr := &headBuffer{max: 4096}
	cmd.Stderr = stderr
	cmd.WaitDelay = workerWaitDelay
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("start the PDF engine: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the PDF engine: %w", err)
	}
	out, readErr := io.ReadAll(io.LimitReader(stdout, maxOut+1))
	tooMuch := int64(len(out)) > maxOut
	if tooMuch {
		_ = cmd.Process.Kill()
	}
	waitErr := cmd.Wait()
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("reading the PDF was stopped (its time is up or the server is stopping): %w", ctx.Err())
	case tooMuch:
		return fmt.Errorf("%w: the PDF's text is more than %d MB; split it into smaller files and upload them separately", ErrTooLarge, maxOut>>20)
	case waitErr != nil || readErr != nil:
		reason := waitErr
		if reason == nil {
			reason = readErr
		}
		detail := firstLine(stderr.String())
		if detail != "" {
			detail = ": " + detail
		}
		return fmt.Errorf("%w: the PDF engine stopped on this file (%v%s); re-export it with \"Save as PDF\" or split it, and upload again", ErrCorrupt, reason, detail)
	}
	if err := gob.NewDecoder(bytes.NewReader(out)).Decode(resp); err != nil {
		return fmt.Errorf("%w: the PDF engine gave no readable answer on this file (%v); re-export it with \"Save as PDF\" and upload again", ErrCorrupt, err)
	}
	return nil
}

// headBuffer keeps the first max bytes written to it and drops the rest.
type headBuffer struct {
	max int
	buf bytes.Buffer
}

func (b *headBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *headBuffer) String() string { return b.buf.String() }

// firstLine returns the first non-empty line of a child's error output (a Go
// runtime's fatal error names its cause there), trimmed to a readable length.
func firstLine(s string) string {
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			if len(line) > 200 {
				line = line[:200]
			}
			return line
		}
	}
	return ""
}
