package fetch

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func server(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

func TestFetchesAPage(t *testing.T) {
	var ua string
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		ua = r.UserAgent()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<html><body><p>hello</p></body></html>"))
	})
	p, err := New(Config{AllowPrivate: true}).Fetch(context.Background(), s.URL+"/page")
	if err != nil {
		t.Fatal(err)
	}
	if p.FileType != "html" || !strings.Contains(string(p.Body), "hello") || p.URL != s.URL+"/page" {
		t.Errorf("page = %+v", p)
	}
	if !strings.Contains(ua, "CompaninBot") {
		t.Errorf("user agent = %q", ua)
	}
}

func TestRefusesPrivateAddresses(t *testing.T) {
	called := false
	s := server(t, func(w http.ResponseWriter, r *http.Request) { called = true })
	_, err := New(Config{}).Fetch(context.Background(), s.URL)
	if !errors.Is(err, ErrBlockedAddress) || !strings.Contains(err.Error(), "COMPANIN_FETCH_ALLOW_PRIVATE") {
		t.Fatalf("err = %v, want ErrBlockedAddress naming the setting", err)
	}
	if called {
		t.Error("the private server was reached")
	}
	// A host name is checked by the address it resolves to, not by its name.
	_, err = New(Config{}).Fetch(context.Background(), strings.Replace(s.URL, "127.0.0.1", "localhost", 1))
	if !errors.Is(err, ErrBlockedAddress) {
		t.Fatalf("localhost: err = %v", err)
	}
}

func TestChecksEveryRedirectHop(t *testing.T) {
	internal := false
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/internal" {
			internal = true
			return
		}
		// 127.0.0.2 stands for an internal host the first, allowed, host redirects to.
		http.Redirect(w, r, strings.Replace("http://"+r.Host, "127.0.0.1", "127.0.0.2", 1)+"/internal", http.StatusFound)
	})
	f := New(Config{})
	f.allowed = func(a netip.Addr) bool { return a == netip.MustParseAddr("127.0.0.1") }
	_, err := f.Fetch(context.Background(), s.URL+"/start")
	if !errors.Is(err, ErrBlockedAddress) || !strings.Contains(err.Error(), "127.0.0.2") {
		t.Fatalf("err = %v, want the redirect target refused", err)
	}
	if internal {
		t.Error("the redirect target was reached")
	}
}

func TestLimits(t *testing.T) {
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			select {
			case <-time.After(3 * time.Second):
			case <-r.Context().Done():
			}
		case "/big":
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte(strings.Repeat("x", 5000)))
		case "/missing":
			http.NotFound(w, r)
		case "/image":
			w.Header().Set("Content-Type", "image/png")
			_, _ = w.Write([]byte("\x89PNG"))
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		}
	})
	f := New(Config{AllowPrivate: true, Timeout: 300 * time.Millisecond, MaxBytes: 1000})
	for path, want := range map[string]error{
		"/slow": ErrTimeout, "/big": ErrTooLarge, "/missing": ErrStatus, "/image": ErrUnsupported, "/loop": ErrRedirects,
	} {
		start := time.Now()
		_, err := f.Fetch(context.Background(), s.URL+path)
		if !errors.Is(err, want) {
			t.Errorf("%s: err = %v, want %v", path, err, want)
		}
		if time.Since(start) > 2*time.Second {
			t.Errorf("%s took %s", path, time.Since(start))
		}
	}
}

func TestPublicAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"8.8.8.8": true, "2a00:1450:4001::1": true,
		"127.0.0.1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false, "169.254.169.254": false,
		"100.64.0.1": false, "0.0.0.0": false, "::1": false, "fd00::1": false, "fe80::1": false, "64:ff9b::a00:1": false,
	} {
		if got := publicAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("publicAddr(%s) = %v, want %v", addr, got, want)
		}
	}
}

// TestErrorsNameNoResolvedAddress: a refused or failed fetch says which host
// (as the URL spells it) and why, never the address a name resolved to nor
// the dialer's words, and an internal name reads like one that does not exist.
func TestErrorsNameNoResolvedAddress(t *testing.T) {
	s := server(t, func(w http.ResponseWriter, r *http.Request) {})
	port := s.URL[strings.LastIndex(s.URL, ":"):]
	blocked, err1 := New(Config{}).Fetch(context.Background(), "http://localhost"+port+"/")
	_, err2 := New(Config{}).Fetch(context.Background(), "http://no-such-host.invalid/")
	for _, err := range []error{err1, err2} {
		if !errors.Is(err, ErrBlockedAddress) {
			t.Fatalf("err = %v, want ErrBlockedAddress", err)
		}
		for _, leak := range []string{"127.0.0.1", "::1", "dial tcp", "lookup"} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("%q reveals %q", err, leak)
			}
		}
	}
	if blocked.URL != "" || strings.Replace(err1.Error(), "localhost", "no-such-host.invalid", 1) != err2.Error() {
		t.Errorf("an internal name and a missing one read differently:\n%v\n%v", err1, err2)
	}
	// Allowed to reach private addresses, a refused connection names the host only.
	s.Close()
	_, err := New(Config{AllowPrivate: true}).Fetch(context.Background(), "http://localhost"+port+"/")
	if !errors.Is(err, ErrUnreachable) || strings.Contains(err.Error(), "127.0.0.1") || strings.Contains(err.Error(), "dial tcp") ||
		!strings.Contains(err.Error(), "refused") {
		t.Errorf("closed port: %v", err)
	}
}
