package pipeline

import (
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/genrelay/genrelay/pkg/broker"
	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/pkg/leonardo"
	"github.com/genrelay/genrelay/services/moderation/internal/policy"
)

// build returns one output per group.
func (p *Processor) build(cb callback, result policy.Result,
	groups []policy.Group, decidedAt time.Time,
) []Output {
	outputs := make([]Output, 0, len(groups))
	for _, g := range groups {
		ev := newEvent(cb.msg, cb.envelope.Type, g.Outcome, decidedAt)
		ev.Id = eventID(cb, g.Outcome)
		ev.Source = cb.source
		ev.ObjectId = cb.envelope.ObjectID
		ev.Reason = g.Reason
		ev.Status = result.Status
		ev.SourceImageId = result.SourceImageID
		ev.Payload = cb.payload
		ev.Decisions = g.Decisions
		setImages(ev, g)

		outputs = append(outputs, output(ev))
	}
	return outputs
}

func setImages(ev *genrelayv1.Event, g policy.Group) {
	for _, iv := range g.Images {
		ev.Images = append(ev.Images, iv.Image)
	}
	for _, iv := range g.Removed {
		ev.RemovedImages = append(ev.RemovedImages, &genrelayv1.RemovedImage{
			Id: iv.Image.GetId(), Outcome: iv.Outcome, Reason: iv.Reason,
		})
	}
	ev.RemovedCount = int32(len(ev.RemovedImages))
}

// newEvent returns an event with the fields that every output shares.
func newEvent(m Message, eventType string, outcome genrelayv1.Outcome,
	decidedAt time.Time,
) *genrelayv1.Event {
	ev := &genrelayv1.Event{
		Type:            eventType,
		Outcome:         outcome,
		DecidedAt:       timestamppb.New(decidedAt),
		InboundSequence: m.Sequence,
	}
	if !m.ReceivedAt.IsZero() {
		ev.ReceivedAt = timestamppb.New(m.ReceivedAt)
	}
	return ev
}

func output(ev *genrelayv1.Event) Output {
	return Output{
		Subject: broker.ResultSubject(ev.GetOutcome(), ev.GetType()),
		MsgID:   ev.GetId(),
		Event:   ev,
	}
}

// eventID returns the id of the callback's event with the given outcome:
// the same for every delivery of the same inbound message, so that the
// results stream stores it once within its duplicate window.
//
// NOTE: an input repeated after that window (2h by default) yields its
// events again, and so does a post-processing result whose source verdict
// arrived between two deliveries, under the other outcome's id.
func eventID(cb callback, outcome genrelayv1.Outcome) string {
	return baseID(cb.msg, cb.envelope) + ":" + OutcomeName(outcome)
}

// OutcomeName returns the short name of an outcome, matching its subject
// prefix: clean, rejected, review, failed, unhandled or dlq.
func OutcomeName(o genrelayv1.Outcome) string {
	subject := broker.ResultSubject(o, "")
	return strings.TrimSuffix(strings.TrimPrefix(subject, "genrelay."), ".")
}

// DeadLetter returns the event for a message that could not be processed
// within the redelivery limit, with cause as its reason. It carries as
// much of the callback as could be decoded.
func (p *Processor) DeadLetter(m Message, cause error) Output {
	source, eventType := subjectParts(m.Subject)
	var env leonardo.Envelope
	var payload *structpb.Struct

	if body, err := leonardo.Redact(m.Data); err == nil {
		env, _ = leonardo.Validate(body)
		payload = &structpb.Struct{}
		if protojson.Unmarshal(body, payload) != nil {
			payload = nil
		}
	}
	if env.Type != "" {
		eventType = env.Type
	}

	outcome := genrelayv1.Outcome_OUTCOME_DEAD_LETTER
	ev := newEvent(m, eventType, outcome, p.cfg.Now())
	ev.Id = baseID(m, env) + ":" + OutcomeName(outcome)
	ev.Source = source
	ev.ObjectId = env.ObjectID
	ev.Reason = cause.Error()
	ev.Payload = payload
	return output(ev)
}
