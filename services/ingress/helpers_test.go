package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// clearEnv blanks every GENRELAY_ variable that ingress reads, so that
// the environment of the test run cannot change a test's configuration.
// ff ignores empty variables.
func clearEnv(t *testing.T) {
	t.Helper()

	cfg := defaultConfig()
	fs := newFlagSet(&cfg, &rawSettings{})
	fs.VisitAll(func(f *flag.Flag) {
		t.Setenv(envName(f.Name), "")
	})
}

// syncBuffer is a bytes.Buffer that a running service and a test can
// use at the same time.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// process is one run() of ingress in a goroutine.
type process struct {
	addr   string
	stdout *syncBuffer
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan error

	stopOnce sync.Once
	err      error
}

// startIngress calls run with args plus -http-addr 127.0.0.1:0, waits for
// the listening log line and stops the process at cleanup.
func startIngress(t *testing.T, args ...string) *process {
	t.Helper()

	ctx, cancel := context.WithCancel(context.Background())
	p := &process{
		stdout: &syncBuffer{},
		stderr: &syncBuffer{},
		cancel: cancel,
		done:   make(chan error, 1),
	}
	args = append([]string{"-http-addr", "127.0.0.1:0"}, args...)
	go func() { p.done <- run(ctx, args, p.stdout, p.stderr) }()
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("run() = %v, want nil", err)
		}
	})

	deadline := time.Now().Add(10 * time.Second)
	for p.addr == "" {
		if line := p.findLog("http server listening"); line != nil {
			p.addr, _ = line["addr"].(string)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingress did not listen within 10s; stderr:\n%s", p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

// stop cancels run's context, as SIGTERM does, and returns run's error.
func (p *process) stop() error {
	p.stopOnce.Do(func() {
		p.cancel()
		select {
		case p.err = <-p.done:
		case <-time.After(30 * time.Second):
			p.err = errors.New("run did not return within 30s of cancellation")
		}
	})
	return p.err
}

func (p *process) url(path string) string {
	return "http://" + p.addr + path
}

// logLines returns the JSON log lines written so far, decoded.
func (p *process) logLines(t *testing.T) []map[string]any {
	t.Helper()

	var lines []map[string]any
	scanner := bufio.NewScanner(strings.NewReader(p.stderr.String()))
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		var line map[string]any
		if err := json.Unmarshal(scanner.Bytes(), &line); err != nil {
			t.Fatalf("log line %q is not JSON: %v", scanner.Text(), err)
		}
		lines = append(lines, line)
	}
	return lines
}

// findLog returns the first log line with message msg, or nil.
func (p *process) findLog(msg string) map[string]any {
	for _, raw := range strings.Split(p.stderr.String(), "\n") {
		var line map[string]any
		if json.Unmarshal([]byte(raw), &line) == nil && line["msg"] == msg {
			return line
		}
	}
	return nil
}

// result is a finished HTTP exchange.
type result struct {
	status int
	header http.Header
	body   string
}

func send(t *testing.T, client *http.Client, req *http.Request) result {
	t.Helper()

	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()

	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return result{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

func get(t *testing.T, url string) result {
	t.Helper()

	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	return send(t, http.DefaultClient, req)
}

// postCallback posts body to the webhook of p with the given
// Authorization header value.
func postCallback(t *testing.T, p *process, authorization string, body []byte) result {
	t.Helper()

	req, err := http.NewRequest(http.MethodPost, p.url("/v1/webhooks/leonardo"), bytes.NewReader(body))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", authorization)
	return send(t, http.DefaultClient, req)
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()

	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// insecureClient trusts any certificate, for the self-signed test server.
func insecureClient(maxVersion uint16) *http.Client {
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, //nolint:gosec // self-signed test certificate
			MaxVersion:         maxVersion,
		}},
	}
}
