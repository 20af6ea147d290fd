package extract

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/companin/companin/domain/knowledge"
)

// PDFium runs in child processes: the same executable, started again with
// workerEnv set. PDFium is WebAssembly compiled to native code by wazero, and
// Go cannot preempt a goroutine inside such code: when the garbage collector
// needs to stop the world during one long PDFium call (a content stream that
// inflates to 100 MB takes seconds), the whole process would wait for that
// call, every other organization's requests and job leases with it. In a
// child, such a call stops only the child.
//
// Protocol: the parent writes gob-encoded workerRequests on the child's
// stdin; for each the child writes one answer on stdout: its length (8 bytes,
// big-endian), then a gob-encoded workerResponse. A child reads one document
// at a time on a fresh PDFium instance, and stays to read the next (so only
// the first document pays for starting it and loading PDFium's compiled
// code), until it has read workerDocuments documents or waited workerIdle
// for one. A child whose document's context ends, that crashes, or that
// answers too much is killed and not used again.
const (
	workerEnv      = "COMPANIN_PDF_WORKER"
	workerCacheEnv = "COMPANIN_PDF_WORKER_CACHE"
	// workerIdle is how long an idle child is kept for the next document.
	workerIdle = time.Minute
	// workerDocuments is how many documents one child reads at most.
	workerDocuments = 200
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
	lowerPriority()
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

// serveWorker answers requests until its input ends.
func serveWorker(in io.Reader, out io.Writer) error {
	dec := gob.NewDecoder(bufio.NewReader(in))
	for {
		var req workerRequest
		if err := dec.Decode(&req); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("read the request: %w", err)
		}
		resp := serveRequest(req)
		var msg bytes.Buffer
		msg.Write(make([]byte, 8))
		if err := gob.NewEncoder(&msg).Encode(resp); err != nil {
			return fmt.Errorf("write the answer: %w", err)
		}
		binary.BigEndian.PutUint64(msg.Bytes(), uint64(msg.Len()-8))
		if _, err := out.Write(msg.Bytes()); err != nil {
			return fmt.Errorf("write the answer: %w", err)
		}
		// Give the document's memory back before waiting for the next one.
		req, resp, msg = workerRequest{}, workerResponse{}, bytes.Buffer{}
		debug.FreeOSMemory()
	}
}

func serveRequest(req workerRequest) workerResponse {
	var resp workerResponse
	var err error
	l := req.Limits.orDefault()
	if req.Warm {
		_, err = pdfPool(l.PDFMemoryMB)
	} else {
		// No deadline here: the parent kills this process when its own ends.
		resp.Doc, err = l.pdfInProcess(context.Background(), req.Data)
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
	return resp
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
	mu    sync.Mutex
	idle  []*pdfChild
}

// pdfChild is one running worker process.
type pdfChild struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	enc    *gob.Encoder
	stdout *os.File
	stderr *headBuffer
	exited chan struct{} // closed once the process has ended
	err    error         // how it ended, once exited is closed
	served int
	reap   *time.Timer // ends it when idle too long
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
// PDFium is compiled once per machine rather than once per child.
func workerCacheDir() string {
	engine.mu.Lock()
	defer engine.mu.Unlock()
	if engine.dir != "" {
		return engine.dir
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("companin-pdfium-cache-%d", os.Getuid()))
}

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
// there) and keeps it for the first document.
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

// runWorker has a child (an idle one, else a new one) answer req, reading at
// most maxOut bytes of its answer into resp. A child that is killed, crashes
// or answers too much fails the document with the reason: the same file
// would do the same again, so it is not worth a retry.
func runWorker(ctx context.Context, exe string, req workerRequest, maxOut int64, resp *workerResponse) error {
	select {
	case worker.slots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("waiting to read the PDF: %w", ctx.Err())
	}
	defer func() { <-worker.slots }()

	c := takeIdleChild()
	if c == nil {
		var err error
		if c, err = startChild(exe); err != nil {
			return fmt.Errorf("start the PDF engine: %w", err)
		}
	}
	kill := func() { _ = c.cmd.Process.Kill() }
	stop := context.AfterFunc(ctx, kill)
	n, err := c.ask(req, maxOut, resp)
	if !stop() {
		<-c.exited
		return fmt.Errorf("reading the PDF was stopped (its time is up or the server is stopping): %w", ctx.Err())
	}
	switch {
	case errors.Is(err, errTooMuch):
		kill()
		<-c.exited
		return fmt.Errorf("%w: the PDF's text is more than %d MB (%d MB); split it into smaller files and upload them separately", ErrTooLarge, maxOut>>20, n>>20)
	case err != nil:
		kill() // if it still runs, it is not to be trusted
		<-c.exited
		detail := firstLine(c.stderr.String())
		if detail != "" {
			detail = ": " + detail
		}
		reason := c.err
		if reason == nil {
			reason = err
		}
		return fmt.Errorf("%w: the PDF engine stopped on this file (%v%s); re-export it with \"Save as PDF\" or split it, and upload again", ErrCorrupt, reason, detail)
	}
	c.served++
	keepIdleChild(c)
	return nil
}

var errTooMuch = errors.New("answer too large")

// ask sends req and reads the answer; it returns the answer's length.
func (c *pdfChild) ask(req workerRequest, maxOut int64, resp *workerResponse) (int64, error) {
	if err := c.enc.Encode(req); err != nil {
		return 0, err
	}
	var size [8]byte
	if _, err := io.ReadFull(c.stdout, size[:]); err != nil {
		return 0, err
	}
	n := binary.BigEndian.Uint64(size[:])
	if n > uint64(maxOut) {
		return int64(min(n, 1<<62)), errTooMuch
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(c.stdout, msg); err != nil {
		return 0, err
	}
	if err := gob.NewDecoder(bytes.NewReader(msg)).Decode(resp); err != nil {
		return 0, fmt.Errorf("no readable answer: %w", err)
	}
	return int64(n), nil
}

func startChild(exe string) (*pdfChild, error) {
	c := &pdfChild{stderr: &headBuffer{max: 4096}, exited: make(chan struct{})}
	c.cmd = exec.Command(exe)
	c.cmd.Args = []string{"companin-pdf-worker"}
	c.cmd.Env = append(os.Environ(), workerEnv+"=1", workerCacheEnv+"="+workerCacheDir())
	c.cmd.Stderr = c.stderr
	stdin, err := c.cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	// Our own pipe rather than StdoutPipe: Wait (on its own goroutine here)
	// must not close it under a reader.
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	c.cmd.Stdout = w
	err = c.cmd.Start()
	_ = w.Close()
	if err != nil {
		_ = r.Close()
		return nil, err
	}
	c.stdin, c.enc, c.stdout = stdin, gob.NewEncoder(stdin), r
	go func() {
		c.err = c.cmd.Wait()
		_ = r.Close()
		close(c.exited)
	}()
	return c, nil
}

func takeIdleChild() *pdfChild {
	worker.mu.Lock()
	defer worker.mu.Unlock()
	for len(worker.idle) > 0 {
		c := worker.idle[len(worker.idle)-1]
		worker.idle = worker.idle[:len(worker.idle)-1]
		c.reap.Stop()
		select {
		case <-c.exited: // ended on its own: start another
			continue
		default:
			return c
		}
	}
	return nil
}

func keepIdleChild(c *pdfChild) {
	if c.served >= workerDocuments {
		_ = c.stdin.Close() // it ends when its input does
		return
	}
	worker.mu.Lock()
	defer worker.mu.Unlock()
	worker.idle = append(worker.idle, c)
	c.reap = time.AfterFunc(workerIdle, func() {
		worker.mu.Lock()
		defer worker.mu.Unlock()
		for i, o := range worker.idle {
			if o == c {
				worker.idle = append(worker.idle[:i], worker.idle[i+1:]...)
				_ = c.stdin.Close()
				return
			}
		}
	})
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
