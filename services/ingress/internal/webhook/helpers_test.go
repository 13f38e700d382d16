package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/genrelay/genrelay/pkg/broker"
	"github.com/genrelay/genrelay/pkg/natsconn"
	"github.com/genrelay/genrelay/pkg/natstest"
	"github.com/genrelay/genrelay/services/ingress/internal/auth"
	"github.com/genrelay/genrelay/services/ingress/internal/publish"
	"github.com/genrelay/genrelay/services/ingress/internal/sourceip"
	"github.com/genrelay/genrelay/services/ingress/internal/webhook"
)

// Bearer keys of the test servers.
const (
	currentKey  = "wk-current-4b7f9e21c3"
	previousKey = "wk-previous-0d5a6c88e1"
)

// options changes the test server's configuration.
type options struct {
	broker         broker.Config
	keys           string
	noAuth         bool
	allowedSources string
	trustedProxies string
	maxBodyBytes   int64
	publishTimeout time.Duration
}

// app is ingress's HTTP handler on a real NATS server, reached over real
// HTTP at url.
type app struct {
	echo *echo.Echo
	nats *natstest.Server
	js   jetstream.JetStream
	url  string
	logs *observer.ObservedLogs
}

func defaultOptions() options {
	return options{
		broker:         broker.DefaultConfig(),
		keys:           "current:" + currentKey + ",previous:" + previousKey,
		maxBodyBytes:   1 << 20,
		publishTimeout: 2 * time.Second,
	}
}

// startApp runs the handler with opts changed by each change.
func startApp(t *testing.T, changes ...func(*options)) *app {
	t.Helper()

	opts := defaultOptions()
	for _, change := range changes {
		change(&opts)
	}

	srv := natstest.Start(t)
	nc, err := natsconn.Connect(srv.URL(), "webhook-test", natsconn.Events{})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := broker.EnsureStreams(ctx, js, opts.broker); err != nil {
		t.Fatalf("ensure streams: %v", err)
	}

	core, logs := observer.New(zapcore.DebugLevel)
	cfg := webhook.Config{
		Resolver:     sourceip.NewResolver(mustPrefixes(t, opts.trustedProxies)),
		MaxBodyBytes: opts.maxBodyBytes,
		RetryAfter:   5 * time.Second,
		Publisher:    publish.NewPublisher(nc, js, opts.publishTimeout),
		Readiness:    publish.NewReadiness(nc, js, time.Second, time.Second),
		Logger:       zap.New(core),
	}
	if !opts.noAuth {
		cfg.Keyring = auth.NewKeyring(mustKeys(t, opts.keys))
	}
	if opts.allowedSources != "" {
		prefixes, err := sourceip.ParseAllowlist(opts.allowedSources)
		if err != nil {
			t.Fatalf("allowlist: %v", err)
		}
		cfg.Allowlist = sourceip.NewAllowlist(prefixes)
	}

	e := webhook.New(cfg)
	httpServer := httptest.NewServer(e)
	t.Cleanup(httpServer.Close)

	return &app{echo: e, nats: srv, js: js, url: httpServer.URL, logs: logs}
}

func mustPrefixes(t *testing.T, list string) []netip.Prefix {
	t.Helper()

	prefixes, err := sourceip.ParsePrefixes(list)
	if err != nil {
		t.Fatalf("prefixes %q: %v", list, err)
	}
	return prefixes
}

func mustKeys(t *testing.T, list string) []auth.Key {
	t.Helper()

	keys, err := auth.ParseKeys(list)
	if err != nil {
		t.Fatalf("keys: %v", err)
	}
	return keys
}

// response is a finished HTTP exchange with its body read.
type response struct {
	status int
	header http.Header
	body   []byte
}

// errorJSON decodes the body of an error response.
func (r response) errorJSON(t *testing.T) (message, requestID string) {
	t.Helper()

	var body struct {
		Error     string `json:"error"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("error body %q is not JSON: %v", r.body, err)
	}
	return body.Error, body.RequestID
}

// accepted is the body of a 202 response.
type accepted struct {
	Status         string `json:"status"`
	MessageID      string `json:"message_id"`
	Duplicate      bool   `json:"duplicate"`
	StreamSequence uint64 `json:"stream_sequence"`
	RequestID      string `json:"request_id"`
}

func (r response) accepted(t *testing.T) accepted {
	t.Helper()

	if r.status != http.StatusAccepted {
		t.Fatalf("status = %d, want 202; body %s", r.status, r.body)
	}
	var body accepted
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("body %q is not JSON: %v", r.body, err)
	}
	return body
}

// noRedirects is an HTTP client that reports redirects instead of
// following them.
var noRedirects = &http.Client{
	Timeout: 30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// do sends req and reads the whole response.
func do(t *testing.T, req *http.Request) response {
	t.Helper()

	resp, err := send(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// send is do for goroutines other than the test's, which must not call
// t.Fatal.
func send(req *http.Request) (response, error) {
	resp, err := noRedirects.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%s %s: %w", req.Method, req.URL, err)
	}
	defer resp.Body.Close()

	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("read response: %w", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// post sends body to the webhook with the current key.
func (a *app) post(t *testing.T, body []byte) response {
	t.Helper()
	return do(t, a.webhookRequest(t, body, "Bearer "+currentKey))
}

func (a *app) webhookRequest(t *testing.T, body []byte, authorization string) *http.Request {
	t.Helper()

	req, err := http.NewRequest(http.MethodPost, a.url+webhook.PathLeonardo, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return req
}

func (a *app) get(t *testing.T, path string) response {
	t.Helper()

	req, err := http.NewRequest(http.MethodGet, a.url+path, nil)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	return do(t, req)
}

// inboundMessages returns every message in the inbound stream.
func (a *app) inboundMessages(t *testing.T) []*jetstream.RawStreamMsg {
	t.Helper()

	ctx := context.Background()
	stream, err := a.js.Stream(ctx, broker.InboundStream)
	if err != nil {
		t.Fatalf("inbound stream: %v", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}

	var msgs []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		msg, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get message %d: %v", seq, err)
		}
		msgs = append(msgs, msg)
	}
	return msgs
}

// inboundCount returns the number of messages in the inbound stream.
func (a *app) inboundCount(t *testing.T) uint64 {
	t.Helper()

	stream, err := a.js.Stream(context.Background(), broker.InboundStream)
	if err != nil {
		t.Fatalf("inbound stream: %v", err)
	}
	info, err := stream.Info(context.Background())
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	return info.State.Msgs
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

// logText renders every captured log entry, message and fields, as text
// to search for secrets.
func logText(logs *observer.ObservedLogs) string {
	var b strings.Builder
	for _, entry := range logs.All() {
		fmt.Fprintf(&b, "%s %v\n", entry.Message, entry.ContextMap())
	}
	return b.String()
}
