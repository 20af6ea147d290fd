package pgtest

import (
	"context"
	"fmt"
	"os"

	"github.com/companin/companin/adapters/postgres/embedded"
)

// embeddedServer keeps the server reachable for the life of the test binary:
// once unreachable, the garbage collector would close the watcher's pipe and
// the watcher would stop the server in the middle of the tests.
var embeddedServer *embedded.Server

// startEmbedded starts a PostgreSQL server for this test binary when
// DATABASE_URL is unset: the same embedded server `companin serve` uses, in a
// temporary directory, tuned for speed (fsync off). Nothing has to stop it:
// its watcher process stops it and deletes the directory when the test binary
// exits, however it exits (a TestMain exists per package, not per `go test`
// run, so there is no better place to hang that).
func startEmbedded() (string, error) {
	dir, err := os.MkdirTemp("", "companin-pgtest-")
	if err != nil {
		return "", fmt.Errorf("embedded postgres: %w", err)
	}
	s, err := embedded.Start(context.Background(), embedded.Config{DataDir: dir, Ephemeral: true})
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", err
	}
	embeddedServer = s
	return s.URL(), nil
}
