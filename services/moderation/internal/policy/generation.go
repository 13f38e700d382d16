package policy

import (
	"fmt"

	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/pkg/leonardo"
)

// decideGeneration applies the generation rules: status, the generation's
// and the model's flags, then each image's nsfw flag.
func decideGeneration(cfg Config, g *leonardo.Generation) Result {
	if g == nil {
		g = &leonardo.Generation{}
	}
	r := Result{
		Outcome: genrelayv1.Outcome_OUTCOME_CLEAN,
		Status:  string(g.Status),
		Images:  imageVerdicts(g.Images),
	}

	if string(g.Status) == leonardo.StatusFailed {
		r.fail()
		return r
	}
	if string(g.Status) != leonardo.StatusComplete {
		r.applyToAll(RuleGenerationStatus, ProviderGenerator, cfg.UnknownFlag,
			fmt.Sprintf("generation status %q is neither %s nor %s",
				g.Status, leonardo.StatusComplete, leonardo.StatusFailed))
	}

	r.applyGenerationFlags(cfg, g)
	r.applyModelFlags(cfg, g.Model)
	r.applyImageFlags(cfg)

	if len(r.Images) == 0 && r.Outcome == genrelayv1.Outcome_OUTCOME_CLEAN {
		r.applyToAll(RuleGenerationImages, ProviderGenrelay, cfg.UnknownFlag,
			"completed generation has no images")
	}
	return r
}

func imageVerdicts(images []leonardo.Image) []ImageVerdict {
	verdicts := make([]ImageVerdict, 0, len(images))
	for _, img := range images {
		verdicts = append(verdicts, ImageVerdict{
			Image: &genrelayv1.Image{
				Id:           string(img.ID),
				Url:          string(img.URL),
				MotionMp4Url: string(img.MotionMP4URL),
				MotionGifUrl: string(img.MotionGIFURL),
				Nsfw:         img.NSFW.Bool(),
			},
			Outcome: genrelayv1.Outcome_OUTCOME_CLEAN,
		})
	}
	return verdicts
}

// fail routes the generation and all its images to the failed outcome.
func (r *Result) fail() {
	reason := "generation failed"
	r.Outcome, r.Reason = genrelayv1.Outcome_OUTCOME_FAILED, reason
	r.decide("", RuleGenerationStatus, ProviderGenerator, r.Outcome, reason)
	for i := range r.Images {
		r.Images[i].Outcome = r.Outcome
		r.Images[i].Reason = reason
	}
}

// applyGenerationFlags applies the generation's nsfw and flagged fields.
// Each must be a boolean: a missing one fails closed.
func (r *Result) applyGenerationFlags(cfg Config, g *leonardo.Generation) {
	flags := []struct {
		flag          leonardo.Flag
		flaggedReason string
		unknownReason string
	}{
		{g.NSFW, "generation flagged nsfw",
			`generation field "nsfw" is missing or not a boolean`},
		{g.Flagged, "generation flagged",
			`generation field "flagged" is missing or not a boolean`},
	}

	passed := true
	for _, f := range flags {
		switch f.flag {
		case leonardo.FlagTrue:
			passed = false
			r.applyToAll(RuleGenerationFlags, ProviderGenerator,
				cfg.FlaggedGeneration, f.flaggedReason)
		case leonardo.FlagUnknown:
			passed = false
			r.applyToAll(RuleGenerationFlags, ProviderGenerator,
				cfg.UnknownFlag, f.unknownReason)
		}
	}
	if passed {
		r.decide("", RuleGenerationFlags, ProviderGenerator,
			genrelayv1.Outcome_OUTCOME_CLEAN, "generation not flagged")
	}
}

// applyModelFlags applies the model's own nsfw and flagged fields. A
// missing model or flag is not a reason on its own: the generation and
// image flags still decide.
func (r *Result) applyModelFlags(cfg Config, m *leonardo.Model) {
	if m == nil {
		return
	}

	flagged := false
	if m.NSFW == leonardo.FlagTrue {
		flagged = true
		r.applyToAll(RuleModelFlags, ProviderGenerator, cfg.FlaggedModel,
			"model flagged nsfw")
	}
	if m.Flagged == leonardo.FlagTrue {
		flagged = true
		r.applyToAll(RuleModelFlags, ProviderGenerator, cfg.FlaggedModel,
			"model flagged")
	}
	if !flagged {
		r.decide("", RuleModelFlags, ProviderGenerator,
			genrelayv1.Outcome_OUTCOME_CLEAN, "model not flagged")
	}
}

// applyImageFlags applies each image's nsfw flag: true takes the nsfw
// image action, a missing or non-boolean flag the unknown flag action.
func (r *Result) applyImageFlags(cfg Config) {
	for i, iv := range r.Images {
		switch {
		case iv.Image.Nsfw == nil:
			r.applyToImage(i, RuleImageNSFW, cfg.UnknownFlag.Outcome(),
				`image field "nsfw" is missing or not a boolean`)
		case *iv.Image.Nsfw:
			r.applyToImage(i, RuleImageNSFW, cfg.NSFWImage.Outcome(),
				"image flagged nsfw")
		default:
			r.applyToImage(i, RuleImageNSFW, genrelayv1.Outcome_OUTCOME_CLEAN,
				"image not flagged nsfw")
		}
	}
}
