// Package fetch reads web pages for the knowledge base, safely: timeouts, a
// byte limit, a bounded number of redirects, and no requests to private,
// loopback or link-local addresses (checked on the address actually dialed,
// after name resolution and on every redirect hop, so DNS rebinding and
// redirects to internal hosts are refused too) unless explicitly allowed.
package fetch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Errors a caller can match with errors.Is; their text says what to do.
var (
	ErrBlockedAddress = errors.New("address not allowed")
	ErrTimeout        = errors.New("page did not answer in time")
	ErrTooLarge       = errors.New("page is too large")
	ErrStatus         = errors.New("page answered with an error")
	ErrRedirects      = errors.New("too many redirects")
	ErrUnsupported    = errors.New("unsupported content type")
	ErrUnreachable    = errors.New("page cannot be reached")
)

// Config sets the limits. Zero values take the defaults.
type Config struct {
	// AllowPrivate lets pages on private and loopback addresses be fetched
	// (COMPANIN_FETCH_ALLOW_PRIVATE=true): for intranets, and tests.
	AllowPrivate bool
	// Timeout bounds the whole fetch, redirects and body included (30 s).
	Timeout time.Duration
	// MaxBytes bounds the body (5 MiB).
	MaxBytes int64
	// MaxRedirects bounds the hops followed (5).
	MaxRedirects int
	// UserAgent is sent with every request.
	UserAgent string
}

// DefaultUserAgent names the fetcher honestly, so site owners know who calls.
const DefaultUserAgent = "Mozilla/5.0 (compatible; CompaninBot/1.0; +https://companin.tech/bot)"

// Page is a fetched document.
type Page struct {
	// URL is where the body was finally read from, after redirects.
	URL string
	// FileType is the knowledge file type of the body: html, pdf, txt, md, csv or docx.
	FileType string
	Body     []byte
}

// Fetcher fetches pages. It is safe for concurrent use.
type Fetcher struct {
	cfg    Config
	client *http.Client
	// allowed decides whether an address may be dialed; tests narrow it.
	allowed func(netip.Addr) bool
}

// New returns a fetcher with cfg's limits.
func New(cfg Config) *Fetcher {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 5 << 20
	}
	if cfg.MaxRedirects <= 0 {
		cfg.MaxRedirects = 5
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	f := &Fetcher{cfg: cfg, allowed: publicAddr}
	if cfg.AllowPrivate {
		f.allowed = func(netip.Addr) bool { return true }
	}
	dialer := &net.Dialer{
		Timeout: 10 * time.Second,
		// Control runs for the address about to be dialed, after DNS: the
		// only check a hostname that resolves differently later cannot dodge.
		Control: func(network, address string, _ syscall.RawConn) error {
			// The address is not named in the error: it would tell a
			// client what an internal host name resolves to.
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !f.allowed(ap.Addr().Unmap()) {
				return ErrBlockedAddress
			}
			return nil
		},
	}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would dial for us and bypass the address check
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 15 * time.Second,
		MaxIdleConns:          10,
		IdleConnTimeout:       30 * time.Second,
	}
	f.client = &http.Client{
		Transport: transport,
		Timeout:   cfg.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > cfg.MaxRedirects {
				return fmt.Errorf("%w: more than %d redirects, starting at %s", ErrRedirects, cfg.MaxRedirects, via[0].URL)
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("%w: redirect to a %s: URL", ErrBlockedAddress, req.URL.Scheme)
			}
			if req.URL.User != nil {
				return fmt.Errorf("%w: redirect to a URL with credentials", ErrBlockedAddress)
			}
			return nil
		},
	}
	return f
}

// Fetch reads the page at rawURL.
func (f *Fetcher) Fetch(ctx context.Context, rawURL string) (Page, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Page{}, fmt.Errorf("%w: %q is not an http or https URL", ErrUnreachable, rawURL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Page{}, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	req.Header.Set("User-Agent", f.cfg.UserAgent)
	req.Header.Set("Accept", "text/html,application/xhtml+xml,application/pdf,text/plain,text/markdown,text/csv;q=0.9,*/*;q=0.5")
	req.Header.Set("Accept-Language", "en, de;q=0.9, *;q=0.5")
	resp, err := f.client.Do(req)
	if err != nil {
		return Page{}, f.classify(err, u.Hostname())
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Page{}, fmt.Errorf("%w: %s answered %s; check the address or make the page public", ErrStatus, resp.Request.URL, resp.Status)
	}
	if resp.ContentLength > f.cfg.MaxBytes {
		return Page{}, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, resp.ContentLength, f.cfg.MaxBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, f.cfg.MaxBytes+1))
	if err != nil {
		return Page{}, f.classify(err, resp.Request.URL.Hostname())
	}
	if int64(len(body)) > f.cfg.MaxBytes {
		return Page{}, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, f.cfg.MaxBytes)
	}
	ft, err := fileType(resp.Header.Get("Content-Type"), resp.Request.URL.Path, body)
	if err != nil {
		return Page{}, err
	}
	return Page{URL: resp.Request.URL.String(), FileType: ft, Body: body}, nil
}

// classify turns a failed request into an error a person can act on. It
// names hosts as the URLs spell them and never an address they resolved to,
// nor the dialer's own words ("dial tcp 10.0.0.5:443: ..."): an error is
// shown to the client, who must not learn the server's view of its network.
// A host that does not resolve and one that resolves to an address not
// fetched read alike, so that the answer tells nothing about internal names.
func (f *Fetcher) classify(err error, host string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil && u.Hostname() != "" {
			host = u.Hostname() // the hop that failed, after redirects
		}
	}
	var dnsErr *net.DNSError
	isDNS := errors.As(err, &dnsErr)
	switch {
	case errors.Is(err, ErrRedirects):
		if ue != nil {
			return ue.Err
		}
		return err
	case errors.Is(err, ErrBlockedAddress) && ue != nil && !errors.Is(ue.Err, ErrBlockedAddress):
		return ue.Err // refused by CheckRedirect: its text names no address
	case errors.Is(err, ErrBlockedAddress) || isDNS && !f.cfg.AllowPrivate:
		return fmt.Errorf("%w: %s has no public internet address that can be reached; check the address (pages on private or loopback addresses are not fetched unless COMPANIN_FETCH_ALLOW_PRIVATE=true)", ErrBlockedAddress, host)
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("%w: %s gave no complete answer within %s", ErrTimeout, host, f.cfg.Timeout)
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	if isDNS {
		return fmt.Errorf("%w: the host name %s cannot be resolved", ErrUnreachable, host)
	}
	return fmt.Errorf("%w: %s: %s", ErrUnreachable, host, cause(err))
}

// cause says in a few words why a connection failed.
func cause(err error) string {
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "the connection was refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the connection was closed before the page was read"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to the host"
	case errors.As(err, &certErr):
		return "its TLS certificate cannot be verified"
	default:
		return "the connection failed"
	}
}

// fileType maps the response's content type (or, failing that, the path's
// extension and the body itself) to a knowledge file type.
func fileType(contentType, path string, body []byte) (string, error) {
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "" || mt == "application/octet-stream" {
		mt, _, _ = mime.ParseMediaType(http.DetectContentType(body))
	}
	switch mt {
	case "text/html", "application/xhtml+xml":
		return "html", nil
	case "application/pdf":
		return "pdf", nil
	case "text/markdown", "text/x-markdown":
		return "md", nil
	case "text/csv":
		return "csv", nil
	case "application/vnd.openxmlformats-officedocument.wordprocessingml.document":
		return "docx", nil
	case "text/plain":
		switch {
		case strings.HasSuffix(path, ".md"):
			return "md", nil
		case strings.HasSuffix(path, ".csv"):
			return "csv", nil
		}
		return "txt", nil
	}
	return "", fmt.Errorf("%w: the page is %s; web pages (HTML), PDF, text, Markdown, CSV and DOCX can be read", ErrUnsupported, mt)
}

// reserved are ranges that are neither private nor loopback by Go's
// definition but must not be reached from a server either.
var reserved = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64: may embed a private IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("100::/64"),
}

// publicAddr tells whether addr is a public unicast address.
func publicAddr(addr netip.Addr) bool {
	if !addr.IsValid() || addr.IsLoopback() || addr.IsPrivate() || addr.IsUnspecified() || addr.IsLinkLocalUnicast() ||
		addr.IsLinkLocalMulticast() || addr.IsInterfaceLocalMulticast() || addr.IsMulticast() {
		return false
	}
	for _, p := range reserved {
		if p.Contains(addr) {
			return false
		}
	}
	return true
}

// FetchPage is Fetch in the shape the ingestion worker asks for
// (commands.PageFetcher).
func (f *Fetcher) FetchPage(ctx context.Context, rawURL string) (finalURL, fileType string, body []byte, err error) {
	p, err := f.Fetch(ctx, rawURL)
	return p.URL, p.FileType, p.Body, err
}
