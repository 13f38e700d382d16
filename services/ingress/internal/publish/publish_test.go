package publish_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/genrelay/genrelay/pkg/broker"
	"github.com/genrelay/genrelay/pkg/natsconn"
	"github.com/genrelay/genrelay/pkg/natstest"
	"github.com/genrelay/genrelay/services/ingress/internal/publish"
)

const subject = "genrelay.inbound.leonardo.image_generation.complete"

// env is a NATS server with the genrelay streams and a publisher that
// uses a reconnecting connection, as ingress does.
type env struct {
	srv *natstest.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	pub *publish.Publisher
}

func newEnv(t *testing.T, cfg broker.Config) *env {
	t.Helper()

	srv := natstest.Start(t)
	nc, err := natsconn.Connect(srv.URL(), "publish-test", natsconn.Events{})
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
	if err := broker.EnsureStreams(ctx, js, cfg); err != nil {
		t.Fatalf("ensure streams: %v", err)
	}

	return &env{srv: srv, nc: nc, js: js, pub: publish.NewPublisher(nc, js, 2*time.Second)}
}

func message(id string) publish.Message {
	return publish.Message{
		Subject:    subject,
		MsgID:      "leonardo:image_generation.complete:" + id,
		KeyLabel:   "current",
		RequestID:  "req-" + id,
		ReceivedAt: time.Date(2025, 3, 19, 10, 30, 0, 123456789, time.FixedZone("x", 3600)),
		Body:       []byte(`{"id":"` + id + `"}`),
	}
}

func TestPublishStoresMessageWithHeaders(t *testing.T) {
	e := newEnv(t, broker.DefaultConfig())
	ctx := context.Background()

	ack, err := e.pub.Publish(ctx, message("g1"))
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if ack.Stream != broker.InboundStream || ack.Sequence != 1 || ack.Duplicate {
		t.Errorf("ack = %+v, want stream %s, sequence 1, not duplicate", ack, broker.InboundStream)
	}

	stream, err := e.js.Stream(ctx, broker.InboundStream)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	stored, err := stream.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatalf("get message: %v", err)
	}

	if stored.Subject != subject {
		t.Errorf("subject = %q, want %q", stored.Subject, subject)
	}
	if !bytes.Equal(stored.Data, []byte(`{"id":"g1"}`)) {
		t.Errorf("data = %s", stored.Data)
	}
	wantHeaders := map[string]string{
		broker.HeaderMsgID:       "leonardo:image_generation.complete:g1",
		broker.HeaderReceivedAt:  "2025-03-19T09:30:00.123456789Z",
		broker.HeaderKeyLabel:    "current",
		broker.HeaderRequestID:   "req-g1",
		broker.HeaderContentType: "application/json",
	}
	for name, want := range wantHeaders {
		if got := stored.Header.Get(name); got != want {
			t.Errorf("header %s = %q, want %q", name, got, want)
		}
	}
}

func TestPublishOmitsEmptyKeyLabel(t *testing.T) {
	e := newEnv(t, broker.DefaultConfig())
	ctx := context.Background()

	m := message("g2")
	m.KeyLabel = ""
	ack, err := e.pub.Publish(ctx, m)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}

	stream, _ := e.js.Stream(ctx, broker.InboundStream)
	stored, err := stream.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatalf("get message: %v", err)
	}
	if values := stored.Header.Values(broker.HeaderKeyLabel); len(values) != 0 {
		t.Errorf("key label header = %q, want none", values)
	}
}

func TestPublishDuplicate(t *testing.T) {
	e := newEnv(t, broker.DefaultConfig())
	ctx := context.Background()

	first, err := e.pub.Publish(ctx, message("g1"))
	if err != nil {
		t.Fatalf("first Publish: %v", err)
	}
	second, err := e.pub.Publish(ctx, message("g1"))
	if err != nil {
		t.Fatalf("second Publish: %v", err)
	}

	if first.Duplicate {
		t.Error("first ack is a duplicate")
	}
	if !second.Duplicate {
		t.Error("second ack is not a duplicate")
	}
	if second.Sequence != first.Sequence {
		t.Errorf("duplicate sequence = %d, want %d", second.Sequence, first.Sequence)
	}
}

func TestPublishErrors(t *testing.T) {
	tests := []struct {
		name    string
		maxMsgs int64
		prepare func(t *testing.T, e *env)
		message func() publish.Message
		wantErr error
	}{
		{
			name:    "nats down",
			prepare: func(t *testing.T, e *env) { e.srv.Shutdown() },
			message: func() publish.Message { return message("g1") },
			wantErr: publish.ErrUnavailable,
		},
		{
			name:    "stream full",
			maxMsgs: 1,
			prepare: func(t *testing.T, e *env) {
				if _, err := e.pub.Publish(context.Background(), message("first")); err != nil {
					t.Fatalf("publish first message: %v", err)
				}
			},
			message: func() publish.Message { return message("second") },
			wantErr: publish.ErrUnavailable,
		},
		{
			name: "no stream for subject",
			prepare: func(t *testing.T, e *env) {
				if err := e.js.DeleteStream(context.Background(), broker.InboundStream); err != nil {
					t.Fatalf("delete stream: %v", err)
				}
			},
			message: func() publish.Message { return message("g1") },
			wantErr: publish.ErrUnavailable,
		},
		{
			name:    "over max payload",
			prepare: func(t *testing.T, e *env) {},
			message: func() publish.Message {
				// Larger than the test server's max payload of 4 MiB.
				m := message("big")
				m.Body = bytes.Repeat([]byte("x"), 5<<20)
				return m
			},
			wantErr: publish.ErrTooLarge,
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := broker.DefaultConfig()
			if tt.maxMsgs > 0 {
				cfg.InboundMaxMsgs = tt.maxMsgs
			}
			e := newEnv(t, cfg)
			tt.prepare(t, e)

			_, err := e.pub.Publish(context.Background(), tt.message())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Publish() error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestPublishTimeout(t *testing.T) {
	e := newEnv(t, broker.DefaultConfig())

	// A subscriber that drops every message replaces a stream that never
	// acknowledges, so the request has a responder but gets no reply.
	sub, err := e.nc.Subscribe("slow.>", func(*nats.Msg) {})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	pub := publish.NewPublisher(e.nc, e.js, 200*time.Millisecond)
	m := message("g1")
	m.Subject = "slow.subject"

	start := time.Now()
	_, err = pub.Publish(context.Background(), m)
	if !errors.Is(err, publish.ErrUnavailable) {
		t.Fatalf("Publish() error = %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "no acknowledgement within 200ms") {
		t.Errorf("error %q does not name the timeout", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Publish took %s, want about 200ms", elapsed)
	}
}

func TestReadiness(t *testing.T) {
	e := newEnv(t, broker.DefaultConfig())
	ready := publish.NewReadiness(e.nc, e.js, 100*time.Millisecond, time.Second)
	ctx := context.Background()

	if err := ready.Check(ctx); err != nil {
		t.Fatalf("Check() with NATS up = %v, want nil", err)
	}

	e.srv.Shutdown()
	waitFor(t, 5*time.Second, "unready after shutdown", func() bool {
		return ready.Check(ctx) != nil
	})

	e.srv.Restart()
	waitFor(t, 10*time.Second, "ready after restart", func() bool {
		return ready.Check(ctx) == nil
	})
}

func TestReadinessCachesResult(t *testing.T) {
	e := newEnv(t, broker.DefaultConfig())

	var requests atomic.Int64
	sub, err := e.nc.Subscribe("$JS.API.STREAM.INFO.>", func(*nats.Msg) {
		requests.Add(1)
	})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	ready := publish.NewReadiness(e.nc, e.js, time.Hour, time.Second)
	for range 20 {
		if err := ready.Check(context.Background()); err != nil {
			t.Fatalf("Check(): %v", err)
		}
	}
	if err := e.nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}

	if got := requests.Load(); got != 1 {
		t.Errorf("stream info requests = %d, want 1", got)
	}
}

func TestStreamKeeperWaitsForNATS(t *testing.T) {
	srv := natstest.Start(t)
	srv.Shutdown()

	nc, err := natsconn.Connect(srv.URL(), "keeper-test", natsconn.Events{})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	keeper := publish.NewStreamKeeper(broker.DefaultConfig(), zap.NewNop())
	go func() {
		defer close(done)
		keeper.Run(ctx, js)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	time.Sleep(300 * time.Millisecond)
	srv.Restart()

	waitFor(t, 15*time.Second, "streams created", func() bool {
		_, errIn := js.Stream(context.Background(), broker.InboundStream)
		_, errOut := js.Stream(context.Background(), broker.ResultsStream)
		return errIn == nil && errOut == nil
	})

	// A trigger after a stream vanished brings it back.
	if err := js.DeleteStream(context.Background(), broker.InboundStream); err != nil {
		t.Fatalf("delete stream: %v", err)
	}
	keeper.Trigger()
	waitFor(t, 10*time.Second, "stream recreated", func() bool {
		_, err := js.Stream(context.Background(), broker.InboundStream)
		return err == nil
	})
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()

	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
