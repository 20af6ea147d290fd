package main

import (
	"bufio"
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeStopsWhenItsParentDies plays `go run ./cmd/companin serve` under a
// process manager that SIGTERMs `go run` (which dies without passing the
// signal on): the server notices it lost its parent, shuts down and stops
// its embedded PostgreSQL, leaving nothing running.
func TestServeStopsWhenItsParentDies(t *testing.T) {
	in := newInstance(t)
	dataDir := t.TempDir()
	var env []string
	for _, kv := range in.env {
		if !strings.HasPrefix(kv, "DATABASE_URL=") && !strings.HasPrefix(kv, "COMPANIN_DATA_DIR=") {
			env = append(env, kv)
		}
	}
	// The parent starts the server and waits for it, as go run does.
	parent := exec.Command("/bin/sh", "-c", `"$0" serve 2>"$1" & echo $!; wait`, in.bin, filepath.Join(t.TempDir(), "serve.log"))
	parent.Env = append(env, "COMPANIN_DATA_DIR="+dataDir)
	stdout, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("server pid %q", line)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	in.addr = addrOf(env)
	waitFor(t, "the server answers /healthz", func() bool {
		resp, err := http.Get("http://" + in.addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	pidFile := filepath.Join(dataDir, "postgres", "data", "postmaster.pid")
	if _, err := os.Stat(pidFile); err != nil {
		t.Fatalf("the embedded PostgreSQL is not running: %v", err)
	}

	if err := parent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = parent.Wait()
	deadline := time.Now().Add(time.Minute)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("the server (pid %d) still runs a minute after its parent died", pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := http.Get("http://" + in.addr + "/healthz"); err == nil {
		t.Fatal("something still answers on the server's port")
	}
	for deadline := time.Now().Add(time.Minute); ; {
		if _, err := os.Stat(pidFile); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the embedded PostgreSQL still runs after the server stopped")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// alive tells whether pid runs (a zombie waiting for its new parent to reap
// it has stopped running).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	// pid (comm) state ...: the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || (b[i+2] != 'Z' && b[i+2] != 'X')
}

func addrOf(env []string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "COMPANIN_ADDR="); ok {
			return v
		}
	}
	return ""
}
