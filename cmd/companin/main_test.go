package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/companin/companin/adapters/postgres/pgtest"
)

// These tests run the real binary, as an operator would: built once per
// test run, against a fresh database of their own.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func companinBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "companin-bin-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "companin")
		// go test puts its own GOROOT/bin first on PATH.
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// instance is the environment of one companin deployment: a database of its
// own and a port.
type instance struct {
	t    *testing.T
	bin  string
	db   string
	addr string
	env  []string
}

func newInstance(t *testing.T) *instance {
	t.Helper()
	in := &instance{t: t, bin: companinBinary(t), db: pgtest.NewDatabase(t), addr: freeAddr(t)}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DATABASE_URL=") && !strings.HasPrefix(kv, "COMPANIN_") {
			in.env = append(in.env, kv)
		}
	}
	in.env = append(in.env, "DATABASE_URL="+in.db, "COMPANIN_ADDR="+in.addr, "COMPANIN_DATA_DIR="+t.TempDir(),
		"COMPANIN_RATE_LIMIT_PER_HOUR=1000000") // the tests poll
	return in
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// cli runs one command and returns its stdout, stderr and exit status.
func (in *instance) cli(args ...string) (string, string, int) {
	in.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, in.bin, args...)
	cmd.Env = in.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		in.t.Fatalf("companin %s: %v", strings.Join(args, " "), err)
	}
	return stdout.String(), stderr.String(), code
}

func (in *instance) mustCLI(args ...string) string {
	in.t.Helper()
	out, errOut, code := in.cli(args...)
	if code != 0 {
		in.t.Fatalf("companin %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
	}
	return out
}

type server struct {
	cmd  *exec.Cmd
	logs *bytes.Buffer
	done chan error
}

// serve starts `companin serve` and waits until /healthz answers.
func (in *instance) serve() *server {
	in.t.Helper()
	cmd := exec.Command(in.bin, "serve")
	cmd.Env = in.env
	s := &server{cmd: cmd, logs: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		in.t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait() }()
	in.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-s.done
		if in.t.Failed() {
			in.t.Logf("server log:\n%s", s.logs.String())
		}
	})
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get("http://" + in.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case err := <-s.done:
			s.done <- err
			in.t.Fatalf("serve exited before answering /healthz: %v\n%s", err, s.logs.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("serve never answered /healthz:\n%s", s.logs.String())
		}
	}
}

// waitReady polls /readyz until it says 200 (database up, projections caught up).
func (in *instance) waitReady() {
	in.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get("http://" + in.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("never ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type credentials struct {
	OrganizationID string `json:"organization_id"`
	ClientID       string `json:"client_id"`
	ClientSecret   string `json:"client_secret"`
}

func (in *instance) createOrg(name string) credentials {
	in.t.Helper()
	out := in.mustCLI("org", "create", "--name", name, "--allowed-origin", "https://shop.example")
	var c credentials
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		in.t.Fatalf("org create printed %q: %v", out, err)
	}
	if dec.More() {
		in.t.Fatalf("org create printed more than one JSON object: %q", out)
	}
	if c.OrganizationID == "" || c.ClientID == "" || c.ClientSecret == "" {
		in.t.Fatalf("org create printed %q", out)
	}
	return c
}

func (in *instance) request(method, path string, c credentials, body any) (int, []byte) {
	in.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, "http://"+in.addr+path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", c.ClientID)
	req.Header.Set("X-API-Secret", c.ClientSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		in.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}

type exported struct {
	ID       string          `json:"id"`
	Stream   string          `json:"stream"`
	Version  uint64          `json:"version"`
	Position string          `json:"position"`
	Type     string          `json:"type"`
	Data     json.RawMessage `json:"data"`
	Metadata struct {
		OrganizationID string `json:"organization_id"`
		Actor          string `json:"actor"`
	} `json:"metadata"`
	RecordedAt time.Time `json:"recorded_at"`
}

func (in *instance) export(args ...string) []exported {
	in.t.Helper()
	out := in.mustCLI(append([]string{"events", "export"}, args...)...)
	var events []exported
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e exported
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			in.t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		events = append(events, e)
	}
	return events
}

func TestServeAnswersHealthAndReadinessAndStopsOnSIGTERM(t *testing.T) {
	in := newInstance(t)
	s := in.serve()
	in.waitReady()
	resp, err := http.Get("http://" + in.addr + "/api/v1/no-such-thing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("unknown route: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		s.done <- err
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM:\n%s", err, s.logs.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("serve still running a minute after SIGTERM")
	}
}

func TestCommandLine(t *testing.T) {
	in := newInstance(t)
	in.mustCLI("migrate")
	in.mustCLI("migrate") // again: nothing to do, no error

	acme := in.createOrg("Acme")
	other := in.createOrg("Other")
	if acme.OrganizationID == other.OrganizationID || acme.ClientID == other.ClientID {
		t.Fatal("two organizations share ids")
	}

	all := in.export()
	if len(all) < 4 {
		t.Fatalf("export: %d events, want at least 4 (two organizations with credentials)", len(all))
	}
	for i, e := range all {
		if e.ID == "" || e.Stream == "" || e.Version == 0 || e.Position == "" || e.Type == "" || e.RecordedAt.IsZero() {
			t.Fatalf("event %d incomplete: %+v", i, e)
		}
		if i > 0 && e.Position <= all[i-1].Position {
			t.Fatalf("export out of order at %d: %s after %s", i, e.Position, all[i-1].Position)
		}
		if strings.Contains(string(e.Data), acme.ClientSecret) {
			t.Fatal("the client secret is in the event log")
		}
	}
	created := in.export("--types", "OrganizationCreated")
	if len(created) != 2 || created[0].Metadata.OrganizationID != acme.OrganizationID || created[1].Metadata.OrganizationID != other.OrganizationID {
		t.Fatalf("--types OrganizationCreated: %+v", created)
	}
	if rest := in.export("--after", all[len(all)-1].Position); len(rest) != 0 {
		t.Fatalf("--after the last position: %d events", len(rest))
	}
	if rest := in.export("--after", all[0].Position); len(rest) != len(all)-1 {
		t.Fatalf("--after the first position: %d events, want %d", len(rest), len(all)-1)
	}
	if mine := in.export("--organization", acme.OrganizationID); len(mine) == 0 || len(mine) >= len(all) {
		t.Fatalf("--organization: %d of %d events", len(mine), len(all))
	}

	in.mustCLI("projections", "rebuild")
	in.mustCLI("projections", "rebuild", "organizations")
	if out := in.mustCLI("projections", "parked"); out != "" {
		t.Errorf("projections parked on a healthy log printed %q", out)
	}
	if _, errOut, code := in.cli("projections", "retry", "99"); code != 1 || !strings.Contains(errOut, "not a parked event") {
		t.Errorf("projections retry 99: exit %d, %s", code, errOut)
	}
	for _, args := range [][]string{
		{}, {"bogus"}, {"serve", "extra"}, {"org"}, {"org", "create"}, {"org", "create", "--name"}, {"org", "delete"},
		{"projections"}, {"projections", "rebuild", "no_such_projection"}, {"projections", "rebuild", "a", "b"},
		{"projections", "parked", "x"}, {"projections", "retry"}, {"projections", "retry", "x"}, {"projections", "retry", "1", "2"},
		{"events"}, {"events", "export", "--bogus"},
	} {
		_, errOut, code := in.cli(args...)
		if code != 2 || !strings.Contains(errOut, "Usage:") {
			t.Errorf("companin %q: exit %d, want 2 with the usage; stderr:\n%s", args, code, errOut)
		}
	}

	// The printed credentials work at once against a server, and the
	// rebuilt read models still know them.
	in.serve()
	status, body := in.request("GET", "/api/v1/events?limit=100", acme, nil)
	if status != http.StatusOK {
		t.Fatalf("GET /api/v1/events with the new credentials: %d %s", status, body)
	}
	status, _ = in.request("GET", "/api/v1/events", credentials{ClientID: acme.ClientID, ClientSecret: other.ClientSecret}, nil)
	if status != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %d, want 401", status)
	}
}

// The export prints each event exactly as GET /api/v1/events shows it, so
// that an analytics team reads both with one parser.
func TestExportHasTheAPIsEventShape(t *testing.T) {
	in := newInstance(t)
	in.serve()
	in.waitReady()
	org := in.createOrg("Shape")
	if status, body := in.request("POST", "/api/v1/assistants", org, map[string]any{"name": "Shape bot"}); status != http.StatusCreated {
		t.Fatalf("create assistant: %d %s", status, body)
	}
	status, body := in.request("GET", "/api/v1/events?limit=100", org, nil)
	if status != http.StatusOK {
		t.Fatalf("GET /api/v1/events: %d %s", status, body)
	}
	var page struct {
		Data []map[string]any `json:"data"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	byID := map[string]map[string]any{}
	for _, e := range page.Data {
		byID[e["id"].(string)] = e
	}
	out := in.mustCLI("events", "export", "--organization", org.OrganizationID)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 3 || len(lines) != len(page.Data) {
		t.Fatalf("export printed %d events, the API shows %d", len(lines), len(page.Data))
	}
	for _, line := range lines {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("export line %q: %v", line, err)
		}
		api, ok := byID[fmt.Sprint(e["id"])]
		if !ok {
			t.Fatalf("exported event %v is not in GET /api/v1/events", e["id"])
		}
		if !reflect.DeepEqual(e, api) {
			t.Errorf("event %v differs:\nexport %v\napi    %v", e["id"], e, api)
		}
	}
}
