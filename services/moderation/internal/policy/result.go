package policy

import (
	"fmt"
	"strings"

	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
)

// Provider names the party behind a decision.
const (
	// ProviderGenerator marks decisions taken from the generator's own
	// flags and status.
	ProviderGenerator = "generator"
	// ProviderGenrelay marks decisions that genrelay takes without a flag:
	// event type, missing images, a source image's stored verdict.
	ProviderGenrelay = "genrelay"
)

// ImageVerdict is the outcome of one image and the reason for it.
type ImageVerdict struct {
	Image   *genrelayv1.Image
	Outcome genrelayv1.Outcome
	Reason  string
}

// Result is the policy's verdict on one callback.
type Result struct {
	// Outcome is the outcome of the event when Images is empty: failed,
	// unhandled, or the strictest event-wide outcome of a generation that
	// has no images.
	Outcome genrelayv1.Outcome
	// Reason explains Outcome.
	Reason string
	// Status is the generation or variation status as sent.
	Status string
	// SourceImageID is the image a post-processing result was made from.
	SourceImageID string
	// Images holds one verdict per image, in the callback's order.
	Images []ImageVerdict
	// Decisions lists every rule consulted. An empty ImageId means the
	// decision applies to the whole event.
	Decisions []*genrelayv1.Decision
}

// Group is the part of a Result that goes out as one event.
type Group struct {
	Outcome genrelayv1.Outcome
	Reason  string
	// Images are the images with this outcome.
	Images []ImageVerdict
	// Removed lists, in the clean group only, the images that did not
	// pass, so that a clean event shows what was left out.
	Removed []ImageVerdict
	// Decisions are the event-wide decisions and those about Images.
	Decisions []*genrelayv1.Decision
}

// severity orders the image outcomes from least to most strict. Outcomes
// that are not image outcomes count as review, so an unexpected value from
// a later check never loosens a verdict.
func severity(o genrelayv1.Outcome) int {
	switch o {
	case genrelayv1.Outcome_OUTCOME_CLEAN:
		return 0
	case genrelayv1.Outcome_OUTCOME_REJECTED:
		return 2
	default:
		return 1
	}
}

// normalize returns o itself when it is an image outcome, and review
// otherwise.
func normalize(o genrelayv1.Outcome) genrelayv1.Outcome {
	switch o {
	case genrelayv1.Outcome_OUTCOME_CLEAN, genrelayv1.Outcome_OUTCOME_REJECTED:
		return o
	default:
		return genrelayv1.Outcome_OUTCOME_REVIEW
	}
}

// Apply records a decision about one image that a later check made, such
// as a third-party moderation provider, and moves the image to the
// decision's outcome when that is stricter. A decision never loosens a
// verdict, and an outcome other than clean, review or rejected counts as
// review. Apply returns false, and changes nothing, when no image has the
// decision's ImageId.
func (r *Result) Apply(d *genrelayv1.Decision) bool {
	for i := range r.Images {
		iv := &r.Images[i]
		if iv.Image.GetId() != d.GetImageId() {
			continue
		}

		r.Decisions = append(r.Decisions, d)
		if severity(d.GetOutcome()) > severity(iv.Outcome) {
			iv.Outcome = normalize(d.GetOutcome())
			iv.Reason = d.GetReason()
		}
		return true
	}
	return false
}

// groupOrder is the order of events that one callback yields.
var groupOrder = []genrelayv1.Outcome{
	genrelayv1.Outcome_OUTCOME_CLEAN,
	genrelayv1.Outcome_OUTCOME_REJECTED,
	genrelayv1.Outcome_OUTCOME_REVIEW,
	genrelayv1.Outcome_OUTCOME_FAILED,
}

// Groups splits the result into one group per outcome that has images,
// in the order clean, rejected, review, failed. A result without images
// yields one group with Result.Outcome.
func (r Result) Groups() []Group {
	if len(r.Images) == 0 {
		return []Group{{
			Outcome:   r.Outcome,
			Reason:    r.Reason,
			Decisions: r.Decisions,
		}}
	}

	var groups []Group
	for _, outcome := range groupOrder {
		if g, ok := r.group(outcome); ok {
			groups = append(groups, g)
		}
	}
	return groups
}

func (r Result) group(outcome genrelayv1.Outcome) (Group, bool) {
	g := Group{Outcome: outcome}
	ids := map[string]bool{}
	for _, iv := range r.Images {
		switch {
		case iv.Outcome == outcome:
			g.Images = append(g.Images, iv)
			ids[iv.Image.GetId()] = true
		case outcome == genrelayv1.Outcome_OUTCOME_CLEAN:
			g.Removed = append(g.Removed, iv)
		}
	}
	if len(g.Images) == 0 {
		return Group{}, false
	}

	for _, d := range r.Decisions {
		if d.GetImageId() == "" || ids[d.GetImageId()] {
			g.Decisions = append(g.Decisions, d)
		}
	}
	g.Reason = groupReason(g, len(r.Images))
	return g, true
}

// groupReason summarises a group: how many images passed for the clean
// group, and the distinct image reasons for the others.
func groupReason(g Group, total int) string {
	if g.Outcome == genrelayv1.Outcome_OUTCOME_CLEAN {
		if len(g.Removed) == 0 {
			return "all images passed"
		}
		return fmt.Sprintf("%d of %d images passed", len(g.Images), total)
	}

	var reasons []string
	seen := map[string]bool{}
	for _, iv := range g.Images {
		if !seen[iv.Reason] {
			seen[iv.Reason] = true
			reasons = append(reasons, iv.Reason)
		}
	}
	return strings.Join(reasons, "; ")
}
