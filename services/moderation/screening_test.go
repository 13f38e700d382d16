package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/genrelay/genrelay/pkg/broker"
	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/pkg/leonardo/leonardotest"
	"github.com/genrelay/genrelay/pkg/natstest"
	"github.com/genrelay/genrelay/services/moderation/internal/health"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/httpclassifier/httpclassifiertest"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/providertest"
)

// flaggedImage is the image of the SD 1.5 sample that the mock classifier
// scores high.
const flaggedImage = "8e81973e-0bec-47b0-b898-d190f9ebdacc"

func TestRunScreensWithProvider(t *testing.T) {
	classifier := httpclassifiertest.Start(t, "classifier-token-1")
	classifier.SetHandler(func(r providertest.Request) providertest.Response {
		if strings.HasSuffix(httpclassifiertest.ImageURL(r), "_0.jpg") {
			return httpclassifiertest.Score(0.95)
		}
		return httpclassifiertest.Score(0.02)
	})
	srv := natstest.Start(t)
	svc := startService(t, srv.URL(),
		"-moderation-providers", "http",
		"-http-classifier-url", classifier.Endpoint(),
		"-http-classifier-score-field", httpclassifiertest.ScoreField,
		"-http-classifier-token", "classifier-token-1")
	waitStatus(t, "http://"+svc.addr+health.ReadinessPath, http.StatusOK)
	_, js := srv.Connect(t)

	publishSample(t, js, leonardotest.Body(leonardotest.ImageSD15))
	events := waitEvents(t, js, 2)

	clean, rejected := events[0], events[1]
	if clean.GetOutcome() != genrelayv1.Outcome_OUTCOME_CLEAN || len(clean.GetImages()) != 3 {
		t.Errorf("first event: %v with %d images, expected clean with 3",
			clean.GetOutcome(), len(clean.GetImages()))
	}
	if clean.GetRemovedCount() != 1 || clean.GetRemovedImages()[0].GetId() != flaggedImage {
		t.Errorf("clean event removed %v, expected %s", clean.GetRemovedImages(), flaggedImage)
	}
	if rejected.GetOutcome() != genrelayv1.Outcome_OUTCOME_REJECTED ||
		len(rejected.GetImages()) != 1 || rejected.GetImages()[0].GetId() != flaggedImage {
		t.Errorf("second event: %v with %v, expected rejected with %s",
			rejected.GetOutcome(), rejected.GetImages(), flaggedImage)
	}
	if !hasDecisionBy(rejected, "http") {
		t.Errorf("rejected event lacks the provider's decision: %v", rejected.GetDecisions())
	}
	if got := classifier.Count(); got != 4 {
		t.Errorf("classifier requests = %d, expected one per image", got)
	}

	if err := svc.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if strings.Contains(svc.logs.String(), "classifier-token-1") {
		t.Error("logs contain the classifier token")
	}
}

func hasDecisionBy(ev *genrelayv1.Event, provider string) bool {
	for _, d := range ev.GetDecisions() {
		if d.GetProvider() == provider && d.GetOutcome() == ev.GetOutcome() {
			return true
		}
	}
	return false
}

// waitEvents reads the first n events of the results stream.
func waitEvents(t *testing.T, js jetstream.JetStream, n int) []*genrelayv1.Event {
	t.Helper()

	ctx := t.Context()
	cons, err := js.OrderedConsumer(ctx, broker.ResultsStream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("ordered consumer: %v", err)
	}

	var events []*genrelayv1.Event
	for len(events) < n {
		msg, err := cons.Next(jetstream.FetchMaxWait(30 * time.Second))
		if err != nil {
			t.Fatalf("event %d of %d: %v", len(events)+1, n, err)
		}
		ev := &genrelayv1.Event{}
		if err := protojson.Unmarshal(msg.Data(), ev); err != nil {
			t.Fatalf("decode event: %v", err)
		}
		events = append(events, ev)
	}
	return events
}
