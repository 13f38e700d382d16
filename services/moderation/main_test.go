package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/genrelay/genrelay/pkg/broker"
	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/pkg/leonardo"
	"github.com/genrelay/genrelay/pkg/leonardo/leonardotest"
	"github.com/genrelay/genrelay/pkg/natstest"
	"github.com/genrelay/genrelay/pkg/tlstest"
	"github.com/genrelay/genrelay/services/moderation/internal/health"
)

// syncBuffer collects the service's log output from several goroutines.
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

// service is a moderation run() started by startService.
type service struct {
	addr string
	logs *syncBuffer
	stop func() error
}

func freeAddr(t *testing.T) string {
	t.Helper()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startService runs the service with args on a free loopback port and
// stops it at cleanup.
func startService(t *testing.T, natsURL string, args ...string) *service {
	t.Helper()

	s := &service{addr: freeAddr(t), logs: &syncBuffer{}}
	args = append([]string{"-nats-url", natsURL, "-http-addr", s.addr,
		"-retry-backoff", "50ms", "-shutdown-timeout", "5s"}, args...)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, io.Discard, s.logs) }()

	var once sync.Once
	var runErr error
	s.stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("run returned %v", err)
		}
		if t.Failed() {
			t.Logf("service logs:\n%s", s.logs)
		}
	})
	return s
}

func getStatus(t *testing.T, url string) int {
	t.Helper()

	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// waitStatus polls url until it returns the expected status, for up to
// 30s.
func waitStatus(t *testing.T, url string, expected int) {
	t.Helper()

	deadline := time.Now().Add(30 * time.Second)
	last := 0
	for time.Now().Before(deadline) {
		if last = getStatus(t, url); last == expected {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s returned %d after 30s, expected %d", url, last, expected)
}

// publishSample publishes body on its inbound subject as ingress does:
// redacted, with Nats-Msg-Id and Genrelay-Received-At. It returns the
// message's sequence in the inbound stream.
func publishSample(t *testing.T, js jetstream.JetStream, body []byte) uint64 {
	t.Helper()

	env, err := leonardo.Validate(body)
	if err != nil {
		t.Fatalf("validate: %v", err)
	}
	redacted, err := leonardo.Redact(body)
	if err != nil {
		t.Fatalf("redact: %v", err)
	}
	msg := nats.NewMsg(broker.InboundSubject(leonardo.Source, env.Type))
	msg.Data = redacted
	msg.Header.Set(broker.HeaderMsgID, env.MessageID())
	msg.Header.Set(broker.HeaderReceivedAt, time.Now().UTC().Format(time.RFC3339Nano))
	msg.Header.Set(broker.HeaderRequestID, "req-"+env.ObjectID)
	msg.Header.Set(broker.HeaderContentType, "application/json")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return ack.Sequence
}

// waitEvent waits for an event about objectID on the results stream.
func waitEvent(t *testing.T, js jetstream.JetStream, objectID string) *genrelayv1.Event {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, broker.ResultsStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("ordered consumer: %v", err)
	}
	for {
		msg, err := cons.Next(jetstream.FetchContext(ctx))
		if err != nil {
			t.Fatalf("no event about %s: %v", objectID, err)
		}
		ev := &genrelayv1.Event{}
		if err := protojson.Unmarshal(msg.Data(), ev); err != nil {
			t.Fatalf("decode event: %v", err)
		}
		if ev.GetObjectId() == objectID {
			return ev
		}
	}
}

func TestRunRecoversFromNATSOutage(t *testing.T) {
	srv := natstest.Start(t)
	srv.Shutdown()

	// Start-up with NATS down: alive but not ready.
	svc := startService(t, srv.URL())
	base := "http://" + svc.addr
	waitStatus(t, base+health.LivenessPath, http.StatusOK)
	if got := getStatus(t, base+health.ReadinessPath); got != http.StatusServiceUnavailable {
		t.Errorf("readyz with NATS down = %d, expected 503", got)
	}

	srv.Restart()
	waitStatus(t, base+health.ReadinessPath, http.StatusOK)
	_, js := srv.Connect(t)
	first := leonardotest.WithObjectID(leonardotest.ImageSD15, "before-outage")
	publishSample(t, js, first)
	if ev := waitEvent(t, js, "before-outage"); ev.GetOutcome() != genrelayv1.Outcome_OUTCOME_CLEAN {
		t.Errorf("outcome = %v, expected clean", ev.GetOutcome())
	}

	// NATS stops and comes back: the same instance recovers.
	srv.Shutdown()
	waitStatus(t, base+health.ReadinessPath, http.StatusServiceUnavailable)
	srv.Restart()
	waitStatus(t, base+health.ReadinessPath, http.StatusOK)

	_, js = srv.Connect(t)
	second := leonardotest.WithObjectID(leonardotest.ImageSD15, "after-outage")
	publishSample(t, js, second)
	if ev := waitEvent(t, js, "after-outage"); ev.GetOutcome() != genrelayv1.Outcome_OUTCOME_CLEAN {
		t.Errorf("outcome = %v, expected clean", ev.GetOutcome())
	}

	if err := svc.stop(); err != nil {
		t.Errorf("graceful stop: %v", err)
	}
	if !strings.Contains(svc.logs.String(), `"msg":"moderation stopped"`) {
		t.Error("no stop line in the logs")
	}
}

func TestRunLogsNoSecrets(t *testing.T) {
	srv := natstest.Start(t)
	url := strings.Replace(srv.URL(), "nats://", "nats://operator:nats-password-1@", 1)
	svc := startService(t, url)
	waitStatus(t, "http://"+svc.addr+health.ReadinessPath, http.StatusOK)
	_, js := srv.Connect(t)

	var secrets []string
	for _, name := range []string{leonardotest.ImageNSFW, leonardotest.PostProcessingComplete} {
		secrets = append(secrets, leonardotest.Secrets(name)...)
		publishSample(t, js, leonardotest.Body(name))
	}
	waitEvent(t, js, "ca02135e-92b1-43f2-8ede-0d7ac3baea9e")
	if err := svc.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}

	logs := svc.logs.String()
	for _, secret := range append(secrets, "nats-password-1") {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain secret %q", secret)
		}
	}
	for _, expected := range []string{`"msg":"moderation starting"`, `"object_id":"6513270e-269e-4d37-b2a7-4de452e6b438"`} {
		if !strings.Contains(logs, expected) {
			t.Errorf("logs lack %s", expected)
		}
	}
}

func TestHealthcheckFlag(t *testing.T) {
	srv := natstest.Start(t)
	certFile, keyFile := tlstest.WriteCertificate(t, "moderation.test")
	tlsArgs := []string{"-tls-cert-file", certFile, "-tls-key-file", keyFile}

	tests := []struct {
		name string
		args []string
	}{
		{"plain http", nil},
		{"tls", tlsArgs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := startService(t, srv.URL(), tt.args...)
			_, port, _ := net.SplitHostPort(svc.addr)
			// The probe turns 0.0.0.0 into 127.0.0.1.
			probeArgs := append([]string{"-healthcheck", "-http-addr", "0.0.0.0:" + port}, tt.args...)

			var out bytes.Buffer
			deadline := time.Now().Add(30 * time.Second)
			err := run(t.Context(), probeArgs, &out, io.Discard)
			for err != nil && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
				err = run(t.Context(), probeArgs, &out, io.Discard)
			}
			if err != nil {
				t.Fatalf("probe of a ready service: %v", err)
			}
			if lines := strings.Count(out.String(), "\n"); lines != 1 || !strings.HasPrefix(out.String(), "ready: ") {
				t.Errorf("probe printed %q, expected one ready line", out.String())
			}

			if err := svc.stop(); err != nil {
				t.Fatalf("stop: %v", err)
			}
			if err := run(t.Context(), probeArgs, io.Discard, io.Discard); err == nil {
				t.Error("probe of a stopped service succeeded")
			}
		})
	}
}

func TestHealthcheckNotReady(t *testing.T) {
	srv := natstest.Start(t)
	srv.Shutdown()
	svc := startService(t, srv.URL())
	waitStatus(t, "http://"+svc.addr+health.LivenessPath, http.StatusOK)

	err := run(t.Context(), []string{"-healthcheck", "-http-addr", svc.addr}, io.Discard, io.Discard)
	if !errors.Is(err, health.ErrNotReady) {
		t.Errorf("probe with NATS down = %v, expected ErrNotReady", err)
	}
}
