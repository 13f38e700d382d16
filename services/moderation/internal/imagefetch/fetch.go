package imagefetch

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"
)

// Config configures a Fetcher.
type Config struct {
	// AllowedHosts are the hosts images may come from, as NewAllowlist
	// reads them. Default DefaultAllowedHosts.
	AllowedHosts []string
	// MaxBytes is the largest image accepted. Default 5 MiB (5242880),
	// the most Rekognition accepts as image bytes.
	MaxBytes int64
	// MaxRedirects is the longest redirect chain followed. Default 3.
	MaxRedirects int
	// Timeout bounds one download, redirects included. Default 10s.
	Timeout time.Duration
	// CheckAddr decides whether the dialer may connect to an address. It
	// defaults to CheckPublic. Only tests that download from a loopback
	// server replace it.
	CheckAddr func(netip.Addr) error
	// TLSConfig is the client TLS configuration. Default: system roots.
	TLSConfig *tls.Config
}

// Defaults.
const (
	DefaultMaxBytes     = 5 << 20
	DefaultMaxRedirects = 3
	DefaultTimeout      = 10 * time.Second
)

func (c *Config) setDefaults() {
	if c.AllowedHosts == nil {
		c.AllowedHosts = DefaultAllowedHosts
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxRedirects == 0 {
		c.MaxRedirects = DefaultMaxRedirects
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.CheckAddr == nil {
		c.CheckAddr = CheckPublic
	}
}

// Fetcher downloads images from allowed hosts. It is safe for concurrent
// use.
type Fetcher struct {
	allow    *Allowlist
	client   *http.Client
	maxBytes int64
}

// New returns a Fetcher for cfg, with defaults filled in.
func New(cfg Config) (*Fetcher, error) {
	cfg.setDefaults()
	if cfg.MaxBytes < 0 || cfg.MaxRedirects < 0 || cfg.Timeout < 0 {
		return nil, errors.New("image fetch limits must not be negative")
	}
	allow, err := NewAllowlist(cfg.AllowedHosts)
	if err != nil {
		return nil, err
	}

	f := &Fetcher{allow: allow, maxBytes: cfg.MaxBytes}
	f.client = &http.Client{
		Transport:     newTransport(cfg),
		Timeout:       cfg.Timeout,
		CheckRedirect: f.checkRedirect(cfg.MaxRedirects),
	}
	return f, nil
}

// newTransport builds a transport without a proxy: through a proxy the
// dialer would check the proxy's address instead of the image host's.
func newTransport(cfg Config) *http.Transport {
	dialer := &net.Dialer{
		Timeout:   cfg.Timeout,
		KeepAlive: 30 * time.Second,
		Control:   control(cfg.CheckAddr),
	}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       cfg.TLSConfig,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
	}
}

func (f *Fetcher) checkRedirect(limit int) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) > limit {
			return fmt.Errorf("%w: more than %d", ErrTooManyRedirects, limit)
		}
		return f.allow.checkURL(req.URL)
	}
}

// Allowed returns nil when rawURL may be requested, or an error matching
// ErrNotAllowed. It makes no network request.
func (f *Fetcher) Allowed(rawURL string) error {
	_, err := f.allow.Check(rawURL)
	return err
}

// Image is a downloaded image.
type Image struct {
	Bytes []byte
	// MIMEType is "image/jpeg" or "image/png", from the magic bytes.
	MIMEType string
}

// StatusError is a download whose response status was not 200.
type StatusError struct {
	StatusCode int
}

// Error names the status.
func (e *StatusError) Error() string {
	return fmt.Sprintf("image download failed with status %d", e.StatusCode)
}

// Temporary reports whether the status may change on a later attempt:
// 408, 429 and 5xx.
func (e *StatusError) Temporary() bool {
	return e.StatusCode == http.StatusRequestTimeout ||
		e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// Fetch downloads rawURL and returns the image when the URL is allowed,
// every address dialled passes the address check, the body is at most
// MaxBytes and it starts with JPEG or PNG magic bytes.
func (f *Fetcher) Fetch(ctx context.Context, rawURL string) (*Image, error) {
	u, err := f.allow.Check(rawURL)
	if err != nil {
		return nil, err
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("build image request: %w", err)
	}
	req.Header.Set("Accept", "image/jpeg, image/png")

	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download image: %w", err)
	}
	defer resp.Body.Close()

	if resp.StatusCode != http.StatusOK {
		return nil, &StatusError{StatusCode: resp.StatusCode}
	}
	return f.read(resp)
}

func (f *Fetcher) read(resp *http.Response) (*Image, error) {
	if resp.ContentLength > f.maxBytes {
		return nil, fmt.Errorf("%w: %d bytes announced, limit %d",
			ErrTooLarge, resp.ContentLength, f.maxBytes)
	}

	body, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read image: %w", err)
	}
	if int64(len(body)) > f.maxBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, f.maxBytes)
	}

	mime := sniff(body)
	if mime == "" {
		return nil, ErrUnsupportedFormat
	}
	return &Image{Bytes: body, MIMEType: mime}, nil
}

var (
	jpegMagic = []byte{0xFF, 0xD8, 0xFF}
	pngMagic  = []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'}
)

// sniff returns the MIME type from the magic bytes, or "".
func sniff(b []byte) string {
	switch {
	case bytes.HasPrefix(b, jpegMagic):
		return "image/jpeg"
	case bytes.HasPrefix(b, pngMagic):
		return "image/png"
	}
	return ""
}
