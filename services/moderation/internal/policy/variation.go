package policy

import (
	"fmt"
	"strings"

	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/pkg/leonardo"
)

// decideVariation gives a post-processing result the stored outcome of
// its source image. A source without a stored verdict takes the unknown
// source action.
func decideVariation(cfg Config, v *leonardo.Variation, source SourceVerdict) Result {
	if v == nil {
		v = &leonardo.Variation{}
	}
	r := Result{
		Outcome:       genrelayv1.Outcome_OUTCOME_CLEAN,
		Status:        string(v.Status),
		SourceImageID: string(v.GeneratedImageID),
		Images: []ImageVerdict{{
			Image:   &genrelayv1.Image{Id: string(v.ID), Url: string(v.URL)},
			Outcome: genrelayv1.Outcome_OUTCOME_CLEAN,
		}},
	}

	if string(v.Status) == leonardo.StatusFailed {
		r.fail()
		return r
	}

	sourceID := r.SourceImageID
	switch {
	case sourceID == "":
		r.applyToAll(RuleSourceVerdict, ProviderGenrelay, cfg.UnknownSource,
			`variation field "generatedImageId" is missing`)
	case !source.Known:
		r.applyToAll(RuleSourceVerdict, ProviderGenrelay, cfg.UnknownSource,
			fmt.Sprintf("source image %s has no stored verdict", sourceID))
	default:
		r.inherit(sourceID, normalize(source.Outcome))
	}
	return r
}

// inherit records the source image's outcome as the variation's.
func (r *Result) inherit(sourceID string, outcome genrelayv1.Outcome) {
	name := strings.ToLower(strings.TrimPrefix(outcome.String(), "OUTCOME_"))
	reason := fmt.Sprintf("source image %s was %s", sourceID, name)

	r.Decisions = append(r.Decisions, &genrelayv1.Decision{
		Rule:     RuleSourceVerdict,
		Provider: ProviderGenrelay,
		Outcome:  outcome,
		Reason:   reason,
		Cached:   true,
	})
	if severity(outcome) > severity(r.Outcome) {
		r.Outcome, r.Reason = outcome, reason
	}
	for i := range r.Images {
		r.raise(i, outcome, reason)
	}
}
