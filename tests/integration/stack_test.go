package integration

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/genrelay/genrelay/pkg/broker"
	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/pkg/natstest"
)

// Bearer keys the stack accepts: two live at once, as during a rotation.
const (
	primaryKey   = "gr-test-primary-3b1f0c5d9e"
	secondaryKey = "gr-test-secondary-7a2e4c8f1b"
)

// stack is a NATS server with ingress and moderation processes around it.
type stack struct {
	nats           *natstest.Server
	js             jetstream.JetStream
	ingress        *process
	moderation     *process
	ingressAddr    string
	moderationAddr string
}

// startStack runs NATS in-process and both services as processes, and
// waits until both report ready.
func startStack(t testing.TB) *stack {
	t.Helper()

	s := &stack{nats: natstest.Start(t)}
	_, s.js = s.nats.Connect(t)

	s.startModeration(t)
	s.startIngress(t)
	waitReady(t, "http://"+s.ingressAddr+"/readyz", 30*time.Second)
	waitReady(t, "http://"+s.moderationAddr+"/readyz", 30*time.Second)

	return s
}

func (s *stack) startIngress(t testing.TB) {
	t.Helper()

	if s.ingressAddr == "" {
		s.ingressAddr = freeAddr(t)
	}
	s.ingress = startProcess(t, "ingress",
		"GENRELAY_NATS_URL="+s.nats.URL(),
		"GENRELAY_HTTP_ADDR="+s.ingressAddr,
		"GENRELAY_WEBHOOK_KEYS=primary:"+primaryKey+",secondary:"+secondaryKey,
		"GENRELAY_PUBLISH_TIMEOUT=2s",
		"GENRELAY_RETRY_AFTER=3s",
	)
}

func (s *stack) startModeration(t testing.TB) {
	t.Helper()

	if s.moderationAddr == "" {
		s.moderationAddr = freeAddr(t)
	}
	s.moderation = startProcess(t, "moderation",
		"GENRELAY_NATS_URL="+s.nats.URL(),
		"GENRELAY_HTTP_ADDR="+s.moderationAddr,
		"GENRELAY_ACK_WAIT=5s",
	)
}

// post sends body to the webhook endpoint the way Leonardo does and
// returns the status and response body.
func (s *stack) post(t testing.TB, key string, body []byte) (int, http.Header, string) {
	t.Helper()

	req, err := http.NewRequest(http.MethodPost,
		"http://"+s.ingressAddr+"/v1/webhooks/leonardo", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set("authorization", "Bearer "+key)
	req.Header.Set("user-agent", "axios/1.4.0")
	req.Close = true

	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post callback: %v", err)
	}
	defer resp.Body.Close()

	text, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(text)
}

// postBench is post for benchmarks: it returns errors instead of failing,
// because it runs on several goroutines.
func (s *stack) postBench(key string, body []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost,
		"http://"+s.ingressAddr+"/v1/webhooks/leonardo", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set("authorization", "Bearer "+key)

	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()

	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// waitResultCount waits until the results stream holds at least n
// messages.
func (s *stack) waitResultCount(t testing.TB, n int, within time.Duration) {
	t.Helper()

	deadline := time.Now().Add(within)
	for {
		st, err := s.js.Stream(context.Background(), broker.ResultsStream)
		if err != nil {
			t.Fatal(err)
		}
		if st.CachedInfo().State.Msgs >= uint64(n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d results after %s, want %d", st.CachedInfo().State.Msgs, within, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// result is one message of the results stream.
type result struct {
	subject string
	msgID   string
	data    []byte
	event   *genrelayv1.Event
}

// results reads every message currently in the results stream.
func (s *stack) results(t testing.TB) []result {
	t.Helper()

	return readStream(t, s.js, broker.ResultsStream, func(m jetstream.Msg) result {
		var ev genrelayv1.Event
		if err := protojson.Unmarshal(m.Data(), &ev); err != nil {
			t.Fatalf("decode result on %s: %v", m.Subject(), err)
		}
		return result{
			subject: m.Subject(),
			msgID:   m.Headers().Get(broker.HeaderMsgID),
			data:    m.Data(),
			event:   &ev,
		}
	})
}

// waitResults polls the results stream until done accepts it.
func (s *stack) waitResults(t testing.TB, within time.Duration, done func([]result) bool) []result {
	t.Helper()

	deadline := time.Now().Add(within)
	for {
		got := s.results(t)
		if done(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("results not as expected within %s; have %d: %v", within, len(got), subjects(got))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func subjects(rs []result) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.subject+" "+r.event.GetObjectId())
	}
	return out
}

// readStream reads every message of a stream with an ordered consumer.
func readStream[T any](
	t testing.TB,
	js jetstream.JetStream,
	stream string,
	convert func(jetstream.Msg) T,
) []T {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	if info.State.Msgs == 0 {
		return nil
	}

	cons, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("ordered consumer on %s: %v", stream, err)
	}

	var out []T
	for uint64(len(out)) < info.State.Msgs {
		batch, err := cons.Fetch(int(info.State.Msgs)-len(out), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatalf("fetch from %s: %v", stream, err)
		}
		n := 0
		for m := range batch.Messages() {
			out = append(out, convert(m))
			n++
		}
		if n == 0 {
			t.Fatalf("stream %s: read %d of %d messages", stream, len(out), info.State.Msgs)
		}
	}
	return out
}
