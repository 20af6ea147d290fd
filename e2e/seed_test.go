// Package e2e runs the customer-facing API reference's JavaScript use cases
// with Node against the real binary, started as the README says.
package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/companin/companin/e2e/e2etest"
)

func TestSeedUseCasesWithNode(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	if testing.Short() {
		t.Skip("builds and starts the server")
	}
	srv := e2etest.Start(t, "..")
	base := srv.Base
	org := srv.CreateOrg(t, "Seed E2E")

	run := exec.Command(node, "seed_usecases.mjs")
	run.Env = append(os.Environ(), "BASE_URL="+base, "CLIENT_ID="+org.ClientID, "CLIENT_SECRET="+org.ClientSecret,
		"PDF="+filepath.Join("..", "adapters", "extract", "testdata", "manual.pdf"))
	res, err := run.CombinedOutput()
	t.Logf("node:\n%s", res)
	if err != nil {
		t.Fatalf("use cases: %v", err)
	}
}
