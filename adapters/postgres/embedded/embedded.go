// Package embedded runs a PostgreSQL server of Companin's own, so that
// `companin serve` and the tests work on a machine where nobody has set up a
// database: no DATABASE_URL, one command.
//
// It uses the machine's PostgreSQL binaries (Debian's /usr/lib/postgresql/N,
// or initdb on PATH) through github.com/fergusstrange/embedded-postgres, and
// adds what a server process needs on top of that library:
//
//   - root works: PostgreSQL refuses to run as root, so when we are root the
//     binaries run through generated wrapper scripts as an unprivileged user
//     (see runas.go);
//   - the data directory is kept across restarts, locked against a second
//     process, and a server left behind by a killed process (or its stale
//     postmaster.pid) does not block the next start;
//   - the server stops when the process that started it ends, even by
//     SIGKILL: a small watcher process holds a pipe to us and stops the
//     server when the pipe closes;
//   - the port falls back to a free one when 5432 is taken.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	embeddedpostgres "github.com/fergusstrange/embedded-postgres"
)

// DefaultPort is tried first, so that a developer's psql finds the server
// where it usually looks; when it is taken, any free port is used.
const DefaultPort = 5432

const (
	superuser = "postgres"
	password  = "postgres"
	database  = "postgres"
)

// Config says where and how to run the server.
type Config struct {
	// DataDir holds everything the server keeps: the cluster
	// (DataDir/postgres/data), its log (DataDir/postgres/postgres.log), the
	// generated wrapper scripts and a lock. It is created when missing.
	DataDir string
	// Port is the TCP port on 127.0.0.1; 0 means DefaultPort when it is free
	// (any free port for an ephemeral server), else any free port.
	Port int
	// Ephemeral trades durability for speed (fsync off) and deletes DataDir
	// once the server has stopped. For tests.
	Ephemeral bool
	// UseRunning connects to the server another process (a running
	// `companin serve`) keeps on DataDir, instead of waiting for it to end.
	// For short commands: migrate, org create, events export.
	UseRunning bool
	// Logf reports what happens (nil: silent).
	Logf func(format string, args ...any)
	// BinaryRepositoryURL is where PostgreSQL binaries are downloaded from
	// when the machine has none (embedded-postgres's Maven repository of
	// zonky binaries); empty: the library's default, Maven Central.
	BinaryRepositoryURL string
}

// Server is a running PostgreSQL. Stop it with Stop; if the process ends
// without doing so, the watcher stops it.
type Server struct {
	url     string
	pg      *embeddedpostgres.EmbeddedPostgres
	lock    *os.File
	guard   *os.File // write end of the watcher's pipe
	watcher *exec.Cmd
	dir     string
	logFile string
}

// Start starts (or, for an existing DataDir, restarts) the server and waits
// until it accepts connections.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if cfg.DataDir == "" {
		return nil, errors.New("embedded postgres: no data directory")
	}
	dir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("embedded postgres: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded postgres: %w", err)
	}
	lock, url, err := lockDir(ctx, dir, cfg.UseRunning)
	if err != nil {
		return nil, err
	}
	if url != "" {
		logf("embedded postgres: using the server another process runs in %s", dir)
		return &Server{url: url}, nil
	}
	s := &Server{lock: lock, dir: dir}
	ok := false
	defer func() {
		if !ok {
			_ = lock.Close()
		}
	}()

	bins, err := findBinaries(filepath.Join(dir, "dist", "bin"))
	if errors.Is(err, errNoBinaries) {
		// A developer's laptop with Go and no PostgreSQL: let the library
		// fetch its binaries once, into dir/dist.
		if err := download(ctx, dir, cfg.BinaryRepositoryURL, logf); err != nil {
			return nil, err
		}
		bins, err = findBinaries(filepath.Join(dir, "dist", "bin"))
	}
	if err != nil {
		return nil, err
	}
	pgDir := filepath.Join(dir, "postgres")
	pgData := filepath.Join(pgDir, "data")
	s.logFile = filepath.Join(pgDir, "postgres.log")
	if err := checkDataVersion(pgData, bins.major); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(pgDir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded postgres: %w", err)
	}
	run, err := chooseRunner(dir, pgDir)
	if err != nil {
		return nil, err
	}
	if err := writeWrappers(dir, bins, run, s.logFile, cfg.Ephemeral); err != nil {
		return nil, err
	}
	pgCtl := filepath.Join(dir, "bin", "pg_ctl")
	if err := clearStaleServer(ctx, pgCtl, pgData, logf); err != nil {
		return nil, err
	}

	params := map[string]string{
		"listen_addresses":        "127.0.0.1",
		"unix_socket_directories": "",
		"max_connections":         "300",
	}
	if cfg.Ephemeral {
		params["fsync"] = "off"
		params["synchronous_commit"] = "off"
		params["full_page_writes"] = "off"
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := choosePort(cfg.Port, attempt, cfg.Ephemeral)
		if err != nil {
			return nil, err
		}
		pg := embeddedpostgres.NewDatabase(embeddedpostgres.DefaultConfig().
			Version(embeddedpostgres.PostgresVersion(bins.major + ".0.0")).
			BinariesPath(dir). // our wrappers: dir/bin/{pg_ctl,initdb}
			RuntimePath(filepath.Join(dir, "run")).
			CachePath(filepath.Join(dir, "cache")).
			DataPath(pgData).
			Port(uint32(port)).
			Username(superuser).Password(password).Database(database).
			Locale("C").Encoding("UTF8").
			StartParameters(params).
			StartTimeout(90 * time.Second).
			Logger(io.Discard))
		logf("embedded postgres: starting PostgreSQL %s (%s) in %s on 127.0.0.1:%d", bins.major, run.describe(), pgData, port)
		if err := pg.Start(); err != nil {
			lastErr = fmt.Errorf("embedded postgres: start: %w%s", err, tail(s.logFile))
			if cfg.Port == 0 && portProblem(err, s.logFile) {
				continue // someone took the port between our check and the bind
			}
			return nil, lastErr
		}
		s.pg = pg
		s.url = fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", superuser, password, port, database)
		break
	}
	if s.pg == nil {
		return nil, lastErr
	}
	remove := ""
	if cfg.Ephemeral {
		remove = dir
	}
	if err := s.startWatcher(pgCtl, pgData, remove); err != nil {
		_ = s.pg.Stop()
		return nil, err
	}
	ok = true
	live.Store(s, true)
	return s, nil
}

// live keeps every running server reachable until it is stopped: a Server
// dropped by its caller must not be garbage-collected, or the finalizers of
// its files would close the watcher's pipe (stopping the server) and release
// the directory lock.
var live sync.Map

// URL is the connection string of the server's postgres database, as a
// superuser.
func (s *Server) URL() string { return s.url }

// Stop shuts the server down (fast: open transactions are rolled back) and
// releases the data directory.
func (s *Server) Stop() error {
	if s == nil || s.pg == nil { // stopped, or another process's server
		return nil
	}
	err := s.pg.Stop()
	if err != nil {
		err = fmt.Errorf("embedded postgres: stop: %w%s", err, tail(s.logFile))
	}
	s.pg = nil
	live.Delete(s)
	// The watcher wakes up, finds the server stopped, removes an ephemeral
	// data directory and exits.
	_ = s.guard.Close()
	done := make(chan struct{})
	go func() { _ = s.watcher.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
	}
	_ = s.lock.Close()
	return err
}

// startWatcher starts the process that stops the server once we are gone:
// it blocks reading a pipe whose only writer is this process, so the read
// returns when this process ends, however it ends. It also inherits the data
// directory's lock, so that a successor waits until the server has stopped.
func (s *Server) startWatcher(pgCtl, pgData, remove string) error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("embedded postgres: watcher: %w", err)
	}
	const script = `read _ignored; "$0" stop -D "$1" -m fast -w >/dev/null 2>&1; if [ -n "$2" ]; then rm -rf "$2"; fi`
	cmd := exec.Command("/bin/sh", "-c", script, pgCtl, pgData, remove)
	cmd.Stdin = r
	cmd.ExtraFiles = []*os.File{s.lock}
	cmd.Dir = "/"
	// Its own process group: a Ctrl-C meant for us must not kill the watcher
	// before it has stopped the server.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = r.Close()
		_ = w.Close()
		return fmt.Errorf("embedded postgres: watcher: %w", err)
	}
	_ = r.Close()
	s.guard, s.watcher = w, cmd
	return nil
}

// runningServer returns the URL of the server another process (which holds
// the lock) runs on dir, if its postmaster.pid says it is ready.
func runningServer(dir string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(dir, "postgres", "data", "postmaster.pid"))
	if err != nil {
		return "", false
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 8 || strings.TrimSpace(lines[7]) != "ready" {
		return "", false
	}
	port, err := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err != nil {
		return "", false
	}
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", superuser, password, port, database), true
}

// lockDir takes the data directory's lock. A predecessor that was killed
// leaves its watcher holding the lock until the old server has stopped, so
// waiting a while is normal; another live process is an error. With
// useRunning, it returns instead the URL of the server the lock holder runs,
// as soon as that server is ready (it may still be starting).
func lockDir(ctx context.Context, dir string, useRunning bool) (*os.File, string, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("embedded postgres: %w", err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, "", nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			_ = f.Close()
			return nil, "", fmt.Errorf("embedded postgres: lock %s: %w", dir, err)
		}
		if useRunning {
			if url, ok := runningServer(dir); ok {
				_ = f.Close()
				return nil, url, nil
			}
		}
		if time.Now().After(deadline) {
			_ = f.Close()
			return nil, "", fmt.Errorf("embedded postgres: %s is in use by another companin process", dir)
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// checkDataVersion refuses a cluster made by another major version: the
// library would otherwise wipe it and start afresh.
func checkDataVersion(pgData, major string) error {
	b, err := os.ReadFile(filepath.Join(pgData, "PG_VERSION"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("embedded postgres: %w", err)
	}
	if v := strings.TrimSpace(string(b)); v != major {
		return fmt.Errorf("embedded postgres: %s holds a PostgreSQL %s cluster but the binaries are PostgreSQL %s; upgrade it with pg_upgrade or move it away", pgData, v, major)
	}
	return nil
}

// clearStaleServer makes sure no server of an earlier process still runs on
// pgData, and that a postmaster.pid left by a crash cannot block the start.
// We hold the directory lock, so such a server is an orphan.
func clearStaleServer(ctx context.Context, pgCtl, pgData string, logf func(string, ...any)) error {
	pidFile := filepath.Join(pgData, "postmaster.pid")
	b, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("embedded postgres: %w", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if pid > 0 && isPostgres(pid) {
		logf("embedded postgres: stopping the server a previous process left running (pid %d)", pid)
		out, err := exec.CommandContext(ctx, pgCtl, "stop", "-D", pgData, "-m", "fast", "-w").CombinedOutput()
		if err != nil && isPostgres(pid) {
			return fmt.Errorf("embedded postgres: stop orphaned server %d: %v: %s", pid, err, out)
		}
		return nil
	}
	logf("embedded postgres: removing stale %s", pidFile)
	if err := os.Remove(pidFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("embedded postgres: %w", err)
	}
	return nil
}

func isPostgres(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return true // alive and we cannot tell: let PostgreSQL judge
	}
	return strings.HasPrefix(strings.TrimSpace(string(comm)), "postgres")
}

// choosePort returns the configured port, or DefaultPort when free, else a
// free port; retries (attempt > 0) and ephemeral servers, which nobody
// connects to by hand, always take a fresh free port.
func choosePort(configured, attempt int, ephemeral bool) (int, error) {
	if configured != 0 {
		return configured, nil
	}
	if attempt == 0 && !ephemeral && portFree(DefaultPort) {
		return DefaultPort, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("embedded postgres: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func portFree(port int) bool {
	for _, host := range []string{"127.0.0.1", "localhost"} {
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return false
		}
		_ = l.Close()
	}
	return true
}

func portProblem(err error, logFile string) bool {
	msg := err.Error()
	if b, e := os.ReadFile(logFile); e == nil {
		msg += string(b)
	}
	return strings.Contains(msg, "already listening") || strings.Contains(msg, "could not bind") ||
		strings.Contains(msg, "Address already in use")
}

// tail returns the end of the server's log, to explain a failure.
func tail(logFile string) string {
	b, err := os.ReadFile(logFile)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\n--- " + logFile + " ---\n" + string(b)
}

// Redacted returns u without its password, for logs.
func Redacted(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable url)"
	}
	return p.Redacted()
}
