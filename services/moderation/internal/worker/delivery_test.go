package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/genrelay/genrelay/pkg/broker"
	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/pkg/leonardo/leonardotest"
	"github.com/genrelay/genrelay/services/moderation/internal/pipeline"
)

func TestRepeatedInputPublishedOnce(t *testing.T) {
	t.Run("stored twice without message id", func(t *testing.T) {
		env := newEnv(t)
		startWorker(t, env, testConfig(), workerOptions{})
		body := leonardotest.Body(leonardotest.ImageSD15)

		publishCallback(t, env.js, body, "")
		waitResults(t, env.js, 1, 0)
		publishCallback(t, env.js, body, "")
		waitAcked(t, env.js, testConfig().Durable)
		results := waitResults(t, env.js, 1, 500*time.Millisecond)

		if len(results) != 1 {
			t.Errorf("two copies of one callback yielded %d events, expected 1", len(results))
		}
	})

	t.Run("processed by two consumers", func(t *testing.T) {
		env := newEnv(t)
		first, second := testConfig(), testConfig()
		second.Durable = "genrelay-moderation-second"
		startWorker(t, env, first, workerOptions{})
		startWorker(t, env, second, workerOptions{})
		body := modified(t, leonardotest.ImageNSFW, func(o map[string]any) { o["nsfw"] = false })

		publishCallback(t, env.js, body, messageID(t, body))
		waitAcked(t, env.js, first.Durable)
		waitAcked(t, env.js, second.Durable)
		results := waitResults(t, env.js, 2, 500*time.Millisecond)

		if len(results) != 2 {
			t.Errorf("a callback processed twice yielded %d events, expected 2 (clean, rejected)",
				len(results))
		}
	})

	t.Run("redelivered after a nak", func(t *testing.T) {
		env := newEnv(t)
		screener := &fakeScreener{outcome: func(call int, _ pipeline.ScreenImage) (genrelayv1.Outcome, error) {
			if call == 1 {
				return 0, errors.New("provider timed out")
			}
			return genrelayv1.Outcome_OUTCOME_CLEAN, nil
		}}
		startWorker(t, env, testConfig(), workerOptions{screener: screener})
		body := leonardotest.Body(leonardotest.ImageComplete)

		publishCallback(t, env.js, body, messageID(t, body))
		info := waitAcked(t, env.js, testConfig().Durable)
		results := waitResults(t, env.js, 1, 500*time.Millisecond)

		if len(results) != 1 {
			t.Fatalf("got %d events, expected 1", len(results))
		}
		if screener.callCount() != 2 {
			t.Errorf("screener calls = %d, expected 2 (one failed, one after redelivery)",
				screener.callCount())
		}
		if info.Delivered.Consumer != 2 {
			t.Errorf("deliveries = %d, expected 2", info.Delivered.Consumer)
		}
		if got := results[0].event.GetDecisions(); !hasProvider(got, "fake") {
			t.Errorf("clean event lacks the screening decision: %v", got)
		}
	})
}

func hasProvider(decisions []*genrelayv1.Decision, provider string) bool {
	for _, d := range decisions {
		if d.GetProvider() == provider {
			return true
		}
	}
	return false
}

func TestScreeningMakesImagesStricter(t *testing.T) {
	env := newEnv(t)
	screener := &fakeScreener{outcome: func(_ int, img pipeline.ScreenImage) (genrelayv1.Outcome, error) {
		if img.ID == "8e81973e-0bec-47b0-b898-d190f9ebdacc" {
			return genrelayv1.Outcome_OUTCOME_REJECTED, nil
		}
		return genrelayv1.Outcome_OUTCOME_CLEAN, nil
	}}
	startWorker(t, env, testConfig(), workerOptions{screener: screener})
	body := leonardotest.Body(leonardotest.ImageSD15)

	publishCallback(t, env.js, body, messageID(t, body))
	results := waitResults(t, env.js, 2, 300*time.Millisecond)

	if len(results) != 2 {
		t.Fatalf("got %d events, expected clean and rejected", len(results))
	}
	if got := len(results[0].event.GetImages()); got != 3 {
		t.Errorf("clean images = %d, expected 3", got)
	}
	if got := imageIDs(results[1].event); len(got) != 1 || got[0] != "8e81973e-0bec-47b0-b898-d190f9ebdacc" {
		t.Errorf("rejected images = %v", got)
	}
	if screener.callCount() != 4 {
		t.Errorf("screener calls = %d, expected one per image", screener.callCount())
	}
}

func TestUndecodableDeadLettered(t *testing.T) {
	tests := []struct {
		name           string
		data           []byte
		expectedObject string
		expectedReason string
		expectPayload  bool
	}{
		{
			name: "images is a string",
			data: []byte(`{"type":"image_generation.complete","data":{"object":` +
				`{"id":"gen-1","status":"COMPLETE","images":"not a list",` +
				`"apiKey":{"key":"leaked-key"}}}}`),
			expectedObject: "gen-1",
			expectedReason: "images",
			expectPayload:  true,
		},
		{
			name:           "not json",
			data:           []byte("not json at all"),
			expectedReason: "undecodable callback",
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t)
			cfg := testConfig()
			cfg.MaxDeliver = 3
			startWorker(t, env, cfg, workerOptions{})
			subject := broker.InboundSubject("leonardo", "image_generation.complete")

			seq := publishRaw(t, env.js, subject, tt.data, "msg-"+tt.name)
			info := waitAcked(t, env.js, cfg.Durable)
			results := waitResults(t, env.js, 1, 300*time.Millisecond)

			if len(results) != 1 {
				t.Fatalf("got %d events, expected one dead letter", len(results))
			}
			ev := results[0].event
			checkDeadLetter(t, results[0], tt.expectedObject, tt.expectedReason, seq)
			if (ev.GetPayload() != nil) != tt.expectPayload {
				t.Errorf("payload present = %v, expected %v", ev.GetPayload() != nil, tt.expectPayload)
			}
			if bytes.Contains(results[0].raw, []byte("leaked-key")) {
				t.Error("dead letter contains the apiKey.key value")
			}
			if info.NumRedelivered != 0 {
				t.Errorf("%d messages still marked redelivered after the ack", info.NumRedelivered)
			}
		})
	}
}

func checkDeadLetter(t *testing.T, r result, object, reason string, seq uint64) {
	t.Helper()

	ev := r.event
	if r.subject != "genrelay.dlq.image_generation.complete" {
		t.Errorf("subject = %q", r.subject)
	}
	if ev.GetOutcome() != genrelayv1.Outcome_OUTCOME_DEAD_LETTER {
		t.Errorf("outcome = %v", ev.GetOutcome())
	}
	if !strings.Contains(ev.GetReason(), reason) {
		t.Errorf("reason %q does not mention %q", ev.GetReason(), reason)
	}
	if ev.GetObjectId() != object {
		t.Errorf("object id = %q, expected %q", ev.GetObjectId(), object)
	}
	if ev.GetInboundSequence() != seq {
		t.Errorf("inbound sequence = %d, expected %d", ev.GetInboundSequence(), seq)
	}
	if !strings.HasSuffix(ev.GetId(), ":dlq") {
		t.Errorf("id = %q, expected the :dlq suffix", ev.GetId())
	}
}

func TestDeadLetterOnlyAtLastDelivery(t *testing.T) {
	env := newEnv(t)
	cfg := testConfig()
	cfg.MaxDeliver = 4
	cfg.Backoff = []time.Duration{300 * time.Millisecond}
	startWorker(t, env, cfg, workerOptions{})
	subject := broker.InboundSubject("leonardo", "image_generation.complete")

	publishRaw(t, env.js, subject, []byte("{"), "msg-broken")
	time.Sleep(600 * time.Millisecond)

	stream, err := env.js.Stream(context.Background(), broker.ResultsStream)
	if err != nil {
		t.Fatalf("results stream: %v", err)
	}
	if n := resultCount(t, stream); n != 0 {
		t.Errorf("%d events published before the last delivery, expected none", n)
	}
	if info := consumerInfo(t, env.js, cfg.Durable); info.NumAckPending != 1 {
		t.Errorf("unacknowledged messages = %d, expected the broken one", info.NumAckPending)
	}

	waitAcked(t, env.js, cfg.Durable)
	if results := waitResults(t, env.js, 1, 300*time.Millisecond); len(results) != 1 {
		t.Errorf("got %d events, expected one dead letter", len(results))
	}
}

func TestPublishFailureRetried(t *testing.T) {
	env := newEnv(t)
	ctx := context.Background()
	if err := env.js.DeleteStream(ctx, broker.ResultsStream); err != nil {
		t.Fatalf("delete results stream: %v", err)
	}
	cfg := testConfig()
	cfg.MaxDeliver = 100
	cfg.PublishTimeout = 500 * time.Millisecond
	startWorker(t, env, cfg, workerOptions{})
	body := leonardotest.Body(leonardotest.ImageSD15)

	publishCallback(t, env.js, body, messageID(t, body))
	deadline := time.Now().Add(10 * time.Second)
	for consumerInfo(t, env.js, cfg.Durable).NumRedelivered == 0 {
		if time.Now().After(deadline) {
			t.Fatal("message not redelivered after its publish failed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if info := consumerInfo(t, env.js, cfg.Durable); info.NumAckPending != 1 {
		t.Fatalf("unacknowledged = %d while events cannot be stored, expected 1",
			info.NumAckPending)
	}

	if err := broker.EnsureStreams(ctx, env.js, broker.DefaultConfig()); err != nil {
		t.Fatalf("recreate streams: %v", err)
	}
	waitAcked(t, env.js, cfg.Durable)
	if results := waitResults(t, env.js, 1, 300*time.Millisecond); len(results) != 1 {
		t.Errorf("got %d events, expected 1", len(results))
	}
}

func TestSlowScreeningKeptInProgress(t *testing.T) {
	env := newEnv(t)
	cfg := testConfig()
	cfg.AckWait = time.Second
	// The screener reports no progress, so only the worker's own
	// progress signals keep the message from being redelivered.
	screener := &fakeScreener{delay: 3 * time.Second, silent: true}
	startWorker(t, env, cfg, workerOptions{screener: screener})
	body := leonardotest.Body(leonardotest.ImageComplete)

	publishCallback(t, env.js, body, messageID(t, body))
	info := waitAcked(t, env.js, cfg.Durable)

	if screener.callCount() != 1 {
		t.Errorf("screener calls = %d, expected 1: the ack wait expired during screening",
			screener.callCount())
	}
	if info.Delivered.Consumer != 1 {
		t.Errorf("deliveries = %d, expected 1", info.Delivered.Consumer)
	}
}

func TestStopMidBatchLosesNothing(t *testing.T) {
	tests := []struct {
		name            string
		shutdownTimeout time.Duration
	}{
		{"in-flight messages abandoned", 0},
		{"in-flight messages finished", 10 * time.Second},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t)
			const callbacks = 40
			for i := range callbacks {
				body := leonardotest.WithObjectID(leonardotest.ImageComplete, fmt.Sprintf("gen-%03d", i))
				publishCallback(t, env.js, body, messageID(t, body))
			}

			cfg := testConfig()
			cfg.ShutdownTimeout = tt.shutdownTimeout
			screener := &fakeScreener{delay: 50 * time.Millisecond}
			first := startWorker(t, env, cfg, workerOptions{screener: screener})
			waitResults(t, env.js, 5, 0)
			first.stop()
			if info := consumerInfo(t, env.js, cfg.Durable); info.NumPending+uint64(info.NumAckPending) == 0 {
				t.Fatal("the first run finished every message; the test stopped it too late")
			}

			startWorker(t, env, cfg, workerOptions{screener: screener})
			waitAcked(t, env.js, cfg.Durable)
			results := waitResults(t, env.js, callbacks, 500*time.Millisecond)

			counts := countByObject(results)
			for i := range callbacks {
				key := fmt.Sprintf("gen-%03d/clean", i)
				if counts[key] != 1 {
					t.Errorf("%s: %d events, expected 1", key, counts[key])
				}
			}
			if len(results) != callbacks {
				t.Errorf("got %d events for %d callbacks", len(results), callbacks)
			}
		})
	}
}

// lockedBuffer is a log sink that several goroutines write to.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

func TestSecretsNeverPublishedOrLogged(t *testing.T) {
	env := newEnv(t)
	logs := &lockedBuffer{}
	core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		zapcore.AddSync(logs), zap.DebugLevel)
	startWorker(t, env, testConfig(), workerOptions{log: zap.New(core)})

	var secrets []string
	published := 0
	for _, name := range leonardotest.Names() {
		if name == leonardotest.ImageComplete {
			continue // its key equals its masked ids
		}
		secrets = append(secrets, leonardotest.Secrets(name)...)
		body := leonardotest.Body(name)
		// Published unredacted: moderation must not rely on ingress.
		publishRaw(t, env.js, inboundSubject(t, body), body, messageID(t, body))
		published++
	}
	waitAcked(t, env.js, testConfig().Durable)
	results := waitResults(t, env.js, published, 300*time.Millisecond)

	for _, r := range results {
		if secret, found := containsAny(r.raw, secrets); found {
			t.Errorf("event %s contains secret %q", r.event.GetId(), secret)
		}
	}
	if secret, found := containsAny(logs.Bytes(), secrets); found {
		t.Errorf("logs contain secret %q", secret)
	}
	if !bytes.Contains(logs.Bytes(), []byte(`"msg":"event published"`)) {
		t.Error("no decision was logged")
	}
}
