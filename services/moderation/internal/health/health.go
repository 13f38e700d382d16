// Package health serves the liveness and readiness endpoints of a
// genrelay service and implements the -healthcheck probe that container
// health checks run, since scratch images have no shell or curl.
package health

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Paths of the endpoints.
const (
	LivenessPath  = "/healthz"
	ReadinessPath = "/readyz"
)

// ProbeTimeout bounds the whole -healthcheck request.
const ProbeTimeout = 3 * time.Second

// ErrNotReady is returned by Probe when the service responds with a
// status other than 200.
var ErrNotReady = errors.New("not ready")

// Check returns nil when the service is ready, or the reason it is not.
type Check func(ctx context.Context) error

// Handler serves LivenessPath, which returns 200 while the process runs,
// and ReadinessPath, which returns 200 when check passes and 503 with a
// JSON reason otherwise. A check result is reused for cacheFor, so that
// frequent probes cannot load NATS.
func Handler(check Check, cacheFor time.Duration) http.Handler {
	cached := &cachedCheck{check: check, ttl: cacheFor}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+LivenessPath, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET "+ReadinessPath, func(w http.ResponseWriter, r *http.Request) {
		if err := cached.run(r.Context()); err != nil {
			writeJSON(w, http.StatusServiceUnavailable,
				map[string]string{"status": "unready", "reason": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// cachedCheck runs check at most once per ttl. Callers wait on one mutex,
// so concurrent probes share the result.
type cachedCheck struct {
	check Check
	ttl   time.Duration

	mu   sync.Mutex
	at   time.Time
	last error
}

func (c *cachedCheck) run(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()

	if !c.at.IsZero() && time.Since(c.at) < c.ttl {
		return c.last
	}

	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c.last = c.check(ctx)
	c.at = time.Now()
	return c.last
}

// ProbeURL returns the readiness URL for a server listening on addr
// (host:port). An empty or unspecified host (0.0.0.0, ::) becomes
// 127.0.0.1, because the probe runs next to the server.
func ProbeURL(addr string, useTLS bool) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("http address %q: %w", addr, err)
	}

	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}

	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + ReadinessPath, nil
}

// Probe requests the readiness URL of the server on addr within
// ProbeTimeout and returns that URL. The error is nil on 200, and
// otherwise wraps ErrNotReady or the request error. With useTLS, the certificate is not
// verified when the host is a loopback address, which is the case the
// probe is for: a server's certificate names its public host, not
// 127.0.0.1.
func Probe(ctx context.Context, addr string, useTLS bool) (string, error) {
	url, err := ProbeURL(addr, useTLS)
	if err != nil {
		return "", err
	}

	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return url, fmt.Errorf("probe %s: %w", url, err)
	}

	resp, err := probeClient(req.URL.Hostname()).Do(req)
	if err != nil {
		return url, fmt.Errorf("probe %s: %w", url, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))

	if resp.StatusCode != http.StatusOK {
		return url, fmt.Errorf("%w: %s returned %s", ErrNotReady, url, resp.Status)
	}
	return url, nil
}

func probeClient(host string) *http.Client {
	transport := &http.Transport{Proxy: nil}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		transport.TLSClientConfig = &tls.Config{
			MinVersion:         tls.VersionTLS12,
			InsecureSkipVerify: true, //nolint:gosec // loopback probe only, see Probe
		}
	}
	return &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
