// Package e2etest starts the real companin binary for end-to-end tests, as
// the README says a user would: built from ./cmd/companin, on a fresh
// database, with an organization made by `companin org create`.
package e2etest

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/companin/companin/adapters/postgres/pgtest"
)

// Server is a running `companin serve`, stopped (SIGINT) when the test ends.
type Server struct {
	// Bin is the built binary, for other subcommands.
	Bin string
	// Base is the server's URL, e.g. http://127.0.0.1:43507.
	Base string
	// Env is the environment the server runs with (its database, its address).
	Env []string
}

// Org is what `companin org create` prints.
type Org struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// Start builds the binary from the repository at root, starts it on a fresh
// database with the embedded answer engine, and waits until /readyz answers.
// The server's log is shown when the test fails. extraEnv ("NAME=value")
// comes last, so it overrides the rest.
func Start(t *testing.T, root string, extraEnv ...string) *Server {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "companin")
	build := exec.Command("go", "build", "-o", bin, "./cmd/companin")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	env := append(os.Environ(), "DATABASE_URL="+pgtest.NewDatabase(t), "COMPANIN_ADDR="+addr,
		"COMPANIN_LLM_BASE_URL=", "COMPANIN_LLM_MODEL=", "COMPANIN_LLM_API_KEY=")
	env = append(env, extraEnv...)

	ctx, cancel := context.WithCancel(context.Background())
	serve := exec.CommandContext(ctx, bin, "serve")
	serve.Env = env
	var logs bytes.Buffer
	serve.Stdout, serve.Stderr = &logs, &logs
	serve.Cancel = func() error { return serve.Process.Signal(os.Interrupt) }
	serve.WaitDelay = 15 * time.Second
	if err := serve.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = serve.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	s := &Server{Bin: bin, Base: "http://" + addr, Env: env}
	waitReady(t, s.Base+"/readyz")
	return s
}

// CreateOrg runs `companin org create` against the server's database.
func (s *Server) CreateOrg(t *testing.T, name string, allowedOrigins ...string) Org {
	t.Helper()
	args := []string{"org", "create", "--name", name}
	for _, o := range allowedOrigins {
		args = append(args, "--allowed-origin", o)
	}
	create := exec.Command(s.Bin, args...)
	create.Env = s.Env
	out, err := create.Output()
	if err != nil {
		t.Fatalf("org create: %v", err)
	}
	var org Org
	if err := json.Unmarshal(out, &org); err != nil {
		t.Fatalf("org create printed %q: %v", out, err)
	}
	return org
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("server not ready at %s", url)
}
