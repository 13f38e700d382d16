// Package screening is the policy layer between the moderation service and
// the image moderation providers. It decides which images are sent
// (Rule) and calls each configured provider with retries, a timeout, a
// concurrency limit and a circuit breaker. It caches successful results
// in a JetStream bucket, turns scores into outcomes (Thresholds), and
// applies the fail mode when a provider fails. It never returns CLEAN for
// an image that no provider checked, unless the fail mode is explicitly
// clean. It does not log: it returns decisions and errors, and reports
// cache errors to an optional callback.
package screening

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/services/moderation/internal/imagefetch"
	"github.com/genrelay/genrelay/services/moderation/internal/provider"
	"github.com/genrelay/genrelay/services/moderation/internal/verdictcache"
)

// ErrNotApplicable is returned by Screen when the image does not match the
// rule, the generator flagged it, or no provider is configured. Call
// Applies first.
var ErrNotApplicable = errors.New("image is not screened by providers")

// RulePrefix starts the Rule field of every decision this package makes.
const RulePrefix = "provider_check:"

// Image is one image the generator did not flag.
type Image struct {
	// ID is the generator's image id, the cache key.
	ID string
	// URL is the image's download location, passed to providers.
	URL string
	// SDVersion and ModelID describe the generation, for Rule.
	SDVersion string
	ModelID   string
	// GenerationID is carried for the caller's logs.
	GenerationID string
	// Flagged is true when the generator flagged the image or its
	// generation; such images are never sent.
	Flagged bool
}

// Cache stores provider results; *verdictcache.Cache implements it.
type Cache interface {
	Get(ctx context.Context, providerName, imageID string) (*verdictcache.Entry, bool, error)
	Put(ctx context.Context, providerName, imageID string, e verdictcache.Entry) error
}

// Option changes how New builds a Screener.
type Option func(*Screener)

// WithCache stores and reuses provider results. Without it every image is
// sent to every provider.
func WithCache(c Cache) Option { return func(s *Screener) { s.cache = c } }

// WithCacheErrorHandler receives cache read and write errors, which never
// stop screening: a failed read is treated as a miss.
func WithCacheErrorHandler(f func(error)) Option {
	return func(s *Screener) { s.onCacheError = f }
}

// Failure is a provider check that ended in the fail mode: the provider
// failed after its retries, or its circuit breaker was open.
type Failure struct {
	Image    Image
	Provider string
	// Attempts is the number of attempts made. A call that an open
	// breaker refused counts as one.
	Attempts int
	Err      error
}

// WithFailureHandler receives every Failure, after the fail mode has been
// applied, so that the caller can log it. A URL that the allowlist or the
// address check rejects is not a Failure, because it says nothing about
// the provider.
func WithFailureHandler(f func(Failure)) Option {
	return func(s *Screener) { s.onFailure = f }
}

// WithFetcher replaces the image downloader built from the config, for
// tests that serve images from a loopback server.
func WithFetcher(f *imagefetch.Fetcher) Option { return func(s *Screener) { s.fetcher = f } }

// WithHTTPClient sets the client for provider calls. Default: a client
// without a proxy, whose timeouts come from the per-call context.
func WithHTTPClient(c *http.Client) Option { return func(s *Screener) { s.httpClient = c } }

// WithProviders replaces the providers built from cfg.Providers, for
// providers that are not part of this package's configuration.
func WithProviders(ps ...provider.Provider) Option {
	return func(s *Screener) { s.custom = ps }
}

// Screener screens images. It is safe for concurrent use.
type Screener struct {
	cfg          Config
	guards       []*provider.Guard
	fetcher      *imagefetch.Fetcher
	cache        Cache
	onCacheError func(error)
	onFailure    func(Failure)
	httpClient   *http.Client
	custom       []provider.Provider
}

// New validates cfg and builds the providers it names.
func New(cfg Config, opts ...Option) (*Screener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Screener{cfg: cfg, onCacheError: func(error) {}, onFailure: func(Failure) {}}
	for _, o := range opts {
		o(s)
	}

	if err := s.build(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return s, nil
}

func (s *Screener) build() error {
	if s.httpClient == nil {
		s.httpClient = &http.Client{Transport: &http.Transport{
			Proxy: nil, ForceAttemptHTTP2: true, MaxIdleConnsPerHost: s.cfg.Limits.Concurrency,
			IdleConnTimeout: 90 * time.Second,
		}}
	}
	if s.fetcher == nil {
		f, err := imagefetch.New(imagefetch.Config{
			AllowedHosts: s.cfg.Images.AllowedHosts, MaxBytes: s.cfg.Images.MaxBytes,
			MaxRedirects: s.cfg.Images.MaxRedirects, Timeout: s.cfg.Images.FetchTimeout,
		})
		if err != nil {
			return err
		}
		s.fetcher = f
	}

	ps := s.custom
	if ps == nil {
		var err error
		if ps, err = buildProviders(s.cfg, s.httpClient); err != nil {
			return err
		}
	}
	for _, p := range ps {
		s.guards = append(s.guards, provider.NewGuard(p, s.cfg.Limits))
	}
	return nil
}

// FailsOpen reports whether provider failures let images through as
// clean; the service should warn about it at start-up.
func (s *Screener) FailsOpen() bool { return s.cfg.FailsOpen() }

// BreakerStates returns each provider's circuit breaker state ("closed",
// "half-open" or "open"), for health reports.
func (s *Screener) BreakerStates() map[string]string {
	out := map[string]string{}
	for _, g := range s.guards {
		out[g.Name()] = g.BreakerState()
	}
	return out
}

// Applies reports whether Screen would send img to the providers: at
// least one provider is configured, the generator did not flag img, and
// the rule matches it.
func (s *Screener) Applies(img Image) bool {
	_, ok := s.match(img)
	return ok
}

func (s *Screener) match(img Image) (string, bool) {
	if len(s.guards) == 0 {
		return "", false
	}
	rule, ok := s.cfg.Rule.Match(img)
	return RulePrefix + rule, ok
}

// Screen sends img to the providers and returns the most severe of
// their decisions: REJECTED, then REVIEW, then CLEAN, and the first one
// on a tie. See ScreenEach for the rest of the contract.
func (s *Screener) Screen(
	ctx context.Context,
	img Image,
	progress func(),
) (*genrelayv1.Decision, error) {
	ds, err := s.ScreenEach(ctx, img, progress)
	if err != nil {
		return nil, err
	}
	worst := ds[0]
	for _, d := range ds[1:] {
		if severity(d.Outcome) > severity(worst.Outcome) {
			worst = d
		}
	}
	return worst, nil
}

// ScreenEach calls the providers in configured order and returns one
// decision per provider asked. It stops after a REJECTED decision, which
// no later provider could change.
//
// A provider that fails after the retries, or whose breaker is open,
// yields a decision with the fail-mode outcome. An image URL that is not
// https on an allowed host yields REVIEW without any request, whatever
// the fail mode. While it works, ScreenEach calls progress every
// ProgressInterval from another goroutine, never concurrently with
// itself and never after returning; progress may be nil.
//
// It returns an error only when ctx ends first (the caller should leave
// the message for redelivery) or when img does not apply
// (ErrNotApplicable).
func (s *Screener) ScreenEach(
	ctx context.Context,
	img Image,
	progress func(),
) ([]*genrelayv1.Decision, error) {
	rule, ok := s.match(img)
	if !ok {
		return nil, ErrNotApplicable
	}
	stop := keepAlive(progress, s.cfg.ProgressInterval)
	defer stop()

	var out []*genrelayv1.Decision
	for _, g := range s.guards {
		d, err := s.screenOne(ctx, g, img, rule)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
		if d.Outcome == genrelayv1.Outcome_OUTCOME_REJECTED {
			break
		}
	}
	return out, nil
}

// keepAlive calls progress every interval until the returned stop
// function runs; stop waits for the goroutine to end.
func keepAlive(progress func(), every time.Duration) (stop func()) {
	if progress == nil {
		return func() {}
	}
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				progress()
			case <-done:
				return
			}
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
