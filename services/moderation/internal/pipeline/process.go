package pipeline

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/genrelay/genrelay/pkg/broker"
	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/pkg/leonardo"
	"github.com/genrelay/genrelay/services/moderation/internal/policy"
	"github.com/genrelay/genrelay/services/moderation/internal/verdicts"
)

const inboundPrefix = broker.InboundPrefix + "."

// callback is an inbound message decoded as far as the policy needs.
type callback struct {
	msg      Message
	source   string
	envelope leonardo.Envelope
	payload  *structpb.Struct
	input    policy.Input
}

// Process decides the outcome of one callback, stores the verdict of each
// image it carries, and returns the events to publish: one per outcome
// that has images. progress is passed to the screening step. Errors wrap
// ErrUndecodable, ErrScreening or verdicts.ErrStore.
func (p *Processor) Process(ctx context.Context, m Message, progress func()) ([]Output, error) {
	cb, err := decode(m)
	if err != nil {
		return nil, err
	}

	if err := p.lookUpSource(ctx, &cb.input); err != nil {
		return nil, err
	}

	start := time.Now()
	result := policy.Decide(p.cfg.Policy, cb.input)
	setLatency(result.Decisions, time.Since(start))

	if err := p.screen(ctx, cb, &result, progress); err != nil {
		return nil, err
	}

	groups := result.Groups()
	decidedAt := p.cfg.Now()
	if err := p.storeVerdicts(ctx, cb, groups, decidedAt); err != nil {
		return nil, err
	}
	return p.build(cb, result, groups, decidedAt), nil
}

// decode parses the body. It redacts the body again so that a message
// published by anything other than ingress cannot carry a secret out.
func decode(m Message) (callback, error) {
	cb := callback{msg: m}
	cb.source, _ = subjectParts(m.Subject)

	body, err := leonardo.Redact(m.Data)
	if err != nil {
		return cb, fmt.Errorf("%w: %w", ErrUndecodable, err)
	}
	if cb.envelope, err = leonardo.Validate(body); err != nil {
		return cb, fmt.Errorf("%w: %w", ErrUndecodable, err)
	}

	// NOTE: Struct holds numbers as float64, so an integer above 2^53 in
	// the payload loses precision. The inbound stream keeps the exact body.
	cb.payload = &structpb.Struct{}
	if err := protojson.Unmarshal(body, cb.payload); err != nil {
		return cb, fmt.Errorf("%w: payload: %w", ErrUndecodable, err)
	}

	cb.input = policy.Input{Source: cb.source, Type: cb.envelope.Type}
	if cb.source != leonardo.Source {
		return cb, nil
	}
	if err := decodeObject(body, &cb.input); err != nil {
		return cb, fmt.Errorf("%w: %w", ErrUndecodable, err)
	}
	return cb, nil
}

// decodeObject decodes data.object by event type. Unknown types are left
// undecoded: they are published as unhandled with their payload.
func decodeObject(body []byte, in *policy.Input) error {
	switch in.Type {
	case leonardo.TypeImageGenerationComplete, leonardo.TypeVideoGenerationComplete,
		leonardo.TypePostProcessingComplete:
	default:
		return nil
	}

	cb, err := leonardo.Decode(body)
	if err != nil {
		return err
	}
	if in.Type == leonardo.TypePostProcessingComplete {
		in.Variation, err = cb.Variation()
		return err
	}
	in.Generation, err = cb.Generation()
	return err
}

// lookUpSource reads the stored verdict of a variation's source image.
func (p *Processor) lookUpSource(ctx context.Context, in *policy.Input) error {
	if in.Variation == nil || in.Variation.GeneratedImageID == "" {
		return nil
	}

	v, ok, err := p.cfg.Verdicts.Get(ctx, string(in.Variation.GeneratedImageID))
	if err != nil {
		return err
	}
	in.SourceImage = policy.SourceVerdict{Known: ok, Outcome: v.Outcome}
	return nil
}

func setLatency(decisions []*genrelayv1.Decision, d time.Duration) {
	for _, decision := range decisions {
		if decision.Latency == nil {
			decision.Latency = durationpb.New(d)
		}
	}
}

// storeVerdicts writes the verdict of every image that has an image
// outcome before any event is published, so that a post-processing result
// processed after the events finds its source.
func (p *Processor) storeVerdicts(ctx context.Context, cb callback,
	groups []policy.Group, decidedAt time.Time,
) error {
	for _, g := range groups {
		if !isImageOutcome(g.Outcome) {
			continue
		}

		for _, iv := range g.Images {
			if iv.Image.GetId() == "" {
				continue
			}
			v := verdicts.Verdict{
				Outcome: g.Outcome, Reason: iv.Reason,
				EventID: eventID(cb, g.Outcome), DecidedAt: decidedAt,
			}
			if err := p.cfg.Verdicts.Put(ctx, iv.Image.GetId(), v); err != nil {
				return err
			}
		}
	}
	return nil
}

func isImageOutcome(o genrelayv1.Outcome) bool {
	switch o {
	case genrelayv1.Outcome_OUTCOME_CLEAN, genrelayv1.Outcome_OUTCOME_REVIEW,
		genrelayv1.Outcome_OUTCOME_REJECTED:
		return true
	default:
		return false
	}
}

// baseID returns the id that output ids extend: the inbound message id,
// else the callback's own message id, else the inbound sequence.
func baseID(m Message, env leonardo.Envelope) string {
	switch {
	case m.MsgID != "":
		return m.MsgID
	case env.Type != "":
		return env.MessageID()
	default:
		return "inbound:" + strconv.FormatUint(m.Sequence, 10)
	}
}
