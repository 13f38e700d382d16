package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/genrelay/genrelay/pkg/broker"
	"github.com/genrelay/genrelay/pkg/leonardo/leonardotest"
	"github.com/genrelay/genrelay/pkg/natstest"
	"github.com/genrelay/genrelay/pkg/tlstest"
)

// Keys and credentials of TestRunNeverLogsSecrets. Each is a unique
// string, so finding it anywhere is a leak.
const (
	primaryKey   = "bk-primary-7d2e91c4a0"
	secondaryKey = "bk-secondary-5f08b3e6d2"
	wrongKey     = "bk-wrong-c19a4e77f3"
	natsPassword = "nats-pw-2b6f0d9e81"
)

func TestRunNeverLogsSecrets(t *testing.T) {
	clearEnv(t)
	srv := natstest.Start(t)
	natsURL := strings.Replace(srv.URL(), "nats://", "nats://ingress:"+natsPassword+"@", 1)

	p := startIngress(t,
		"-nats-url", natsURL,
		"-webhook-keys", "primary:"+primaryKey+", secondary:"+secondaryKey,
		"-log-level", "debug",
	)
	waitFor(t, 10*time.Second, "readyz 200", func() bool {
		return get(t, p.url("/readyz")).status == http.StatusOK
	})

	requests := sendMixedTraffic(t, p)

	if err := p.stop(); err != nil {
		t.Fatalf("run() = %v, want nil", err)
	}

	// Every request was logged, so the scan below read real log lines.
	accessLines := 0
	for _, line := range p.logLines(t) {
		if line["msg"] == "http request" {
			accessLines++
		}
	}
	if accessLines < requests {
		t.Errorf("access log lines = %d, want at least %d", accessLines, requests)
	}

	stored := storedBodies(t, srv)
	if len(stored) != len(leonardotest.Names())+1 {
		t.Errorf("stored messages = %d, want %d", len(stored), len(leonardotest.Names())+1)
	}

	output := map[string]string{
		"stderr":          p.stderr.String(),
		"stdout":          p.stdout.String(),
		"stored messages": strings.Join(stored, "\n"),
	}
	for where, text := range output {
		for _, secret := range allSecrets() {
			if strings.Contains(text, secret) {
				t.Errorf("%s contains secret %q", where, secret)
			}
		}
	}
}

// sendMixedTraffic sends every sample, a repeat, rejected requests and
// probes, checks their status codes, and returns how many it sent.
func sendMixedTraffic(t *testing.T, p *process) int {
	t.Helper()

	sent := 0
	expect := func(r result, want int) {
		t.Helper()
		sent++
		if r.status != want {
			t.Errorf("status = %d, want %d; body %s", r.status, want, r.body)
		}
	}

	for i, name := range leonardotest.Names() {
		key := primaryKey
		if i%2 == 1 {
			key = secondaryKey
		}
		expect(postCallback(t, p, "Bearer "+key, leonardotest.Body(name)), http.StatusAccepted)
	}
	expect(postCallback(t, p, "Bearer "+primaryKey,
		leonardotest.Body(leonardotest.ImageNSFW)), http.StatusAccepted)

	// A sender that copies a bearer key into the payload.
	copied := []byte(`{"type":"image_generation.complete","data":{"object":{` +
		`"id":"copied-key","prompt":"` + secondaryKey + `"}}}`)
	expect(postCallback(t, p, "Bearer "+primaryKey, copied), http.StatusAccepted)

	for _, name := range leonardotest.Names() {
		expect(postCallback(t, p, "Bearer "+wrongKey, leonardotest.Body(name)), http.StatusUnauthorized)
	}
	expect(postCallback(t, p, primaryKey, leonardotest.Body(leonardotest.ImageSD15)), http.StatusUnauthorized)

	// An invalid body that carries secrets must not echo them.
	invalid := []byte(`{"type":7,"data":{"object":{"apiKey":{"key":"` + natsPassword + `"}}}}`)
	expect(postCallback(t, p, "Bearer "+secondaryKey, invalid), http.StatusBadRequest)

	expect(get(t, p.url("/healthz")), http.StatusOK)
	expect(get(t, p.url("/readyz")), http.StatusOK)
	return sent
}

// allSecrets returns the configured keys, the wrong key, the NATS
// password and the payload secrets of every sample except the guide's,
// whose masked key equals its masked ids.
func allSecrets() []string {
	secrets := []string{primaryKey, secondaryKey, wrongKey, natsPassword}
	for _, name := range leonardotest.Names() {
		if name != leonardotest.ImageComplete {
			secrets = append(secrets, leonardotest.Secrets(name)...)
		}
	}
	return secrets
}

func storedBodies(t *testing.T, srv *natstest.Server) []string {
	t.Helper()

	_, js := srv.Connect(t)
	ctx := context.Background()
	stream, err := js.Stream(ctx, broker.InboundStream)
	if err != nil {
		t.Fatalf("inbound stream: %v", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}

	var bodies []string
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		msg, err := stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get message %d: %v", seq, err)
		}
		headers, _ := json.Marshal(msg.Header)
		bodies = append(bodies, string(msg.Data)+" "+string(headers))
	}
	return bodies
}

func TestRunStartsWithoutNATS(t *testing.T) {
	clearEnv(t)
	srv := natstest.Start(t)
	srv.Shutdown()

	p := startIngress(t, "-nats-url", srv.URL(), "-webhook-keys", "primary:"+primaryKey)
	body := leonardotest.Body(leonardotest.ImageSD15)

	if r := get(t, p.url("/healthz")); r.status != http.StatusOK {
		t.Errorf("healthz = %d, want 200", r.status)
	}
	if r := get(t, p.url("/readyz")); r.status != http.StatusServiceUnavailable {
		t.Errorf("readyz = %d, want 503", r.status)
	}
	r := postCallback(t, p, "Bearer "+primaryKey, body)
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "5" {
		t.Errorf("webhook = %d with Retry-After %q, want 503 with 5", r.status, r.header.Get("Retry-After"))
	}

	// The store is empty, so the background setup must create the streams.
	srv.Restart()
	waitFor(t, 20*time.Second, "readyz 200", func() bool {
		return get(t, p.url("/readyz")).status == http.StatusOK
	})
	if r := postCallback(t, p, "Bearer "+primaryKey, body); r.status != http.StatusAccepted {
		t.Errorf("webhook after NATS start = %d, want 202; body %s", r.status, r.body)
	}
	if p.findLog("streams ready") == nil {
		t.Error("no log line says the streams are ready")
	}
}

func TestRunFinishesRequestsInFlight(t *testing.T) {
	clearEnv(t)
	srv := natstest.Start(t)
	p := startIngress(t, "-nats-url", srv.URL(), "-webhook-keys", "primary:"+primaryKey)
	waitFor(t, 10*time.Second, "readyz 200", func() bool {
		return get(t, p.url("/readyz")).status == http.StatusOK
	})

	// Send the headers and half of the body, then shut down.
	body := leonardotest.Body(leonardotest.ImageSD15)
	reader, writer := io.Pipe()
	req, err := http.NewRequest(http.MethodPost, p.url("/v1/webhooks/leonardo"), reader)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+primaryKey)

	responses := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("request in flight: %v", err)
			close(responses)
			return
		}
		responses <- resp
	}()
	if _, err := writer.Write(body[:len(body)/2]); err != nil {
		t.Fatalf("write first half: %v", err)
	}
	time.Sleep(200 * time.Millisecond)

	stopped := make(chan error, 1)
	go func() { stopped <- p.stop() }()

	waitFor(t, 5*time.Second, "listener closed", func() bool {
		conn, err := net.DialTimeout("tcp", p.addr, time.Second)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})

	if _, err := writer.Write(body[len(body)/2:]); err != nil {
		t.Fatalf("write second half: %v", err)
	}
	writer.Close()

	resp, ok := <-responses
	if !ok {
		t.FailNow()
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("status of request in flight = %d, want 202", resp.StatusCode)
	}
	if err := <-stopped; err != nil {
		t.Errorf("run() = %v, want nil", err)
	}
}

func TestRunWarnsWithoutAuthentication(t *testing.T) {
	clearEnv(t)
	srv := natstest.Start(t)
	p := startIngress(t, "-nats-url", srv.URL(), "-allow-unauthenticated")

	line := p.findLog("authentication is off: any client that reaches this " +
		"address can store callbacks; set GENRELAY_WEBHOOK_KEYS")
	if line == nil || line["level"] != "warn" {
		t.Fatalf("start-up warning = %v, want a warn line", line)
	}

	waitFor(t, 10*time.Second, "readyz 200", func() bool {
		return get(t, p.url("/readyz")).status == http.StatusOK
	})
	r := postCallback(t, p, "", leonardotest.Body(leonardotest.ImageSD15))
	if r.status != http.StatusAccepted {
		t.Errorf("unauthenticated callback = %d, want 202; body %s", r.status, r.body)
	}
}

func TestRunWarnsAboutShortKeys(t *testing.T) {
	clearEnv(t)
	srv := natstest.Start(t)
	p := startIngress(t, "-nats-url", srv.URL(),
		"-webhook-keys", "short:abcd,long:0123456789abcdef0123")

	waitFor(t, 10*time.Second, "start-up warning", func() bool {
		return p.findLog("webhook key is short; use a long random key") != nil
	})
	line := p.findLog("webhook key is short; use a long random key")
	if line["key_label"] != "short" {
		t.Errorf("warning names key %v, want short", line["key_label"])
	}
	if strings.Contains(p.stderr.String()+p.stdout.String(), "abcd") {
		t.Error("the short key itself appears in the logs")
	}
}

func TestRunFailsWhenAddressIsTaken(t *testing.T) {
	clearEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	srv := natstest.Start(t)
	err = run(ctx, []string{
		"-http-addr", ln.Addr().String(),
		"-nats-url", srv.URL(),
		"-webhook-keys", "primary:" + primaryKey,
	}, io.Discard, io.Discard)

	if err == nil || !strings.Contains(err.Error(), "listen on "+ln.Addr().String()) {
		t.Errorf("run() = %v, want a listen error", err)
	}
}

func TestHealthcheck(t *testing.T) {
	clearEnv(t)
	srv := natstest.Start(t)
	p := startIngress(t, "-nats-url", srv.URL(), "-webhook-keys", "primary:"+primaryKey)
	waitFor(t, 10*time.Second, "readyz 200", func() bool {
		return get(t, p.url("/readyz")).status == http.StatusOK
	})

	// The probe needs no keys, so it runs with any shared environment.
	var stdout bytes.Buffer
	err := run(t.Context(), []string{"-healthcheck", "-http-addr", p.addr}, &stdout, io.Discard)
	if err != nil {
		t.Fatalf("healthcheck of a ready ingress = %v, want nil", err)
	}
	if want := "ready: GET http://" + p.addr + "/readyz returned 200\n"; stdout.String() != want {
		t.Errorf("output = %q, want %q", stdout.String(), want)
	}

	srv.Shutdown()
	waitFor(t, 5*time.Second, "readyz 503", func() bool {
		return get(t, p.url("/readyz")).status == http.StatusServiceUnavailable
	})
	stdout.Reset()
	err = run(t.Context(), []string{"-healthcheck", "-http-addr", p.addr}, &stdout, io.Discard)
	if !errors.Is(err, errHealthcheckFailed) {
		t.Fatalf("healthcheck without NATS = %v, want errHealthcheckFailed", err)
	}
	if !strings.Contains(stdout.String(), "returned 503: not ready: ") ||
		strings.Count(stdout.String(), "\n") != 1 {
		t.Errorf("output = %q, want one line with the reason", stdout.String())
	}
}

func TestHealthcheckWithoutServer(t *testing.T) {
	clearEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()

	var stdout bytes.Buffer
	err = run(t.Context(), []string{"-healthcheck", "-http-addr", addr}, &stdout, io.Discard)
	if !errors.Is(err, errHealthcheckFailed) {
		t.Fatalf("healthcheck = %v, want errHealthcheckFailed", err)
	}
	if !strings.HasPrefix(stdout.String(), "not ready: ") {
		t.Errorf("output = %q, want a not ready line", stdout.String())
	}
}

func TestTLS(t *testing.T) {
	clearEnv(t)
	certFile, keyFile := tlstest.WriteCertificate(t, "127.0.0.1")
	srv := natstest.Start(t)
	tlsArgs := []string{"-tls-cert-file", certFile, "-tls-key-file", keyFile}

	p := startIngress(t, append(tlsArgs,
		"-nats-url", srv.URL(), "-webhook-keys", "primary:"+primaryKey)...)
	url := "https://" + p.addr + "/readyz"

	waitFor(t, 10*time.Second, "readyz 200 over HTTPS", func() bool {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		return send(t, insecureClient(0), req).status == http.StatusOK
	})

	// TLS 1.1 is below the minimum.
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if _, err := insecureClient(tls.VersionTLS11).Do(req); err == nil {
		t.Error("TLS 1.1 request succeeded, want a handshake failure")
	}

	// The probe uses HTTPS because the TLS files are configured.
	var stdout bytes.Buffer
	args := append([]string{"-healthcheck", "-http-addr", p.addr}, tlsArgs...)
	if err := run(t.Context(), args, &stdout, io.Discard); err != nil {
		t.Fatalf("healthcheck over HTTPS = %v; output %q", err, stdout.String())
	}
	if !strings.HasPrefix(stdout.String(), "ready: GET https://") {
		t.Errorf("output = %q, want an https probe", stdout.String())
	}
}
