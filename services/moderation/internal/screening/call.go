package screening

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/services/moderation/internal/imagefetch"
	"github.com/genrelay/genrelay/services/moderation/internal/provider"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/httpclassifier"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/openai"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/rekognition"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/vision"
	"github.com/genrelay/genrelay/services/moderation/internal/verdictcache"
)

// screenOne returns one provider's decision on img. Its error is ctx's.
func (s *Screener) screenOne(
	ctx context.Context,
	g *provider.Guard,
	img Image,
	rule string,
) (*genrelayv1.Decision, error) {
	start := time.Now()
	d := &genrelayv1.Decision{ImageId: img.ID, Rule: rule, Provider: g.Name()}
	defer func() { d.Latency = durationpb.New(time.Since(start)) }()

	if err := s.fetcher.Allowed(img.URL); err != nil {
		d.Outcome, d.Reason = genrelayv1.Outcome_OUTCOME_REVIEW, err.Error()
		return d, nil
	}
	if e, ok := s.cached(ctx, g.Name(), img.ID); ok {
		s.score(d, &e.Result)
		d.Cached = true
		return d, nil
	}

	res, attempts, err := s.call(ctx, g, img)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("screen image %s with %s: %w", img.ID, g.Name(), context.Cause(ctx))
	}
	if err != nil {
		s.fail(d, Failure{Image: img, Provider: g.Name(), Attempts: attempts, Err: err})
		return d, nil
	}
	s.store(ctx, g.Name(), img.ID, res)
	s.score(d, res)
	return d, nil
}

func (s *Screener) score(d *genrelayv1.Decision, res *provider.Result) {
	d.Outcome, d.Reason = s.cfg.Thresholds.Classify(res.Scores)
	d.Scores = maps.Clone(res.Scores)
	d.Labels = append([]string(nil), res.Labels...)
	d.ModelVersion = res.ModelVersion
}

// fail records a provider failure. A URL that the downloader rejected
// goes to review, as a URL off the allowlist does. Any other error gets
// the fail mode and goes to the failure handler.
func (s *Screener) fail(d *genrelayv1.Decision, f Failure) {
	err := f.Err
	if errors.Is(err, imagefetch.ErrNotAllowed) || errors.Is(err, imagefetch.ErrBlockedAddress) {
		d.Outcome, d.Reason = genrelayv1.Outcome_OUTCOME_REVIEW, err.Error()
		return
	}

	d.Outcome = s.cfg.FailMode.Outcome()
	d.Reason = fmt.Sprintf("provider failed after %d attempt(s), fail mode %s: %v",
		f.Attempts, s.cfg.FailMode, err)
	if s.cfg.FailsOpen() {
		d.Reason = "unchecked: " + d.Reason
	}
	s.onFailure(f)
}

// call sends img to the provider with retries. For providers that need
// the bytes, the image is downloaded once and outside the breaker,
// because a CDN failure carries no information about the provider's health.
func (s *Screener) call(
	ctx context.Context,
	g *provider.Guard,
	img Image,
) (*provider.Result, int, error) {
	var (
		res      *provider.Result
		image    *imagefetch.Image
		attempts int
	)
	err := s.cfg.Retry.Do(ctx, func(ctx context.Context, n int) error {
		attempts = n
		in := provider.Image{ID: img.ID, URL: img.URL}
		if g.NeedsBytes() && image == nil {
			var err error
			if image, err = s.download(ctx, img.URL); err != nil {
				return err
			}
		}
		if image != nil {
			in.Bytes, in.MIMEType = image.Bytes, image.MIMEType
		}

		var err error
		res, err = g.Moderate(ctx, in)
		return err
	})
	return res, attempts, err
}

// download fetches the image and classifies its errors for RetryPolicy:
// refused URLs and unusable bodies are final, other failures retryable.
func (s *Screener) download(ctx context.Context, url string) (*imagefetch.Image, error) {
	img, err := s.fetcher.Fetch(ctx, url)
	if err == nil {
		return img, nil
	}

	kind := provider.ErrRetryable
	var status *imagefetch.StatusError
	switch {
	case errors.Is(err, imagefetch.ErrTooLarge), errors.Is(err, imagefetch.ErrUnsupportedFormat),
		errors.Is(err, imagefetch.ErrNotAllowed), errors.Is(err, imagefetch.ErrBlockedAddress),
		errors.Is(err, imagefetch.ErrTooManyRedirects):
		kind = provider.ErrInvalidInput
	case errors.As(err, &status) && !status.Temporary():
		kind = provider.ErrInvalidInput
	}
	return nil, &provider.Error{Provider: "image download", Kind: kind, Err: err}
}

func (s *Screener) cached(ctx context.Context, name, imageID string) (*verdictcache.Entry, bool) {
	if s.cache == nil {
		return nil, false
	}
	e, ok, err := s.cache.Get(ctx, name, imageID)
	if err != nil {
		s.onCacheError(err)
		return nil, false
	}
	return e, ok
}

func (s *Screener) store(ctx context.Context, name, imageID string, res *provider.Result) {
	if s.cache == nil {
		return
	}
	e := verdictcache.Entry{Result: *res, CheckedAt: time.Now().UTC()}
	if err := s.cache.Put(ctx, name, imageID, e); err != nil {
		s.onCacheError(err)
	}
}

// buildProviders creates the clients that cfg.Providers names, in order.
func buildProviders(cfg Config, hc *http.Client) ([]provider.Provider, error) {
	var out []provider.Provider
	for _, name := range cfg.Providers {
		p, err := buildProvider(cfg, name, hc)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func buildProvider(cfg Config, name string, hc *http.Client) (provider.Provider, error) {
	switch name {
	case openai.Name:
		return openai.New(openai.Config{
			APIKey: cfg.OpenAI.APIKey, BaseURL: cfg.OpenAI.BaseURL,
			Model: cfg.OpenAI.Model, HTTPClient: hc,
		})
	case rekognition.Name:
		return rekognition.New(rekognition.Config{
			Region: cfg.AWS.Region, AccessKeyID: cfg.AWS.AccessKeyID,
			SecretAccessKey: cfg.AWS.SecretAccessKey, SessionToken: cfg.AWS.SessionToken,
			BaseURL: cfg.AWS.BaseURL, MinConfidence: float32(cfg.AWS.MinConfidence),
			HTTPClient: hc,
		})
	case vision.Name:
		return vision.New(vision.Config{
			APIKey: cfg.Vision.APIKey, BaseURL: cfg.Vision.BaseURL, HTTPClient: hc,
		})
	case httpclassifier.Name:
		return httpclassifier.New(httpclassifier.Config{
			URL: cfg.HTTP.URL, URLField: cfg.HTTP.URLField, ScoreField: cfg.HTTP.ScoreField,
			Category: cfg.HTTP.Category, Token: cfg.HTTP.Token, HTTPClient: hc,
		})
	}
	return nil, fmt.Errorf("unknown moderation provider %q", name)
}
