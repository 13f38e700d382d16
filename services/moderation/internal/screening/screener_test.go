package screening_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/pkg/natstest"
	"github.com/genrelay/genrelay/services/moderation/internal/imagefetch"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/httpclassifier/httpclassifiertest"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/openai/openaitest"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/providertest"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/rekognition/rekognitiontest"
	"github.com/genrelay/genrelay/services/moderation/internal/screening"
	"github.com/genrelay/genrelay/services/moderation/internal/verdictcache"
)

const cdnURL = "https://cdn.leonardo.ai/users/u/generations/g/Leonardo_0.jpg"

func sd15Image(id string) screening.Image {
	return screening.Image{
		ID: id, URL: cdnURL, SDVersion: "v1_5",
		ModelID: "6bef9f1b-29cb-40c7-b9df-32b51c1f67d3", GenerationID: "a170b338",
	}
}

// httpConfig screens with the HTTP classifier mock, fast retries and a
// short breaker timeout.
func httpConfig(mock *httpclassifiertest.Server) screening.Config {
	cfg := screening.DefaultConfig()
	cfg.Providers = []string{"http"}
	cfg.HTTP.URL = mock.Endpoint()
	cfg.HTTP.ScoreField = httpclassifiertest.ScoreField
	cfg.Retry.InitialBackoff = 5 * time.Millisecond
	cfg.Retry.MaxBackoff = 10 * time.Millisecond
	cfg.Limits.BreakerOpenFor = 300 * time.Millisecond
	cfg.ProgressInterval = 20 * time.Millisecond
	return cfg
}

func newScreener(t *testing.T, cfg screening.Config, opts ...screening.Option) *screening.Screener {
	t.Helper()
	s, err := screening.New(cfg, opts...)
	if err != nil {
		t.Fatalf("new screener: %v", err)
	}
	return s
}

func screen(t *testing.T, s *screening.Screener, img screening.Image) *genrelayv1.Decision {
	t.Helper()
	d, err := s.Screen(context.Background(), img, nil)
	if err != nil {
		t.Fatalf("screen: %v", err)
	}
	return d
}

func TestScreenOutcomesFromScores(t *testing.T) {
	tests := []struct {
		score float64
		want  genrelayv1.Outcome
	}{
		{0.1, clean},
		{0.5, review},
		{0.93, rejected},
	}
	for _, tt := range tests {
		t.Run(tt.want.String(), func(t *testing.T) {
			mock := httpclassifiertest.Start(t, "")
			mock.Enqueue(httpclassifiertest.Score(tt.score))
			s := newScreener(t, httpConfig(mock))

			d := screen(t, s, sd15Image("img-1"))

			if d.Outcome != tt.want {
				t.Errorf("outcome = %v, want %v (reason %q)", d.Outcome, tt.want, d.Reason)
			}
			if d.Provider != "http" || d.Rule != "provider_check:default" || d.ImageId != "img-1" {
				t.Errorf("decision provider/rule/image = %q/%q/%q", d.Provider, d.Rule, d.ImageId)
			}
			if d.Scores["sexual"] != tt.score {
				t.Errorf("scores = %v, want sexual %v", d.Scores, tt.score)
			}
			if d.Latency == nil || d.Latency.AsDuration() <= 0 || d.Cached {
				t.Errorf("latency = %v, cached = %v", d.Latency, d.Cached)
			}
		})
	}
}

func TestOutageAppliesFailMode(t *testing.T) {
	tests := []struct {
		mode       screening.FailMode
		want       genrelayv1.Outcome
		wantPrefix string
	}{
		{screening.FailReview, review, "provider failed after 3 attempt(s)"},
		{screening.FailRejected, rejected, "provider failed after 3 attempt(s)"},
		{screening.FailClean, clean, "unchecked: provider failed"},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			mock := httpclassifiertest.Start(t, "")
			mock.SetHandler(func(providertest.Request) providertest.Response {
				return httpclassifiertest.ServerError()
			})
			cfg := httpConfig(mock)
			cfg.FailMode = tt.mode
			s := newScreener(t, cfg)

			d := screen(t, s, sd15Image("img-1"))

			if d.Outcome != tt.want {
				t.Errorf("outcome = %v, want %v", d.Outcome, tt.want)
			}
			if !strings.HasPrefix(d.Reason, tt.wantPrefix) {
				t.Errorf("reason = %q, want prefix %q", d.Reason, tt.wantPrefix)
			}
			if got := mock.Count(); got != 3 {
				t.Errorf("mock saw %d requests, want 3 attempts", got)
			}
			if len(d.Scores) != 0 {
				t.Errorf("a failed check must carry no scores, got %v", d.Scores)
			}
		})
	}
}

func TestOutageNeverCleanByDefault(t *testing.T) {
	failures := map[string]providertest.Response{
		"rate limited":  httpclassifiertest.RateLimited(0),
		"unavailable":   httpclassifiertest.Unavailable(),
		"auth":          httpclassifiertest.Error(http.StatusUnauthorized, "bad token"),
		"invalid input": httpclassifiertest.Error(http.StatusBadRequest, "cannot decode"),
		"hang":          providertest.Hang(5 * time.Second),
	}
	for name, resp := range failures {
		t.Run(name, func(t *testing.T) {
			mock := httpclassifiertest.Start(t, "")
			mock.SetHandler(func(providertest.Request) providertest.Response { return resp })
			cfg := httpConfig(mock)
			cfg.Limits.Timeout = 100 * time.Millisecond
			s := newScreener(t, cfg)

			d := screen(t, s, sd15Image("img-1"))

			if d.Outcome != review {
				t.Errorf("outcome = %v, want REVIEW (reason %q)", d.Outcome, d.Reason)
			}
		})
	}
}

func TestNoRetryForAuthAndInvalidInput(t *testing.T) {
	for name, resp := range map[string]providertest.Response{
		"auth":          httpclassifiertest.Error(http.StatusForbidden, "forbidden"),
		"invalid input": httpclassifiertest.Error(http.StatusUnprocessableEntity, "not an image"),
	} {
		t.Run(name, func(t *testing.T) {
			mock := httpclassifiertest.Start(t, "")
			mock.SetHandler(func(providertest.Request) providertest.Response { return resp })
			s := newScreener(t, httpConfig(mock))

			screen(t, s, sd15Image("img-1"))

			if got := mock.Count(); got != 1 {
				t.Errorf("mock saw %d requests, want 1", got)
			}
		})
	}
}

func TestBreakerOpensAndRecovers(t *testing.T) {
	mock := httpclassifiertest.Start(t, "")
	var healthy atomic.Bool
	mock.SetHandler(func(providertest.Request) providertest.Response {
		if healthy.Load() {
			return httpclassifiertest.Score(0.1)
		}
		return httpclassifiertest.ServerError()
	})
	cfg := httpConfig(mock)
	cfg.Retry.Attempts = 1
	cfg.Limits.BreakerFailures = 2
	s := newScreener(t, cfg)

	screen(t, s, sd15Image("img-1"))
	screen(t, s, sd15Image("img-2"))
	calls := mock.Count()
	open := screen(t, s, sd15Image("img-3"))
	again := screen(t, s, sd15Image("img-4"))

	if calls != 2 || mock.Count() != calls {
		t.Errorf("mock saw %d requests before and %d after the breaker opened, want 2 and 2",
			calls, mock.Count())
	}
	if open.Outcome != review || !strings.Contains(open.Reason, "circuit breaker is open") {
		t.Errorf("open breaker decision = %v %q, want REVIEW citing the breaker", open.Outcome, open.Reason)
	}
	if again.Outcome != review {
		t.Errorf("second skipped call outcome = %v, want REVIEW", again.Outcome)
	}
	if s.BreakerStates()["http"] != "open" {
		t.Errorf("breaker states = %v, want http open", s.BreakerStates())
	}

	healthy.Store(true)
	time.Sleep(cfg.Limits.BreakerOpenFor + 100*time.Millisecond)
	recovered := screen(t, s, sd15Image("img-5"))

	if recovered.Outcome != clean || mock.Count() != calls+1 {
		t.Errorf("after recovery outcome = %v with %d requests, want CLEAN with %d",
			recovered.Outcome, mock.Count(), calls+1)
	}
	if s.BreakerStates()["http"] != "closed" {
		t.Errorf("breaker states = %v, want http closed", s.BreakerStates())
	}
}

func TestCacheHitSkipsProvider(t *testing.T) {
	mock := httpclassifiertest.Start(t, "")
	mock.Enqueue(httpclassifiertest.Score(0.55))
	cache := openCache(t)
	s := newScreener(t, httpConfig(mock), screening.WithCache(cache))

	first := screen(t, s, sd15Image("img-1"))
	second := screen(t, s, sd15Image("img-1"))

	if got := mock.Count(); got != 1 {
		t.Errorf("mock saw %d requests, want 1", got)
	}
	if first.Cached || !second.Cached {
		t.Errorf("cached flags = %v, %v; want false, true", first.Cached, second.Cached)
	}
	if second.Outcome != first.Outcome || second.Scores["sexual"] != 0.55 {
		t.Errorf("cached decision = %v %v, want %v with sexual 0.55", second.Outcome, second.Scores, first.Outcome)
	}

	other := newScreener(t, httpConfig(mock), screening.WithCache(cache))
	if d := screen(t, other, sd15Image("img-1")); !d.Cached || mock.Count() != 1 {
		t.Errorf("a second replica did not reuse the shared cache")
	}
}

func TestFailModeIsNotCached(t *testing.T) {
	mock := httpclassifiertest.Start(t, "")
	mock.Enqueue(httpclassifiertest.ServerError(), httpclassifiertest.ServerError(),
		httpclassifiertest.ServerError(), httpclassifiertest.Score(0.1))
	s := newScreener(t, httpConfig(mock), screening.WithCache(openCache(t)))

	failed := screen(t, s, sd15Image("img-1"))
	checked := screen(t, s, sd15Image("img-1"))

	if failed.Outcome != review || checked.Outcome != clean || checked.Cached {
		t.Errorf("decisions = %v then %v (cached %v), want REVIEW then a fresh CLEAN",
			failed.Outcome, checked.Outcome, checked.Cached)
	}
	if got := mock.Count(); got != 4 {
		t.Errorf("mock saw %d requests, want 4", got)
	}
}

func TestCacheErrorsAreReportedNotFatal(t *testing.T) {
	mock := httpclassifiertest.Start(t, "")
	var reported atomic.Int32
	s := newScreener(t, httpConfig(mock),
		screening.WithCache(brokenCache{}),
		screening.WithCacheErrorHandler(func(error) { reported.Add(1) }))

	d := screen(t, s, sd15Image("img-1"))

	if d.Outcome != clean || mock.Count() != 1 {
		t.Errorf("outcome = %v after %d requests, want CLEAN after 1", d.Outcome, mock.Count())
	}
	if reported.Load() != 2 {
		t.Errorf("reported %d cache errors, want 2 (get and put)", reported.Load())
	}
}

func TestSlowProviderCallsProgress(t *testing.T) {
	mock := httpclassifiertest.Start(t, "")
	slow := httpclassifiertest.Score(0.1)
	slow.Delay = 300 * time.Millisecond
	mock.Enqueue(slow)
	s := newScreener(t, httpConfig(mock))

	var calls atomic.Int32
	_, err := s.Screen(context.Background(), sd15Image("img-1"), func() { calls.Add(1) })
	if err != nil {
		t.Fatalf("screen: %v", err)
	}
	atReturn := calls.Load()
	time.Sleep(100 * time.Millisecond)

	if atReturn < 5 {
		t.Errorf("progress called %d times during a 300ms call every 20ms, want at least 5", atReturn)
	}
	if calls.Load() != atReturn {
		t.Errorf("progress called %d times after Screen returned", calls.Load()-atReturn)
	}
}

func TestURLOutsideAllowlistIsNeverRequested(t *testing.T) {
	urls := []string{
		"https://evil.example/image.jpg",
		"http://cdn.leonardo.ai/users/u/image.jpg",
		"https://169.254.169.254/latest/meta-data/",
	}
	for _, url := range urls {
		t.Run(url, func(t *testing.T) {
			mock := httpclassifiertest.Start(t, "")
			cfg := httpConfig(mock)
			cfg.FailMode = screening.FailClean
			s := newScreener(t, cfg)
			img := sd15Image("img-1")
			img.URL = url

			d := screen(t, s, img)

			if got := mock.Count(); got != 0 {
				t.Errorf("provider mock saw %d requests, want 0", got)
			}
			if d.Outcome != review || !strings.Contains(d.Reason, "not allowed") {
				t.Errorf("decision = %v %q, want REVIEW for a URL off the allowlist", d.Outcome, d.Reason)
			}
		})
	}
}

func TestRulesAndFlags(t *testing.T) {
	mock := httpclassifiertest.Start(t, "")
	cfg := httpConfig(mock)
	if err := cfg.Rule.Set("sd-versions:v1_5"); err != nil {
		t.Fatal(err)
	}
	s := newScreener(t, cfg)
	sdxl := sd15Image("img-2")
	sdxl.SDVersion = "SDXL_0_9"
	flagged := sd15Image("img-3")
	flagged.Flagged = true

	tests := []struct {
		name string
		img  screening.Image
		want bool
	}{
		{"sd 1.5", sd15Image("img-1"), true},
		{"sdxl", sdxl, false},
		{"flagged by generator", flagged, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Applies(tt.img); got != tt.want {
				t.Errorf("Applies = %v, want %v", got, tt.want)
			}
			_, err := s.Screen(context.Background(), tt.img, nil)
			if !tt.want && !errors.Is(err, screening.ErrNotApplicable) {
				t.Errorf("Screen error = %v, want ErrNotApplicable", err)
			}
		})
	}
	if got := mock.Count(); got != 1 {
		t.Errorf("mock saw %d requests, want 1 (the sd 1.5 image)", got)
	}
	d := screen(t, s, sd15Image("img-1"))
	if d.Rule != "provider_check:sd_version=v1_5" {
		t.Errorf("rule = %q", d.Rule)
	}
}

func TestNoProvidersMeansNotApplicable(t *testing.T) {
	s := newScreener(t, screening.DefaultConfig())
	if s.Applies(sd15Image("img-1")) {
		t.Error("Applies is true with no provider configured")
	}
}

func TestRejectedStopsLaterProviders(t *testing.T) {
	ai := openaitest.Start(t)
	ai.Enqueue(openaitest.Scores("omni-moderation-latest", map[string]float64{"sexual": 0.97}))
	classifier := httpclassifiertest.Start(t, "")
	cfg := httpConfig(classifier)
	cfg.Providers = []string{"openai", "http"}
	cfg.OpenAI.APIKey, cfg.OpenAI.BaseURL = openaitest.APIKey, ai.BaseURL()
	s := newScreener(t, cfg)

	ds, err := s.ScreenEach(context.Background(), sd15Image("img-1"), nil)
	if err != nil {
		t.Fatalf("screen each: %v", err)
	}

	if len(ds) != 1 || ds[0].Outcome != rejected || ds[0].Provider != "openai" {
		t.Fatalf("decisions = %v, want one REJECTED from openai", ds)
	}
	if ds[0].ModelVersion != "omni-moderation-latest" {
		t.Errorf("model version = %q", ds[0].ModelVersion)
	}
	if classifier.Count() != 0 {
		t.Errorf("second provider saw %d requests after a rejection, want 0", classifier.Count())
	}
}

func TestScreenReturnsWorstDecision(t *testing.T) {
	ai := openaitest.Start(t)
	ai.Enqueue(openaitest.Scores("omni-moderation-latest", map[string]float64{"sexual": 0.05}))
	classifier := httpclassifiertest.Start(t, "")
	classifier.Enqueue(httpclassifiertest.Score(0.6))
	cfg := httpConfig(classifier)
	cfg.Providers = []string{"openai", "http"}
	cfg.OpenAI.APIKey, cfg.OpenAI.BaseURL = openaitest.APIKey, ai.BaseURL()
	s := newScreener(t, cfg)

	d := screen(t, s, sd15Image("img-1"))

	if d.Outcome != review || d.Provider != "http" {
		t.Errorf("decision = %v from %s, want REVIEW from http", d.Outcome, d.Provider)
	}
}

func TestCancelledContextReturnsError(t *testing.T) {
	mock := httpclassifiertest.Start(t, "")
	mock.SetHandler(func(providertest.Request) providertest.Response { return providertest.Hang(5 * time.Second) })
	s := newScreener(t, httpConfig(mock))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()

	d, err := s.Screen(ctx, sd15Image("img-1"), nil)

	if !errors.Is(err, context.DeadlineExceeded) || d != nil {
		t.Errorf("Screen = %v, %v; want no decision and the context error", d, err)
	}
}

func TestRekognitionDownloadsThroughFetcher(t *testing.T) {
	jpeg := append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, bytes.Repeat([]byte{5}, 200)...)
	var imageHits atomic.Int32
	images := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		imageHits.Add(1)
		_, _ = w.Write(jpeg)
	}))
	t.Cleanup(images.Close)
	rek := rekognitiontest.Start(t)
	rek.Enqueue(rekognitiontest.Labels("7.0", rekognitiontest.Label{Name: "Explicit", Confidence: 95}))

	cfg := rekognitionConfig(rek)
	roots := images.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	fetcher, err := imagefetch.New(imagefetch.Config{
		AllowedHosts: []string{"127.0.0.1"}, TLSConfig: &tls.Config{RootCAs: roots},
		CheckAddr: func(a netip.Addr) error {
			if a.Unmap().IsLoopback() {
				return nil
			}
			return imagefetch.CheckPublic(a)
		},
	})
	if err != nil {
		t.Fatalf("new fetcher: %v", err)
	}
	s := newScreener(t, cfg, screening.WithFetcher(fetcher))
	img := sd15Image("img-1")
	img.URL = images.URL + "/img.jpg"

	d := screen(t, s, img)

	if d.Outcome != rejected || d.Scores["sexual"] < 0.94 || d.ModelVersion != "7.0" {
		t.Errorf("decision = %v %v %q, want REJECTED on sexual 0.95 from model 7.0",
			d.Outcome, d.Scores, d.ModelVersion)
	}
	body, _ := rekognitiontest.Decode(rek.Requests()[0])
	if !bytes.Equal(body.Image.Bytes, jpeg) || imageHits.Load() != 1 {
		t.Errorf("rekognition got %d bytes after %d downloads, want the %d image bytes after 1",
			len(body.Image.Bytes), imageHits.Load(), len(jpeg))
	}
}

func TestDownloaderRefusesPrivateAddresses(t *testing.T) {
	var imageHits atomic.Int32
	images := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		imageHits.Add(1)
	}))
	t.Cleanup(images.Close)
	rek := rekognitiontest.Start(t)
	cfg := rekognitionConfig(rek)
	cfg.Images.AllowedHosts = []string{"127.0.0.1", "localhost"}
	cfg.FailMode = screening.FailClean
	s := newScreener(t, cfg)

	for _, url := range []string{images.URL + "/a.jpg", strings.Replace(images.URL, "127.0.0.1", "localhost", 1) + "/a.jpg"} {
		img := sd15Image("img-1")
		img.URL = url

		d := screen(t, s, img)

		if d.Outcome != review || !strings.Contains(d.Reason, "blocked address") {
			t.Errorf("%s: decision = %v %q, want REVIEW for a blocked address", url, d.Outcome, d.Reason)
		}
	}
	if imageHits.Load() != 0 || rek.Count() != 0 {
		t.Errorf("image server saw %d and rekognition %d requests, want 0 and 0",
			imageHits.Load(), rek.Count())
	}
}

func rekognitionConfig(rek *rekognitiontest.Server) screening.Config {
	cfg := screening.DefaultConfig()
	cfg.Providers = []string{"rekognition"}
	cfg.AWS.Region = rekognitiontest.Region
	cfg.AWS.AccessKeyID = rekognitiontest.AccessKeyID
	cfg.AWS.SecretAccessKey = rekognitiontest.SecretAccessKey
	cfg.AWS.BaseURL = rek.URL()
	cfg.Retry.InitialBackoff = 5 * time.Millisecond
	cfg.Retry.MaxBackoff = 10 * time.Millisecond
	return cfg
}

func openCache(t *testing.T) *verdictcache.Cache {
	t.Helper()
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	c, err := verdictcache.Open(context.Background(), js, verdictcache.Config{})
	if err != nil {
		t.Fatalf("open cache: %v", err)
	}
	return c
}

type brokenCache struct{}

func (brokenCache) Get(context.Context, string, string) (*verdictcache.Entry, bool, error) {
	return nil, false, errors.New("nats: timeout")
}

func (brokenCache) Put(context.Context, string, string, verdictcache.Entry) error {
	return errors.New("nats: timeout")
}
