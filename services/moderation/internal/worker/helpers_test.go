package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/genrelay/genrelay/pkg/broker"
	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/pkg/leonardo"
	"github.com/genrelay/genrelay/pkg/natstest"
	"github.com/genrelay/genrelay/services/moderation/internal/pipeline"
	"github.com/genrelay/genrelay/services/moderation/internal/policy"
	"github.com/genrelay/genrelay/services/moderation/internal/verdicts"
)

// receivedAt is the Genrelay-Received-At that test callbacks carry.
var receivedAt = time.Date(2025, 3, 19, 10, 30, 0, 123456789, time.UTC)

// testEnv is a NATS server with the streams and bucket set up.
type testEnv struct {
	srv *natstest.Server
	js  jetstream.JetStream
	kv  jetstream.KeyValue
}

func newEnv(t *testing.T) testEnv {
	t.Helper()

	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	cfg := broker.DefaultConfig()
	if err := broker.EnsureStreams(ctx, js, cfg); err != nil {
		t.Fatalf("ensure streams: %v", err)
	}
	kv, err := broker.EnsureVerdictBucket(ctx, js, cfg)
	if err != nil {
		t.Fatalf("ensure bucket: %v", err)
	}
	return testEnv{srv: srv, js: js, kv: kv}
}

// testConfig returns a worker config with short retry delays.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Backoff = []time.Duration{50 * time.Millisecond}
	cfg.MaxDeliver = 5
	cfg.Workers = 4
	cfg.ShutdownTimeout = 10 * time.Second
	cfg.FetchWait = 200 * time.Millisecond
	return cfg
}

// runningWorker is a Worker started by startWorker.
type runningWorker struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// stop cancels the worker and waits until Run returns.
func (r *runningWorker) stop() {
	r.cancel()
	<-r.done
}

type workerOptions struct {
	policy   policy.Config
	screener pipeline.Screener
	log      *zap.Logger
}

func startWorker(t *testing.T, env testEnv, cfg Config, opts workerOptions) *runningWorker {
	t.Helper()

	if opts.policy == (policy.Config{}) {
		opts.policy = policy.DefaultConfig()
	}
	if opts.log == nil {
		opts.log = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	}
	proc, err := pipeline.New(pipeline.Config{
		Policy: opts.policy, Verdicts: verdicts.New(env.kv), Screener: opts.screener,
	})
	if err != nil {
		t.Fatalf("new pipeline: %v", err)
	}
	w, err := New(env.js, cfg, proc, opts.log)
	if err != nil {
		t.Fatalf("new worker: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	r := &runningWorker{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		_ = w.Run(ctx)
	}()
	t.Cleanup(r.stop)
	waitConsumer(t, env.js, cfg.Durable)
	return r
}

// waitConsumer waits until Run has created the durable consumer, so that
// a test can read its state right away.
func waitConsumer(t *testing.T, js jetstream.JetStream, durable string) {
	t.Helper()

	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := js.Consumer(context.Background(), broker.InboundStream, durable)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer %s not created after 10s: %v", durable, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// publishCallback stores body on the inbound subject of its type with the
// headers that ingress sets, redacting it as ingress does. An empty msgID
// publishes without Nats-Msg-Id. It returns the stream sequence.
func publishCallback(t *testing.T, js jetstream.JetStream, body []byte, msgID string) uint64 {
	t.Helper()

	redacted, err := leonardo.Redact(body)
	if err != nil {
		t.Fatalf("redact: %v", err)
	}
	return publishRaw(t, js, inboundSubject(t, body), redacted, msgID)
}

func inboundSubject(t *testing.T, body []byte) string {
	t.Helper()

	var doc struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Type == "" {
		return broker.InboundSubject(leonardo.Source, leonardo.TypeImageGenerationComplete)
	}
	return broker.InboundSubject(leonardo.Source, doc.Type)
}

func publishRaw(t *testing.T, js jetstream.JetStream, subject string, data []byte, msgID string) uint64 {
	t.Helper()

	msg := nats.NewMsg(subject)
	msg.Data = data
	msg.Header.Set(broker.HeaderReceivedAt, receivedAt.Format(time.RFC3339Nano))
	msg.Header.Set(broker.HeaderKeyLabel, "primary")
	msg.Header.Set(broker.HeaderRequestID, "req-test")
	msg.Header.Set(broker.HeaderContentType, "application/json")
	if msgID != "" {
		msg.Header.Set(broker.HeaderMsgID, msgID)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ack, err := js.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatalf("publish to %s: %v", subject, err)
	}
	return ack.Sequence
}

// messageID returns the Nats-Msg-Id that ingress would set for body.
func messageID(t *testing.T, body []byte) string {
	t.Helper()

	env, err := leonardo.Validate(body)
	if err != nil {
		t.Fatalf("validate sample: %v", err)
	}
	return env.MessageID()
}

// result is one stored event with its subject and headers.
type result struct {
	subject string
	header  nats.Header
	raw     []byte
	event   *genrelayv1.Event
}

// waitResults waits until the results stream holds at least n events,
// then waits settle longer to catch extra ones, and returns them all.
func waitResults(t *testing.T, js jetstream.JetStream, n int, settle time.Duration) []result {
	t.Helper()

	stream, err := js.Stream(context.Background(), broker.ResultsStream)
	if err != nil {
		t.Fatalf("results stream: %v", err)
	}

	deadline := time.Now().Add(30 * time.Second)
	for resultCount(t, stream) < uint64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("results stream holds %d events after 30s, expected %d",
				resultCount(t, stream), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(settle)

	return readResults(t, stream)
}

func resultCount(t *testing.T, stream jetstream.Stream) uint64 {
	t.Helper()

	info, err := stream.Info(context.Background())
	if err != nil {
		t.Fatalf("results stream info: %v", err)
	}
	return info.State.Msgs
}

func readResults(t *testing.T, stream jetstream.Stream) []result {
	t.Helper()

	info, err := stream.Info(context.Background())
	if err != nil {
		t.Fatalf("results stream info: %v", err)
	}

	var results []result
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		raw, err := stream.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatalf("get result %d: %v", seq, err)
		}
		ev := &genrelayv1.Event{}
		if err := protojson.Unmarshal(raw.Data, ev); err != nil {
			t.Fatalf("decode result %d on %s: %v", seq, raw.Subject, err)
		}
		results = append(results, result{
			subject: raw.Subject, header: raw.Header, raw: raw.Data, event: ev,
		})
	}
	return results
}

// countByObject counts events per object id and outcome.
func countByObject(results []result) map[string]int {
	counts := map[string]int{}
	for _, r := range results {
		key := r.event.GetObjectId() + "/" + pipeline.OutcomeName(r.event.GetOutcome())
		counts[key]++
	}
	return counts
}

func imageIDs(ev *genrelayv1.Event) []string {
	var ids []string
	for _, img := range ev.GetImages() {
		ids = append(ids, img.GetId())
	}
	return ids
}

// consumerInfo returns the durable consumer's state.
func consumerInfo(t *testing.T, js jetstream.JetStream, durable string) *jetstream.ConsumerInfo {
	t.Helper()

	cons, err := js.Consumer(context.Background(), broker.InboundStream, durable)
	if err != nil {
		t.Fatalf("consumer %s: %v", durable, err)
	}
	info, err := cons.Info(context.Background())
	if err != nil {
		t.Fatalf("consumer %s info: %v", durable, err)
	}
	return info
}

// waitAcked waits until the consumer has acknowledged every message in
// the inbound stream. It compares the ack floor with the stream's last
// sequence, because the consumer's pending count lags behind publishes.
func waitAcked(t *testing.T, js jetstream.JetStream, durable string) *jetstream.ConsumerInfo {
	t.Helper()

	stream, err := js.Stream(context.Background(), broker.InboundStream)
	if err != nil {
		t.Fatalf("inbound stream: %v", err)
	}
	streamInfo, err := stream.Info(context.Background())
	if err != nil {
		t.Fatalf("inbound stream info: %v", err)
	}
	last := streamInfo.State.LastSeq

	deadline := time.Now().Add(15 * time.Second)
	for {
		info := consumerInfo(t, js, durable)
		if info.AckFloor.Stream >= last && info.NumAckPending == 0 {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer %s: ack floor %d of %d, %d unacknowledged after 15s",
				durable, info.AckFloor.Stream, last, info.NumAckPending)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fakeScreener is a pipeline.Screener for tests. It returns the
// outcome function's result after delay, calling progress while it waits unless
// silent is set.
type fakeScreener struct {
	delay   time.Duration
	silent  bool
	outcome func(call int, img pipeline.ScreenImage) (genrelayv1.Outcome, error)

	mu    sync.Mutex
	calls int
}

func (s *fakeScreener) Applies(pipeline.ScreenImage) bool { return true }

// Screen returns screenOne's decision as the only one.
func (s *fakeScreener) Screen(ctx context.Context, img pipeline.ScreenImage, progress func()) ([]*genrelayv1.Decision, error) {
	d, err := s.screenOne(ctx, img, progress)
	if err != nil || d == nil {
		return nil, err
	}
	return []*genrelayv1.Decision{d}, nil
}

func (s *fakeScreener) screenOne(ctx context.Context, img pipeline.ScreenImage,
	progress func(),
) (*genrelayv1.Decision, error) {
	s.mu.Lock()
	s.calls++
	call := s.calls
	s.mu.Unlock()

	if s.silent {
		progress = func() {}
	}
	if err := waitWithProgress(ctx, s.delay, progress); err != nil {
		return nil, err
	}

	outcome := genrelayv1.Outcome_OUTCOME_CLEAN
	if s.outcome != nil {
		var err error
		if outcome, err = s.outcome(call, img); err != nil {
			return nil, err
		}
	}
	return &genrelayv1.Decision{
		ImageId: img.ID, Rule: "threshold", Provider: "fake",
		Outcome: outcome, Reason: fmt.Sprintf("fake call %d", call),
	}, nil
}

func (s *fakeScreener) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func waitWithProgress(ctx context.Context, d time.Duration, progress func()) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(100*time.Millisecond, time.Until(deadline))):
			progress()
		}
	}
	return nil
}

// containsAny returns the first secret found in data.
func containsAny(data []byte, secrets []string) (string, bool) {
	for _, s := range secrets {
		if s != "" && bytes.Contains(data, []byte(s)) {
			return s, true
		}
	}
	return "", false
}
