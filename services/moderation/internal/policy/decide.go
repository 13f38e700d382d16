package policy

import (
	"fmt"

	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/pkg/leonardo"
)

// Rule names, as they appear in genrelayv1.Decision.Rule.
const (
	RuleEventSource      = "event_source"
	RuleEventType        = "event_type"
	RuleGenerationStatus = "generation_status"
	RuleGenerationFlags  = "generation_flags"
	RuleModelFlags       = "model_flags"
	RuleImageNSFW        = "image_nsfw_flag"
	RuleGenerationImages = "generation_images"
	RuleSourceVerdict    = "source_image_verdict"
)

// Input is a decoded callback. Decide reads Generation for image and video
// generations, and Variation with SourceImage for post-processing results.
// A nil Generation or Variation counts as one with every field missing.
type Input struct {
	// Source is the sender, for example leonardo.Source.
	Source string
	// Type is the event type, for example "image_generation.complete".
	Type        string
	Generation  *leonardo.Generation
	Variation   *leonardo.Variation
	SourceImage SourceVerdict
}

// SourceVerdict is the stored outcome of a post-processing result's
// source image.
type SourceVerdict struct {
	// Known is false when no verdict is stored for the image.
	Known   bool
	Outcome genrelayv1.Outcome
}

// Decide applies the policy to one callback. An image reaches the clean
// outcome only when every rule consulted passed it.
func Decide(cfg Config, in Input) Result {
	if in.Source != leonardo.Source {
		return unhandled(RuleEventSource,
			fmt.Sprintf("event source %q is not handled", in.Source))
	}

	switch in.Type {
	case leonardo.TypeImageGenerationComplete, leonardo.TypeVideoGenerationComplete:
		return decideGeneration(cfg, in.Generation)
	case leonardo.TypePostProcessingComplete:
		return decideVariation(cfg, in.Variation, in.SourceImage)
	default:
		return unhandled(RuleEventType,
			fmt.Sprintf("event type %q is not handled", in.Type))
	}
}

func unhandled(rule, reason string) Result {
	r := Result{Outcome: genrelayv1.Outcome_OUTCOME_UNHANDLED, Reason: reason}
	r.decide("", rule, ProviderGenrelay, r.Outcome, reason)
	return r
}

// decide appends a decision to r without changing any outcome.
func (r *Result) decide(imageID, rule, provider string,
	outcome genrelayv1.Outcome, reason string,
) {
	r.Decisions = append(r.Decisions, &genrelayv1.Decision{
		ImageId:  imageID,
		Rule:     rule,
		Provider: provider,
		Outcome:  outcome,
		Reason:   reason,
	})
}

// applyToAll records an event-wide decision and moves every image, and
// the outcome of an event without images, to it when it is stricter.
func (r *Result) applyToAll(rule, provider string, action Action, reason string) {
	outcome := action.Outcome()
	r.decide("", rule, provider, outcome, reason)

	if severity(outcome) > severity(r.Outcome) {
		r.Outcome, r.Reason = outcome, reason
	}
	for i := range r.Images {
		r.raise(i, outcome, reason)
	}
}

// applyToImage records a decision about image i and moves the image to it
// when it is stricter.
func (r *Result) applyToImage(i int, rule string,
	outcome genrelayv1.Outcome, reason string,
) {
	r.decide(r.Images[i].Image.GetId(), rule, ProviderGenerator, outcome, reason)
	r.raise(i, outcome, reason)
}

func (r *Result) raise(i int, outcome genrelayv1.Outcome, reason string) {
	iv := &r.Images[i]
	if severity(outcome) > severity(iv.Outcome) || iv.Reason == "" {
		iv.Outcome, iv.Reason = outcome, reason
	}
}
