package pipeline

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"

	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/pkg/leonardo"
	"github.com/genrelay/genrelay/services/moderation/internal/policy"
)

// screen calls the Screener for every image of a generation that the
// policy found clean, in parallel, and applies the decisions. Images the
// generator flagged are not sent.
func (p *Processor) screen(ctx context.Context, cb callback,
	result *policy.Result, progress func(),
) error {
	images := p.screenable(cb.input.Generation, result)
	if len(images) == 0 {
		return nil
	}

	decisions := make([][]*genrelayv1.Decision, len(images))
	g, gctx := errgroup.WithContext(ctx)
	for i, img := range images {
		g.Go(func() error {
			ds, err := p.cfg.Screener.Screen(gctx, img, progress)
			if err != nil {
				return fmt.Errorf("screen image %s: %w: %w", img.ID, ErrScreening, err)
			}
			decisions[i] = ds
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}

	return applyScreening(result, images, decisions)
}

// applyScreening applies each image's decisions to it, so the event
// records every provider consulted. No decision, or one about another
// image, fails the message rather than leaving an image that the screener
// was asked about counted as clean.
func applyScreening(result *policy.Result, images []ScreenImage,
	decisions [][]*genrelayv1.Decision,
) error {
	for i, ds := range decisions {
		if len(ds) == 0 {
			return fmt.Errorf("screen image %s: %w: no decision", images[i].ID, ErrScreening)
		}
		for _, d := range ds {
			if err := applyDecision(result, images[i], d); err != nil {
				return err
			}
		}
	}
	return nil
}

func applyDecision(result *policy.Result, img ScreenImage, d *genrelayv1.Decision) error {
	if d == nil {
		return fmt.Errorf("screen image %s: %w: no decision", img.ID, ErrScreening)
	}
	if d.GetImageId() == "" {
		d.ImageId = img.ID
	}
	if d.GetImageId() != img.ID || !result.Apply(d) {
		return fmt.Errorf("screen image %s: %w: decision is about image %q",
			img.ID, ErrScreening, d.GetImageId())
	}
	return nil
}

// screenable returns the images to screen: the clean images of a
// generation that is not failed, for which the Screener applies.
func (p *Processor) screenable(g *leonardo.Generation, result *policy.Result) []ScreenImage {
	if p.cfg.Screener == nil || g == nil ||
		result.Outcome == genrelayv1.Outcome_OUTCOME_FAILED {
		return nil
	}

	var images []ScreenImage
	for _, iv := range result.Images {
		if iv.Outcome != genrelayv1.Outcome_OUTCOME_CLEAN {
			continue
		}
		img := ScreenImage{
			ID:           iv.Image.GetId(),
			URL:          iv.Image.GetUrl(),
			SDVersion:    sdVersion(g),
			ModelID:      string(g.ModelID),
			GenerationID: string(g.ID),
		}
		if p.cfg.Screener.Applies(img) {
			images = append(images, img)
		}
	}
	return images
}

// sdVersion returns the generation's sdVersion, or its model's when the
// generation has none.
func sdVersion(g *leonardo.Generation) string {
	if g.SDVersion != "" || g.Model == nil {
		return string(g.SDVersion)
	}
	return string(g.Model.SDVersion)
}
