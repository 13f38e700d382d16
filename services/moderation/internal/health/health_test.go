package health

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestProbeURL(t *testing.T) {
	tests := []struct {
		addr     string
		tls      bool
		expected string
	}{
		{"127.0.0.1:8081", false, "http://127.0.0.1:8081/readyz"},
		{"0.0.0.0:8081", false, "http://127.0.0.1:8081/readyz"},
		{":8081", true, "https://127.0.0.1:8081/readyz"},
		{"[::]:8081", false, "http://127.0.0.1:8081/readyz"},
		{"[::1]:9000", true, "https://[::1]:9000/readyz"},
		{"moderation:8081", false, "http://moderation:8081/readyz"},
	}
	for _, tt := range tests {
		got, err := ProbeURL(tt.addr, tt.tls)
		if err != nil {
			t.Errorf("ProbeURL(%q): %v", tt.addr, err)
			continue
		}
		if got != tt.expected {
			t.Errorf("ProbeURL(%q, %v) = %q, expected %q", tt.addr, tt.tls, got, tt.expected)
		}
	}

	if _, err := ProbeURL("no-port", false); err == nil {
		t.Error("ProbeURL without a port: no error")
	}
}

func TestReadinessCached(t *testing.T) {
	var calls atomic.Int32
	var failing atomic.Bool
	check := func(context.Context) error {
		calls.Add(1)
		if failing.Load() {
			return errors.New("stream GENRELAY_INBOUND: not found")
		}
		return nil
	}
	srv := httptest.NewServer(Handler(check, 200*time.Millisecond))
	t.Cleanup(srv.Close)

	for range 5 {
		if code, _ := get(t, srv.URL+ReadinessPath); code != http.StatusOK {
			t.Fatalf("readyz = %d, expected 200", code)
		}
	}
	if calls.Load() != 1 {
		t.Errorf("check ran %d times within the cache period, expected 1", calls.Load())
	}

	failing.Store(true)
	time.Sleep(250 * time.Millisecond)
	code, body := get(t, srv.URL+ReadinessPath)
	if code != http.StatusServiceUnavailable {
		t.Errorf("readyz after the check failed = %d, expected 503", code)
	}
	if !strings.Contains(body["reason"], "GENRELAY_INBOUND") {
		t.Errorf("readyz reason = %q, expected the check's error", body["reason"])
	}

	if code, _ := get(t, srv.URL+LivenessPath); code != http.StatusOK {
		t.Errorf("healthz = %d while unready, expected 200", code)
	}
}

func get(t *testing.T, url string) (int, map[string]string) {
	t.Helper()

	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()

	var body map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("decode %s: %v", url, err)
	}
	return resp.StatusCode, body
}

func TestProbeStatus(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		notReady bool
	}{
		{"ready", http.StatusOK, false},
		{"unready", http.StatusServiceUnavailable, true},
		{"redirect is not ready", http.StatusFound, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != ReadinessPath {
					t.Errorf("probe requested %s", r.URL.Path)
				}
				w.Header().Set("Location", "/elsewhere")
				w.WriteHeader(tt.status)
			}))
			t.Cleanup(srv.Close)
			addr := strings.TrimPrefix(srv.URL, "http://")

			_, err := Probe(context.Background(), addr, false)
			if errors.Is(err, ErrNotReady) != tt.notReady {
				t.Errorf("Probe = %v, expected not ready %v", err, tt.notReady)
			}
		})
	}
}
