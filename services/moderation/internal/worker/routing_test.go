package worker

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/genrelay/genrelay/pkg/broker"
	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/pkg/leonardo"
	"github.com/genrelay/genrelay/pkg/leonardo/leonardotest"
	"github.com/genrelay/genrelay/services/moderation/internal/policy"
)

// Image ids of the samples.
const (
	nsfwSampleClean   = "36f675cc-81e7-4ef5-a8e2-5d940ed90475"
	nsfwSampleFlagged = "6b0d549b-6f03-475a-9600-a35a099950d8"
	upscaleSourceID   = "57124242-5051-41cc-917f-9acae01f5057"
)

// modified returns the named sample with change applied to data.object.
func modified(t *testing.T, name string, change func(object map[string]any)) []byte {
	t.Helper()

	var doc map[string]any
	if err := json.Unmarshal(leonardotest.Body(name), &doc); err != nil {
		t.Fatalf("decode sample %s: %v", name, err)
	}
	change(doc["data"].(map[string]any)["object"].(map[string]any))

	body, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("encode sample %s: %v", name, err)
	}
	return body
}

func images(object map[string]any) []any {
	return object["images"].([]any)
}

// expectedEvent is what one output of a routing case must hold.
type expectedEvent struct {
	outcome  genrelayv1.Outcome
	imageIDs []string
	removed  int32
}

func TestSamplesRouted(t *testing.T) {
	reviewFlagged := policy.DefaultConfig()
	reviewFlagged.FlaggedGeneration = policy.Review

	tests := []struct {
		name     string
		body     func(t *testing.T) []byte
		policy   policy.Config
		expected []expectedEvent
	}{
		{
			name: "guide sample clean",
			body: sample(leonardotest.ImageComplete),
			expected: []expectedEvent{{genrelayv1.Outcome_OUTCOME_CLEAN,
				[]string{"XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX"}, 0}},
		},
		{
			name: "generation nsfw rejects all",
			body: sample(leonardotest.ImageNSFW),
			expected: []expectedEvent{{genrelayv1.Outcome_OUTCOME_REJECTED,
				[]string{nsfwSampleClean, nsfwSampleFlagged}, 0}},
		},
		{
			name:   "generation nsfw with review action",
			body:   sample(leonardotest.ImageNSFW),
			policy: reviewFlagged,
			expected: []expectedEvent{
				{genrelayv1.Outcome_OUTCOME_REJECTED, []string{nsfwSampleFlagged}, 0},
				{genrelayv1.Outcome_OUTCOME_REVIEW, []string{nsfwSampleClean}, 0},
			},
		},
		{
			name: "one nsfw image removed from clean",
			body: func(t *testing.T) []byte {
				return modified(t, leonardotest.ImageNSFW, func(o map[string]any) {
					o["nsfw"] = false
				})
			},
			expected: []expectedEvent{
				{genrelayv1.Outcome_OUTCOME_CLEAN, []string{nsfwSampleClean}, 1},
				{genrelayv1.Outcome_OUTCOME_REJECTED, []string{nsfwSampleFlagged}, 0},
			},
		},
		{
			name: "image flag not boolean goes to review",
			body: func(t *testing.T) []byte {
				return modified(t, leonardotest.ImageNSFW, func(o map[string]any) {
					o["nsfw"] = false
					images(o)[0].(map[string]any)["nsfw"] = "false"
					images(o)[1].(map[string]any)["nsfw"] = false
				})
			},
			expected: []expectedEvent{
				{genrelayv1.Outcome_OUTCOME_CLEAN, []string{nsfwSampleFlagged}, 1},
				{genrelayv1.Outcome_OUTCOME_REVIEW, []string{nsfwSampleClean}, 0},
			},
		},
		{
			name: "four clean images",
			body: sample(leonardotest.ImageSD15),
			expected: []expectedEvent{{genrelayv1.Outcome_OUTCOME_CLEAN, []string{
				"8e81973e-0bec-47b0-b898-d190f9ebdacc", "6b4cb242-4a23-4596-a217-beaddbc496cb",
				"92276658-1e27-41c0-8a6a-63ec24ede6a4", "ae97ba94-d0ed-482f-8f6d-05584ef8aa38",
			}, 0}},
		},
		{
			name:     "failed generation",
			body:     sample(leonardotest.ImageFailed),
			expected: []expectedEvent{{genrelayv1.Outcome_OUTCOME_FAILED, nil, 0}},
		},
		{
			name: "video clean",
			body: sample(leonardotest.VideoComplete),
			expected: []expectedEvent{{genrelayv1.Outcome_OUTCOME_CLEAN,
				[]string{"9be4bcfc-49b6-4a08-b2e6-cc3ababced20"}, 0}},
		},
		{
			name: "upscale of unseen source goes to review",
			body: sample(leonardotest.PostProcessingComplete),
			expected: []expectedEvent{{genrelayv1.Outcome_OUTCOME_REVIEW,
				[]string{"ca02135e-92b1-43f2-8ede-0d7ac3baea9e"}, 0}},
		},
		{
			name: "unknown type unhandled",
			body: func(t *testing.T) []byte {
				body := leonardotest.Body(leonardotest.ImageComplete)
				return []byte(strings.Replace(string(body),
					`"image_generation.complete"`, `"image_generation.started"`, 1))
			},
			expected: []expectedEvent{{genrelayv1.Outcome_OUTCOME_UNHANDLED, nil, 0}},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t)
			startWorker(t, env, testConfig(), workerOptions{policy: tt.policy})
			body := tt.body(t)
			msgID := messageID(t, body)

			seq := publishCallback(t, env.js, body, msgID)
			results := waitResults(t, env.js, len(tt.expected), 300*time.Millisecond)

			if len(results) != len(tt.expected) {
				t.Fatalf("got %d events, expected %d", len(results), len(tt.expected))
			}
			for i, want := range tt.expected {
				checkEvent(t, results[i], body, msgID, seq, want)
			}
		})
	}
}

func sample(name string) func(*testing.T) []byte {
	return func(*testing.T) []byte { return leonardotest.Body(name) }
}

// checkEvent compares one stored event with the expectation and the
// fields that every event must carry.
func checkEvent(t *testing.T, r result, body []byte, msgID string, seq uint64, want expectedEvent) {
	t.Helper()

	envelope, _ := leonardo.Validate(body)
	ev := r.event
	name := strings.TrimPrefix(strings.ToLower(want.outcome.String()), "outcome_")

	if expected := broker.ResultSubject(want.outcome, envelope.Type); r.subject != expected {
		t.Errorf("subject = %q, expected %q", r.subject, expected)
	}
	if ev.GetOutcome() != want.outcome {
		t.Errorf("outcome = %v, expected %v", ev.GetOutcome(), want.outcome)
	}
	if got := imageIDs(ev); !reflect.DeepEqual(got, want.imageIDs) {
		t.Errorf("%s images = %v, expected %v", name, got, want.imageIDs)
	}
	if ev.GetRemovedCount() != want.removed || int32(len(ev.GetRemovedImages())) != want.removed {
		t.Errorf("removed = %d (%d listed), expected %d",
			ev.GetRemovedCount(), len(ev.GetRemovedImages()), want.removed)
	}
	if expected := msgID + ":" + name; ev.GetId() != expected {
		t.Errorf("id = %q, expected %q", ev.GetId(), expected)
	}
	if got := r.header.Get(broker.HeaderMsgID); got != ev.GetId() {
		t.Errorf("Nats-Msg-Id = %q, expected the event id %q", got, ev.GetId())
	}
	checkCommonFields(t, r, envelope, seq)
}

func checkCommonFields(t *testing.T, r result, envelope leonardo.Envelope, seq uint64) {
	t.Helper()

	ev := r.event
	if ev.GetSource() != leonardo.Source || ev.GetType() != envelope.Type ||
		ev.GetObjectId() != envelope.ObjectID {
		t.Errorf("source, type, object id = %q, %q, %q; expected %q, %q, %q",
			ev.GetSource(), ev.GetType(), ev.GetObjectId(),
			leonardo.Source, envelope.Type, envelope.ObjectID)
	}
	if ev.GetInboundSequence() != seq {
		t.Errorf("inbound sequence = %d, expected %d", ev.GetInboundSequence(), seq)
	}
	if !ev.GetReceivedAt().AsTime().Equal(receivedAt) {
		t.Errorf("received at = %v, expected %v", ev.GetReceivedAt().AsTime(), receivedAt)
	}
	if ev.GetDecidedAt() == nil || ev.GetReason() == "" {
		t.Errorf("decided at %v, reason %q: both must be set", ev.GetDecidedAt(), ev.GetReason())
	}
	if got := ev.GetPayload().GetFields()["type"].GetStringValue(); got != envelope.Type {
		t.Errorf("payload type = %q, expected the whole callback", got)
	}
	if len(ev.GetDecisions()) == 0 {
		t.Error("event has no decisions")
	}
	for _, d := range ev.GetDecisions() {
		if d.GetRule() == "" || d.GetProvider() == "" || d.GetLatency() == nil {
			t.Errorf("decision lacks rule, provider or latency: %v", d)
		}
	}
	if got := r.header.Get(broker.HeaderContentType); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if got := r.header.Get(broker.HeaderSchema); got != "genrelay.v1.Event" {
		t.Errorf("Genrelay-Schema = %q", got)
	}
}

func TestUpscaleInheritsSourceVerdict(t *testing.T) {
	tests := []struct {
		name     string
		source   func(o map[string]any)
		expected genrelayv1.Outcome
	}{
		{"clean source", func(map[string]any) {}, genrelayv1.Outcome_OUTCOME_CLEAN},
		{"nsfw source", func(o map[string]any) {
			images(o)[0].(map[string]any)["nsfw"] = true
		}, genrelayv1.Outcome_OUTCOME_REJECTED},
		{"source in review", func(o map[string]any) {
			images(o)[0].(map[string]any)["nsfw"] = nil
		}, genrelayv1.Outcome_OUTCOME_REVIEW},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newEnv(t)
			startWorker(t, env, testConfig(), workerOptions{})

			// An upscale that arrives before its source goes to review.
			early := leonardotest.WithObjectID(leonardotest.PostProcessingComplete, "upscale-early")
			publishCallback(t, env.js, early, messageID(t, early))
			waitResults(t, env.js, 1, 0)

			generation := modified(t, leonardotest.ImageSD15, func(o map[string]any) {
				images(o)[0].(map[string]any)["id"] = upscaleSourceID
				tt.source(o)
			})
			publishCallback(t, env.js, generation, messageID(t, generation))
			sourceEvents := 2
			if tt.expected == genrelayv1.Outcome_OUTCOME_CLEAN {
				sourceEvents = 1
			}
			waitResults(t, env.js, 1+sourceEvents, 0)

			late := leonardotest.WithObjectID(leonardotest.PostProcessingComplete, "upscale-late")
			publishCallback(t, env.js, late, messageID(t, late))
			results := waitResults(t, env.js, 2+sourceEvents, 200*time.Millisecond)

			byObject := map[string]*genrelayv1.Event{}
			for _, r := range results {
				byObject[r.event.GetObjectId()] = r.event
			}
			if got := byObject["upscale-early"].GetOutcome(); got != genrelayv1.Outcome_OUTCOME_REVIEW {
				t.Errorf("upscale before its source: %v, expected review", got)
			}
			lateEvent := byObject["upscale-late"]
			if got := lateEvent.GetOutcome(); got != tt.expected {
				t.Errorf("upscale after its source: %v, expected %v", got, tt.expected)
			}
			if got := lateEvent.GetSourceImageId(); got != upscaleSourceID {
				t.Errorf("source image id = %q, expected %q", got, upscaleSourceID)
			}
		})
	}
}
