package imagefetch_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/genrelay/genrelay/services/moderation/internal/imagefetch"
)

var (
	jpegBody = append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, bytes.Repeat([]byte{1}, 100)...)
	pngBody  = append([]byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'}, bytes.Repeat([]byte{2}, 100)...)
	gifBody  = append([]byte("GIF89a"), bytes.Repeat([]byte{3}, 100)...)
)

// imageServer is a loopback TLS server with one handler per path and a
// request counter.
type imageServer struct {
	*httptest.Server
	hits atomic.Int32
}

func startImageServer(t *testing.T, routes map[string]http.HandlerFunc) *imageServer {
	t.Helper()
	s := &imageServer{}
	mux := http.NewServeMux()
	for path, h := range routes {
		mux.HandleFunc(path, h)
	}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func serve(body []byte, contentType string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentType)
		_, _ = w.Write(body)
	}
}

// loopbackFetcher trusts srv's certificate and lets the dialer reach
// loopback, which the default address check refuses.
func loopbackFetcher(t *testing.T, srv *imageServer, mutate func(*imagefetch.Config)) *imagefetch.Fetcher {
	t.Helper()
	cfg := imagefetch.Config{
		AllowedHosts: []string{"127.0.0.1"},
		CheckAddr:    allowLoopback,
		TLSConfig:    &tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	f, err := imagefetch.New(cfg)
	if err != nil {
		t.Fatalf("new fetcher: %v", err)
	}
	return f
}

func allowLoopback(addr netip.Addr) error {
	if addr.Unmap().IsLoopback() {
		return nil
	}
	return imagefetch.CheckPublic(addr)
}

func TestFetchAcceptsJPEGAndPNG(t *testing.T) {
	srv := startImageServer(t, map[string]http.HandlerFunc{
		"/a.jpg": serve(jpegBody, "image/jpeg"),
		"/b.png": serve(pngBody, "application/octet-stream"),
	})
	f := loopbackFetcher(t, srv, nil)

	tests := []struct{ path, wantMIME string }{
		{"/a.jpg", "image/jpeg"},
		{"/b.png", "image/png"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			img, err := f.Fetch(context.Background(), srv.URL+tt.path)
			if err != nil {
				t.Fatalf("fetch: %v", err)
			}
			if img.MIMEType != tt.wantMIME {
				t.Errorf("mime = %q, want %q", img.MIMEType, tt.wantMIME)
			}
			if len(img.Bytes) != 104 && len(img.Bytes) != 108 {
				t.Errorf("got %d bytes", len(img.Bytes))
			}
		})
	}
}

func TestFetchRejectsBadBodies(t *testing.T) {
	big := append(append([]byte{}, jpegBody...), bytes.Repeat([]byte{9}, 2000)...)
	srv := startImageServer(t, map[string]http.HandlerFunc{
		"/gif":  serve(gifBody, "image/gif"),
		"/lies": serve([]byte("<html>not an image</html>"), "image/jpeg"),
		"/big":  serve(big, "image/jpeg"),
		"/chunked": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "image/jpeg")
			for range 20 {
				_, _ = w.Write(big[:200])
				w.(http.Flusher).Flush()
			}
		},
	})
	f := loopbackFetcher(t, srv, func(c *imagefetch.Config) { c.MaxBytes = 1000 })

	tests := []struct {
		path string
		want error
	}{
		{"/gif", imagefetch.ErrUnsupportedFormat},
		{"/lies", imagefetch.ErrUnsupportedFormat},
		{"/big", imagefetch.ErrTooLarge},
		{"/chunked", imagefetch.ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			_, err := f.Fetch(context.Background(), srv.URL+tt.path)
			if !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestFetchStatusErrors(t *testing.T) {
	srv := startImageServer(t, map[string]http.HandlerFunc{
		"/gone": func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) },
		"/busy": func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) },
	})
	f := loopbackFetcher(t, srv, nil)

	tests := []struct {
		path          string
		wantStatus    int
		wantTemporary bool
	}{
		{"/gone", 404, false},
		{"/busy", 503, true},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			_, err := f.Fetch(context.Background(), srv.URL+tt.path)
			var serr *imagefetch.StatusError
			if !errors.As(err, &serr) {
				t.Fatalf("error = %v, want *StatusError", err)
			}
			if serr.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", serr.StatusCode, tt.wantStatus)
			}
			if serr.Temporary() != tt.wantTemporary {
				t.Errorf("temporary = %v, want %v", serr.Temporary(), tt.wantTemporary)
			}
		})
	}
}

func TestFetchRedirects(t *testing.T) {
	other := startImageServer(t, map[string]http.HandlerFunc{"/x.jpg": serve(jpegBody, "image/jpeg")})
	otherURL, _ := url.Parse(other.URL)
	redirect := func(to string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, to, http.StatusFound) }
	}
	srv := startImageServer(t, map[string]http.HandlerFunc{
		"/final.jpg": serve(jpegBody, "image/jpeg"),
		"/one":       redirect("/final.jpg"),
		"/loop":      redirect("/loop"),
		"/to-http":   redirect("http://127.0.0.1:1/final.jpg"),
		"/elsewhere": redirect("https://localhost:" + otherURL.Port() + "/x.jpg"),
	})
	f := loopbackFetcher(t, srv, nil)

	tests := []struct {
		path string
		want error
	}{
		{"/one", nil},
		{"/loop", imagefetch.ErrTooManyRedirects},
		{"/to-http", imagefetch.ErrNotAllowed},
		{"/elsewhere", imagefetch.ErrNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			_, err := f.Fetch(context.Background(), srv.URL+tt.path)
			if !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
		})
	}
	if got := other.hits.Load(); got != 0 {
		t.Errorf("redirect target off the allowlist got %d requests, want 0", got)
	}
}

func TestDefaultCheckRejectsLoopbackThroughDialer(t *testing.T) {
	srv := startImageServer(t, map[string]http.HandlerFunc{"/a.jpg": serve(jpegBody, "image/jpeg")})
	port := strconv.Itoa(srv.Listener.Addr().(*net.TCPAddr).Port)

	tests := []struct{ name, host, url string }{
		{"ipv4 loopback", "127.0.0.1", "https://127.0.0.1:" + port + "/a.jpg"},
		{"name resolving to loopback", "localhost", "https://localhost:" + port + "/a.jpg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := loopbackFetcher(t, srv, func(c *imagefetch.Config) {
				c.AllowedHosts = []string{tt.host}
				c.CheckAddr = nil
			})

			_, err := f.Fetch(context.Background(), tt.url)

			if !errors.Is(err, imagefetch.ErrBlockedAddress) {
				t.Errorf("error = %v, want ErrBlockedAddress", err)
			}
		})
	}
	if got := srv.hits.Load(); got != 0 {
		t.Errorf("server got %d requests, want 0", got)
	}
}

func TestDefaultCheckRejectsIPv6LoopbackThroughDialer(t *testing.T) {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skip("IPv6 loopback not available on this machine: " + err.Error())
	}
	var hits atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = w.Write(jpegBody)
	}))
	srv.Listener = l
	srv.StartTLS()
	t.Cleanup(srv.Close)

	f, err := imagefetch.New(imagefetch.Config{AllowedHosts: []string{"::1"}})
	if err != nil {
		t.Fatalf("new fetcher: %v", err)
	}
	_, err = f.Fetch(context.Background(), srv.URL+"/a.jpg")

	if !errors.Is(err, imagefetch.ErrBlockedAddress) {
		t.Errorf("error = %v, want ErrBlockedAddress", err)
	}
	if hits.Load() != 0 {
		t.Errorf("server got %d requests, want 0", hits.Load())
	}
}

func TestAllowedMakesNoRequest(t *testing.T) {
	f, err := imagefetch.New(imagefetch.Config{})
	if err != nil {
		t.Fatalf("new fetcher: %v", err)
	}
	tests := []struct {
		url  string
		want error
	}{
		{"https://cdn.leonardo.ai/users/a/b.jpg", nil},
		{"https://CDN.Leonardo.AI./users/a/b.jpg", nil},
		{"http://cdn.leonardo.ai/users/a/b.jpg", imagefetch.ErrNotAllowed},
		{"https://evil.example/cdn.leonardo.ai/b.jpg", imagefetch.ErrNotAllowed},
		{"https://cdn.leonardo.ai.evil.example/b.jpg", imagefetch.ErrNotAllowed},
		{"https://user:pass@cdn.leonardo.ai/b.jpg", imagefetch.ErrNotAllowed},
		{"https://169.254.169.254/latest/meta-data", imagefetch.ErrNotAllowed},
		{"file:///etc/passwd", imagefetch.ErrNotAllowed},
		{"", imagefetch.ErrNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := f.Allowed(tt.url)
			if !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
				t.Errorf("Allowed = %v, want %v", err, tt.want)
			}
		})
	}
}
