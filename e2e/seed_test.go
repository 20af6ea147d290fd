// Package e2e runs the customer-facing API reference's JavaScript use cases
// with Node against the real binary, started as the README says.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/companin/companin/adapters/postgres/pgtest"
)

func TestSeedUseCasesWithNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	if testing.Short() {
		t.Skip("builds and starts the server")
	}
	bin := filepath.Join(t.TempDir(), "companin")
	build := exec.Command("go", "build", "-o", bin, "./cmd/companin")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dbURL := pgtest.NewDatabase(t)
	addr := freeAddr(t)
	env := append(os.Environ(), "DATABASE_URL="+dbURL, "COMPANIN_ADDR="+addr,
		"COMPANIN_LLM_BASE_URL=", "COMPANIN_LLM_MODEL=", "COMPANIN_LLM_API_KEY=")

	ctx, cancel := context.WithCancel(context.Background())
	serve := exec.CommandContext(ctx, bin, "serve")
	serve.Env = env
	var logs bytes.Buffer
	serve.Stdout, serve.Stderr = &logs, &logs
	serve.Cancel = func() error { return serve.Process.Signal(os.Interrupt) }
	serve.WaitDelay = 15 * time.Second
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = serve.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	base := "http://" + addr
	waitReady(t, base+"/readyz")

	create := exec.Command(bin, "org", "create", "--name", "Seed E2E")
	create.Env = env
	out, err := create.Output()
	if err != nil {
		t.Fatalf("org create: %v", err)
	}
	var org struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal(out, &org); err != nil {
		t.Fatalf("org create printed %q: %v", out, err)
	}

	run := exec.Command(node, "seed_usecases.mjs")
	run.Env = append(os.Environ(), "BASE_URL="+base, "CLIENT_ID="+org.ClientID, "CLIENT_SECRET="+org.ClientSecret,
		"PDF="+filepath.Join("..", "adapters", "extract", "testdata", "manual.pdf"))
	res, err := run.CombinedOutput()
	t.Logf("node:\n%s", res)
	if err != nil {
		t.Fatalf("use cases: %v", err)
	}
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
	t.Fatal(fmt.Sprintf("server not ready at %s", url))
}
