package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/genrelay/genrelay/pkg/broker"
	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/pkg/leonardo"
	"github.com/genrelay/genrelay/pkg/leonardo/leonardotest"
	"github.com/genrelay/genrelay/pkg/natstest"
	"github.com/genrelay/genrelay/services/moderation/internal/policy"
	"github.com/genrelay/genrelay/services/moderation/internal/verdicts"
)

var decidedAt = time.Date(2025, 3, 19, 11, 0, 0, 0, time.UTC)

func newProcessor(t *testing.T, screener Screener) (*Processor, *verdicts.Store) {
	t.Helper()

	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	kv, err := broker.EnsureVerdictBucket(context.Background(), js, broker.DefaultConfig())
	if err != nil {
		t.Fatalf("ensure bucket: %v", err)
	}
	store := verdicts.New(kv)

	p, err := New(Config{
		Policy: policy.DefaultConfig(), Verdicts: store, Screener: screener,
		Now: func() time.Time { return decidedAt },
	})
	if err != nil {
		t.Fatalf("new processor: %v", err)
	}
	return p, store
}

func sampleMessage(name string) Message {
	body, _ := leonardo.Redact(leonardotest.Body(name))
	env, _ := leonardo.Validate(body)
	return Message{
		Subject:  broker.InboundSubject(leonardo.Source, env.Type),
		Data:     body,
		MsgID:    env.MessageID(),
		Sequence: 42,
	}
}

// withObject returns body with change applied to data.object.
func withObject(t *testing.T, body []byte, change func(object map[string]any)) []byte {
	t.Helper()

	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("decode body: %v", err)
	}
	change(doc["data"].(map[string]any)["object"].(map[string]any))
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("encode body: %v", err)
	}
	return out
}

func TestSubjectParts(t *testing.T) {
	tests := []struct {
		subject, source, eventType string
	}{
		{"genrelay.inbound.leonardo.image_generation.complete", "leonardo", "image_generation.complete"},
		{"genrelay.inbound.other.x", "other", "x"},
		{"genrelay.inbound.leonardo", "leonardo", "unknown"},
		{"elsewhere.leonardo.x", "unknown", "unknown"},
	}
	for _, tt := range tests {
		source, eventType := subjectParts(tt.subject)
		if source != tt.source || eventType != tt.eventType {
			t.Errorf("subjectParts(%q) = %q, %q; expected %q, %q",
				tt.subject, source, eventType, tt.source, tt.eventType)
		}
	}
}

func TestBaseID(t *testing.T) {
	env := leonardo.Envelope{Type: "image_generation.complete", ObjectID: "g"}
	tests := []struct {
		name     string
		msg      Message
		env      leonardo.Envelope
		expected string
	}{
		{"message id header", Message{MsgID: "leonardo:x:y", Sequence: 3}, env, "leonardo:x:y"},
		{"callback id", Message{Sequence: 3}, env, "leonardo:image_generation.complete:g"},
		{"stream sequence", Message{Sequence: 3}, leonardo.Envelope{}, "inbound:3"},
	}
	for _, tt := range tests {
		if got := baseID(tt.msg, tt.env); got != tt.expected {
			t.Errorf("%s: baseID = %q, expected %q", tt.name, got, tt.expected)
		}
	}
}

func TestProcessStoresVerdictsBeforeReturning(t *testing.T) {
	p, store := newProcessor(t, nil)
	msg := sampleMessage(leonardotest.ImageNSFW)
	msg.Data = withObject(t, msg.Data, func(o map[string]any) { o["nsfw"] = false })

	outputs, err := p.Process(context.Background(), msg, func() {})
	if err != nil {
		t.Fatalf("Process: %v", err)
	}

	expected := map[string]genrelayv1.Outcome{
		"36f675cc-81e7-4ef5-a8e2-5d940ed90475": genrelayv1.Outcome_OUTCOME_CLEAN,
		"6b0d549b-6f03-475a-9600-a35a099950d8": genrelayv1.Outcome_OUTCOME_REJECTED,
	}
	for id, outcome := range expected {
		v, ok, err := store.Get(context.Background(), id)
		if err != nil || !ok {
			t.Fatalf("verdict of %s: %v, %v", id, ok, err)
		}
		if v.Outcome != outcome || !v.DecidedAt.Equal(decidedAt) || v.Reason == "" {
			t.Errorf("verdict of %s = %+v, expected %v at %v with a reason", id, v, outcome, decidedAt)
		}
		if !strings.HasPrefix(v.EventID, msg.MsgID+":") {
			t.Errorf("verdict event id = %q, expected one of this message's events", v.EventID)
		}
	}
	if len(outputs) != 2 {
		t.Errorf("outputs = %d, expected clean and rejected", len(outputs))
	}
}

func TestProcessFailedStoresNoVerdict(t *testing.T) {
	p, store := newProcessor(t, nil)
	msg := sampleMessage(leonardotest.ImageFailed)
	msg.Data = withObject(t, msg.Data, func(o map[string]any) {
		o["images"] = []any{map[string]any{"id": "failed-image", "nsfw": false}}
	})

	outputs, err := p.Process(context.Background(), msg, func() {})
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	if len(outputs) != 1 || outputs[0].Event.GetOutcome() != genrelayv1.Outcome_OUTCOME_FAILED {
		t.Fatalf("outputs = %v, expected one failed event", outputs)
	}
	if _, ok, _ := store.Get(context.Background(), "failed-image"); ok {
		t.Error("a failed generation's image got a verdict")
	}
}

// recordingScreener returns decide's decision and records the images.
type recordingScreener struct {
	decide func(img ScreenImage) (*genrelayv1.Decision, error)

	mu   sync.Mutex
	seen []ScreenImage
}

func (s *recordingScreener) Applies(ScreenImage) bool { return true }

// Screen returns screenOne's decision as the only one.
func (s *recordingScreener) Screen(ctx context.Context, img ScreenImage, progress func()) ([]*genrelayv1.Decision, error) {
	d, err := s.screenOne(ctx, img, progress)
	if err != nil || d == nil {
		return nil, err
	}
	return []*genrelayv1.Decision{d}, nil
}

func (s *recordingScreener) screenOne(_ context.Context, img ScreenImage, progress func()) (*genrelayv1.Decision, error) {
	s.mu.Lock()
	s.seen = append(s.seen, img)
	s.mu.Unlock()
	progress()
	return s.decide(img)
}

func TestProcessScreening(t *testing.T) {
	tests := []struct {
		name        string
		sample      string
		decide      func(img ScreenImage) (*genrelayv1.Decision, error)
		expectedErr error
		screened    int
	}{
		{
			name:   "clean images of a clean generation",
			sample: leonardotest.ImageSD15,
			decide: func(img ScreenImage) (*genrelayv1.Decision, error) {
				return &genrelayv1.Decision{ImageId: img.ID, Outcome: genrelayv1.Outcome_OUTCOME_CLEAN}, nil
			},
			screened: 4,
		},
		{
			name:     "flagged generation not screened",
			sample:   leonardotest.ImageNSFW,
			screened: 0,
		},
		{
			name:     "failed generation not screened",
			sample:   leonardotest.ImageFailed,
			screened: 0,
		},
		{
			name:     "upscale not screened",
			sample:   leonardotest.PostProcessingComplete,
			screened: 0,
		},
		{
			name:   "screener error",
			sample: leonardotest.ImageComplete,
			decide: func(ScreenImage) (*genrelayv1.Decision, error) {
				return nil, context.DeadlineExceeded
			},
			expectedErr: ErrScreening,
			screened:    1,
		},
		{
			name:   "no decision",
			sample: leonardotest.ImageComplete,
			decide: func(ScreenImage) (*genrelayv1.Decision, error) {
				return nil, nil
			},
			expectedErr: ErrScreening,
			screened:    1,
		},
		{
			name:   "decision about another image",
			sample: leonardotest.ImageComplete,
			decide: func(ScreenImage) (*genrelayv1.Decision, error) {
				return &genrelayv1.Decision{ImageId: "other", Outcome: genrelayv1.Outcome_OUTCOME_CLEAN}, nil
			},
			expectedErr: ErrScreening,
			screened:    1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			screener := &recordingScreener{decide: tt.decide}
			p, _ := newProcessor(t, screener)

			_, err := p.Process(context.Background(), sampleMessage(tt.sample), func() {})

			if !errors.Is(err, tt.expectedErr) {
				t.Errorf("Process error = %v, expected %v", err, tt.expectedErr)
			}
			if len(screener.seen) != tt.screened {
				t.Errorf("screened %d images, expected %d", len(screener.seen), tt.screened)
			}
		})
	}
}

func TestScreenImageFields(t *testing.T) {
	screener := &recordingScreener{decide: func(img ScreenImage) (*genrelayv1.Decision, error) {
		return &genrelayv1.Decision{ImageId: img.ID, Outcome: genrelayv1.Outcome_OUTCOME_CLEAN}, nil
	}}
	p, _ := newProcessor(t, screener)

	if _, err := p.Process(context.Background(), sampleMessage(leonardotest.ImageSD15), func() {}); err != nil {
		t.Fatalf("Process: %v", err)
	}

	img := screener.seen[0]
	if img.SDVersion != "v1_5" || img.GenerationID != "a170b338-3926-4059-b28c-105d1fb17c23" ||
		img.ModelID != "6bef9f1b-29cb-40c7-b9df-32b51c1f67d3" || !strings.HasPrefix(img.URL, "https://cdn.leonardo.ai/") {
		t.Errorf("screen image = %+v", img)
	}
}

func TestDeadLetter(t *testing.T) {
	p, _ := newProcessor(t, nil)
	msg := Message{
		Subject:    "genrelay.inbound.leonardo.image_generation.complete",
		Data:       []byte(`{"type":"image_generation.complete","data":{"object":{"id":"g","images":"x","apiKey":{"key":"k-1"}}}}`),
		Sequence:   7,
		ReceivedAt: decidedAt.Add(-time.Minute),
	}

	_, err := p.Process(context.Background(), msg, func() {})
	if !errors.Is(err, ErrUndecodable) {
		t.Fatalf("Process error = %v, expected ErrUndecodable", err)
	}
	out := p.DeadLetter(msg, err)

	ev := out.Event
	if out.Subject != "genrelay.dlq.image_generation.complete" {
		t.Errorf("subject = %q", out.Subject)
	}
	if ev.GetId() != "leonardo:image_generation.complete:g:dlq" || out.MsgID != ev.GetId() {
		t.Errorf("id = %q, message id = %q", ev.GetId(), out.MsgID)
	}
	if ev.GetObjectId() != "g" || ev.GetInboundSequence() != 7 || ev.GetSource() != "leonardo" {
		t.Errorf("object id, sequence, source = %q, %d, %q", ev.GetObjectId(), ev.GetInboundSequence(), ev.GetSource())
	}
	if !strings.Contains(ev.GetReason(), "images") {
		t.Errorf("reason %q does not name the field", ev.GetReason())
	}
	key := ev.GetPayload().GetFields()["data"].GetStructValue().GetFields()["object"].
		GetStructValue().GetFields()["apiKey"].GetStructValue().GetFields()["key"].GetStringValue()
	if key != leonardo.Redacted {
		t.Errorf("payload apiKey.key = %q, expected %q", key, leonardo.Redacted)
	}
}
