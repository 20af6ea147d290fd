package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeWithoutDatabaseURL runs the README's first command as a new user
// would: no DATABASE_URL, so serve starts its own PostgreSQL under the data
// directory. Short commands share that server while serve runs; the data
// survives a clean stop and a SIGKILL, and a killed serve takes its
// PostgreSQL with it.
func TestServeWithoutDatabaseURL(t *testing.T) {
	in := newInstance(t)
	dataDir := t.TempDir()
	var env []string
	for _, kv := range in.env {
		if !strings.HasPrefix(kv, "DATABASE_URL=") && !strings.HasPrefix(kv, "COMPANIN_DATA_DIR=") {
			env = append(env, kv)
		}
	}
	in.env = append(env, "COMPANIN_DATA_DIR="+dataDir)

	s := in.serve()
	in.waitReady()
	org := in.createOrg("Embedded") // shares the running server's PostgreSQL
	if status, body := in.request("GET", "/api/v1/events", org, nil); status != 200 {
		t.Fatalf("GET /api/v1/events: %d %s", status, body)
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-s.done; err != nil {
		t.Fatalf("serve after SIGTERM: %v\n%s", err, s.logs.String())
	}
	s.done <- nil
	pidFile := filepath.Join(dataDir, "postgres", "data", "postmaster.pid")
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Fatalf("PostgreSQL still running after serve stopped: %v", err)
	}

	// Short commands start the embedded server themselves when no serve runs.
	if n := len(in.export("--organization", org.OrganizationID)); n < 2 {
		t.Fatalf("after a restart the log holds %d events of the organization", n)
	}

	s = in.serve()
	in.waitReady()
	if status, body := in.request("GET", "/api/v1/events", org, nil); status != 200 {
		t.Fatalf("after restart, GET /api/v1/events: %d %s", status, body)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pgPid, _ := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	_ = s.cmd.Process.Kill()
	<-s.done
	s.done <- nil
	for deadline := time.Now().Add(time.Minute); syscall.Kill(pgPid, 0) == nil; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("PostgreSQL (pid %d) outlived the killed serve by a minute", pgPid)
		}
	}
	in.serve()
	in.waitReady()
	if status, body := in.request("GET", "/api/v1/events", org, nil); status != 200 {
		t.Fatalf("after SIGKILL and restart, GET /api/v1/events: %d %s", status, body)
	}
}
