package webhook_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/genrelay/genrelay/pkg/broker"
	"github.com/genrelay/genrelay/pkg/leonardo"
	"github.com/genrelay/genrelay/pkg/leonardo/leonardotest"
)

func TestSamplesAreStoredRedacted(t *testing.T) {
	a := startApp(t)

	for _, name := range leonardotest.Names() {
		t.Run(name, func(t *testing.T) {
			body := leonardotest.Body(name)
			envelope, err := leonardo.Validate(body)
			if err != nil {
				t.Fatalf("sample does not validate: %v", err)
			}

			got := a.post(t, body).accepted(t)
			if got.MessageID != envelope.MessageID() || got.Duplicate || got.Status != "accepted" {
				t.Errorf("response = %+v, want message id %s, not duplicate", got, envelope.MessageID())
			}

			msg := storedMessage(t, a, got.StreamSequence)
			if want := "genrelay.inbound.leonardo." + envelope.Type; msg.subject != want {
				t.Errorf("subject = %q, want %q", msg.subject, want)
			}
			if id := msg.header.Get(broker.HeaderMsgID); id != envelope.MessageID() {
				t.Errorf("Nats-Msg-Id = %q, want %q", id, envelope.MessageID())
			}
			if id := msg.header.Get(broker.HeaderRequestID); id != got.RequestID {
				t.Errorf("request id header = %q, want %q", id, got.RequestID)
			}
			checkReceivedAt(t, msg.header.Get(broker.HeaderReceivedAt))
			checkRedacted(t, name, msg.data)
		})
	}
}

type stored struct {
	subject string
	header  http.Header
	data    []byte
}

func storedMessage(t *testing.T, a *app, seq uint64) stored {
	t.Helper()

	for _, msg := range a.inboundMessages(t) {
		if msg.Sequence == seq {
			return stored{subject: msg.Subject, header: http.Header(msg.Header), data: msg.Data}
		}
	}
	t.Fatalf("no stored message with sequence %d", seq)
	return stored{}
}

func checkReceivedAt(t *testing.T, value string) {
	t.Helper()

	at, err := time.Parse(time.RFC3339Nano, value)
	if err != nil {
		t.Errorf("received-at %q is not RFC 3339: %v", value, err)
		return
	}
	if !strings.HasSuffix(value, "Z") {
		t.Errorf("received-at %q is not UTC", value)
	}
	if age := time.Since(at); age < 0 || age > time.Minute {
		t.Errorf("received-at %s is %s away from now", value, age)
	}
}

// checkRedacted checks that both apiKey secrets were replaced and, for
// the samples whose secrets are unique strings, that they appear nowhere.
func checkRedacted(t *testing.T, name string, data []byte) {
	t.Helper()

	var doc struct {
		Data struct {
			Object struct {
				APIKey map[string]any `json:"apiKey"`
			} `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("stored body is not JSON: %v", err)
	}
	for _, field := range []string{"key", "webhookCallbackApiKey"} {
		if got := doc.Data.Object.APIKey[field]; got != leonardo.Redacted {
			t.Errorf("apiKey.%s = %v, want %s", field, got, leonardo.Redacted)
		}
	}

	// The guide's sample masks its key with the same value as its ids.
	if name == leonardotest.ImageComplete {
		return
	}
	for _, secret := range leonardotest.Secrets(name) {
		if strings.Contains(string(data), secret) {
			t.Errorf("stored body contains secret %q", secret)
		}
	}
}

func TestRepeatedCallbackIsStoredOnce(t *testing.T) {
	a := startApp(t)
	body := leonardotest.Body(leonardotest.ImageNSFW)

	first := a.post(t, body).accepted(t)
	second := a.post(t, body).accepted(t)

	if first.Duplicate || !second.Duplicate {
		t.Errorf("duplicate flags = %v, %v, want false, true", first.Duplicate, second.Duplicate)
	}
	if second.StreamSequence != first.StreamSequence {
		t.Errorf("duplicate sequence = %d, want %d", second.StreamSequence, first.StreamSequence)
	}
	if n := a.inboundCount(t); n != 1 {
		t.Errorf("stream holds %d messages, want 1", n)
	}
}

func TestConcurrentIdenticalCallbacksAreStoredOnce(t *testing.T) {
	const senders = 50
	a := startApp(t)
	body := leonardotest.Body(leonardotest.PostProcessingComplete)

	requests := make([]*http.Request, senders)
	for i := range requests {
		requests[i] = a.webhookRequest(t, body, "Bearer "+currentKey)
	}

	results := make([]response, senders)
	errs := make([]error, senders)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range senders {
		wg.Go(func() {
			<-start
			results[i], errs[i] = send(requests[i])
		})
	}
	close(start)
	wg.Wait()

	firsts := 0
	for i, resp := range results {
		if errs[i] != nil {
			t.Errorf("request %d: %v", i, errs[i])
			continue
		}
		if resp.status != http.StatusAccepted {
			t.Errorf("request %d: status = %d, want 202; body %s", i, resp.status, resp.body)
			continue
		}
		if !resp.accepted(t).Duplicate {
			firsts++
		}
	}

	if firsts != 1 {
		t.Errorf("responses without the duplicate flag = %d, want 1", firsts)
	}
	if n := a.inboundCount(t); n != 1 {
		t.Errorf("stream holds %d messages, want 1", n)
	}
}

func TestNATSOutage(t *testing.T) {
	a := startApp(t)

	a.post(t, leonardotest.WithObjectID(leonardotest.ImageSD15, "before")).accepted(t)
	if resp := a.get(t, "/readyz"); resp.status != http.StatusOK {
		t.Fatalf("readyz before outage = %d, want 200", resp.status)
	}

	a.nats.Shutdown()

	resp := a.post(t, leonardotest.WithObjectID(leonardotest.ImageSD15, "during"))
	if resp.status != http.StatusServiceUnavailable {
		t.Fatalf("status during outage = %d, want 503; body %s", resp.status, resp.body)
	}
	if got := resp.header.Get("Retry-After"); got != "5" {
		t.Errorf("Retry-After = %q, want 5", got)
	}
	if message, id := resp.errorJSON(t); message == "" || id == "" {
		t.Errorf("error body = %s, want error and request_id", resp.body)
	}

	waitFor(t, 5*time.Second, "readyz 503", func() bool {
		return a.get(t, "/readyz").status == http.StatusServiceUnavailable
	})
	if resp := a.get(t, "/healthz"); resp.status != http.StatusOK {
		t.Errorf("healthz during outage = %d, want 200", resp.status)
	}

	a.nats.Restart()

	waitFor(t, 15*time.Second, "readyz 200", func() bool {
		return a.get(t, "/readyz").status == http.StatusOK
	})
	a.post(t, leonardotest.WithObjectID(leonardotest.ImageSD15, "during")).accepted(t)
	if n := a.inboundCount(t); n != 2 {
		t.Errorf("stream holds %d messages, want 2", n)
	}
}

func TestReadyzReason(t *testing.T) {
	a := startApp(t)
	a.nats.Shutdown()

	var resp response
	waitFor(t, 5*time.Second, "readyz 503", func() bool {
		resp = a.get(t, "/readyz")
		return resp.status == http.StatusServiceUnavailable
	})

	message, requestID := resp.errorJSON(t)
	if !strings.HasPrefix(message, "not ready: ") {
		t.Errorf("error = %q, want a not ready reason", message)
	}
	if requestID == "" {
		t.Error("request_id is empty")
	}
	if resp.header.Get("Retry-After") != "" {
		t.Errorf("readyz sets Retry-After %q", resp.header.Get("Retry-After"))
	}
}

func TestFullStream(t *testing.T) {
	a := startApp(t, func(o *options) { o.broker.InboundMaxMsgs = 2 })

	a.post(t, leonardotest.WithObjectID(leonardotest.ImageSD15, "one")).accepted(t)
	a.post(t, leonardotest.WithObjectID(leonardotest.ImageSD15, "two")).accepted(t)

	resp := a.post(t, leonardotest.WithObjectID(leonardotest.ImageSD15, "three"))
	if resp.status != http.StatusServiceUnavailable {
		t.Fatalf("status = %d, want 503; body %s", resp.status, resp.body)
	}
	if resp.header.Get("Retry-After") == "" {
		t.Error("Retry-After is missing")
	}
	if message, _ := resp.errorJSON(t); message != "event store unavailable, retry later" {
		t.Errorf("error = %q", message)
	}

	// A callback already stored is still acknowledged as a duplicate.
	dup := a.post(t, leonardotest.WithObjectID(leonardotest.ImageSD15, "one"))
	if dup.status != http.StatusAccepted {
		t.Errorf("repeat of a stored callback: status = %d, want 202; body %s", dup.status, dup.body)
	}
	if n := a.inboundCount(t); n != 2 {
		t.Errorf("stream holds %d messages, want 2", n)
	}
}
