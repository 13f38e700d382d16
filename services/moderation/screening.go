package main

import (
	"context"

	"go.uber.org/zap"

	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/services/moderation/internal/pipeline"
	"github.com/genrelay/genrelay/services/moderation/internal/screening"
	"github.com/genrelay/genrelay/services/moderation/internal/verdictcache"
)

// providerScreener plugs the third-party moderation providers into the
// pipeline's Screener seam.
type providerScreener struct {
	screener *screening.Screener
}

func (p providerScreener) Applies(img pipeline.ScreenImage) bool {
	return p.screener.Applies(screeningImage(img))
}

func (p providerScreener) Screen(ctx context.Context, img pipeline.ScreenImage,
	progress func(),
) ([]*genrelayv1.Decision, error) {
	return p.screener.ScreenEach(ctx, screeningImage(img), progress)
}

// screeningImage converts an image for the screening package. The
// pipeline passes only images that the generator's flags passed, so none
// is flagged.
func screeningImage(img pipeline.ScreenImage) screening.Image {
	return screening.Image{
		ID:           img.ID,
		URL:          img.URL,
		SDVersion:    img.SDVersion,
		ModelID:      img.ModelID,
		GenerationID: img.GenerationID,
	}
}

// newScreener returns the pipeline's screening step: nil when no
// provider is configured, so that only the generator's flags decide.
func newScreener(cfg screening.Config, cache *verdictcache.Cache,
	log *zap.Logger,
) (pipeline.Screener, error) {
	if len(cfg.Providers) == 0 {
		return nil, nil
	}

	s, err := screening.New(cfg,
		screening.WithCache(cache),
		screening.WithCacheErrorHandler(func(err error) {
			log.Warn("provider verdict cache failed, calling the provider", zap.Error(err))
		}),
		screening.WithFailureHandler(func(f screening.Failure) {
			log.Warn("provider check failed, fail mode applied",
				zap.String("provider", f.Provider),
				zap.String("image_id", f.Image.ID),
				zap.String("generation_id", f.Image.GenerationID),
				zap.Int("attempts", f.Attempts),
				zap.String("fail_mode", cfg.FailMode.String()),
				zap.Error(f.Err))
		}))
	if err != nil {
		return nil, err
	}
	return providerScreener{screener: s}, nil
}
