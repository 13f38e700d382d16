package openai_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/genrelay/genrelay/services/moderation/internal/provider"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/openai"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/openai/openaitest"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/providertest"
)

const imageURL = "https://cdn.leonardo.ai/users/u/generations/g/image_0.jpg"

func newClient(t *testing.T, mock *openaitest.Server, key string) *openai.Client {
	t.Helper()
	c, err := openai.New(openai.Config{APIKey: key, BaseURL: mock.BaseURL()})
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	return c
}

func TestModerateMapsImageScores(t *testing.T) {
	mock := openaitest.Start(t)
	mock.Enqueue(openaitest.Scores("omni-moderation-2024-09-26", map[string]float64{
		"sexual": 0.91, "violence": 0.02, "hate": 0.7,
	}))

	res, err := newClient(t, mock, openaitest.APIKey).
		Moderate(context.Background(), provider.Image{ID: "img-1", URL: imageURL})
	if err != nil {
		t.Fatalf("moderate: %v", err)
	}

	if got := res.Scores["sexual"]; got != 0.91 {
		t.Errorf("sexual score = %v, want 0.91", got)
	}
	if got := res.Scores["violence"]; got != 0.02 {
		t.Errorf("violence score = %v, want 0.02", got)
	}
	if _, ok := res.Scores["hate"]; ok {
		t.Errorf("hate applies to text only and must be dropped, got %v", res.Scores)
	}
	if res.ModelVersion != "omni-moderation-2024-09-26" {
		t.Errorf("model version = %q", res.ModelVersion)
	}
	if len(res.Labels) != 2 || res.Labels[0] != "hate:flagged" || res.Labels[1] != "sexual:flagged" {
		t.Errorf("labels = %v, want the flagged categories", res.Labels)
	}
}

func TestModerateSendsImageURLRequest(t *testing.T) {
	mock := openaitest.Start(t)

	_, err := newClient(t, mock, openaitest.APIKey).
		Moderate(context.Background(), provider.Image{ID: "img-1", URL: imageURL})
	if err != nil {
		t.Fatalf("moderate: %v", err)
	}

	reqs := mock.Requests()
	if len(reqs) != 1 {
		t.Fatalf("mock saw %d requests, want 1", len(reqs))
	}
	in, err := openaitest.Decode(reqs[0])
	if err != nil {
		t.Fatalf("decode request: %v", err)
	}
	if in.Model != "omni-moderation-latest" {
		t.Errorf("model = %q, want omni-moderation-latest", in.Model)
	}
	if urls := openaitest.ImageURLs(reqs[0]); len(urls) != 1 || urls[0] != imageURL {
		t.Errorf("image urls = %v, want [%s]", urls, imageURL)
	}
}

func TestModerateErrorKinds(t *testing.T) {
	tests := []struct {
		name       string
		key        string
		response   *providertest.Response
		wantKind   error
		wantStatus int
		wantCode   string
		wantRetry  time.Duration
	}{
		{
			name: "wrong key", key: "sk-wrong",
			wantKind: provider.ErrAuth, wantStatus: 401, wantCode: "invalid_api_key",
		},
		{
			name: "rate limited", response: ptr(openaitest.RateLimited(3 * time.Second)),
			wantKind: provider.ErrRateLimited, wantStatus: 429,
			wantCode: "rate_limit_exceeded", wantRetry: 3 * time.Second,
		},
		{
			name: "server error", response: ptr(openaitest.ServerError()),
			wantKind: provider.ErrRetryable, wantStatus: 500, wantCode: "server_error",
		},
		{
			name: "overloaded", response: ptr(openaitest.Overloaded()),
			wantKind: provider.ErrRetryable, wantStatus: 503, wantCode: "server_error",
		},
		{
			name: "image not downloadable", response: ptr(openaitest.ImageDownloadFailed(imageURL)),
			wantKind: provider.ErrInvalidInput, wantStatus: 400, wantCode: "invalid_value",
		},
		{
			name: "malformed body", response: ptr(providertest.JSON(http.StatusOK, `{"results": 7}`)),
			wantKind: provider.ErrBadResponse,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mock := openaitest.Start(t)
			if tt.response != nil {
				mock.Enqueue(*tt.response)
			}
			key := openaitest.APIKey
			if tt.key != "" {
				key = tt.key
			}

			_, err := newClient(t, mock, key).
				Moderate(context.Background(), provider.Image{URL: imageURL})

			assertError(t, err, tt.wantKind, tt.wantStatus, tt.wantCode)
			var perr *provider.Error
			if errors.As(err, &perr) && perr.RetryAfter != tt.wantRetry {
				t.Errorf("retry after = %s, want %s", perr.RetryAfter, tt.wantRetry)
			}
		})
	}
}

func TestAuthErrorHidesKey(t *testing.T) {
	mock := openaitest.Start(t)

	_, err := newClient(t, mock, "sk-wrong-secret-value").
		Moderate(context.Background(), provider.Image{URL: imageURL})

	if err == nil {
		t.Fatal("expected an error")
	}
	for _, s := range []string{"sk-wrong-secret-value", "sk-wron"} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error %q contains key material %q", err, s)
		}
	}
}

func TestRetriesThroughGuard(t *testing.T) {
	tests := []struct {
		name      string
		responses []providertest.Response
		wantCalls int
	}{
		{
			name:      "rate limit then success",
			responses: []providertest.Response{openaitest.RateLimited(time.Second)},
			wantCalls: 2,
		},
		{
			name:      "two server errors then success",
			responses: []providertest.Response{openaitest.ServerError(), openaitest.Overloaded()},
			wantCalls: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mock := openaitest.Start(t)
			mock.Enqueue(tt.responses...)
			mock.Enqueue(openaitest.Scores("omni-moderation-latest", map[string]float64{"sexual": 0.3}))
			guard := provider.NewGuard(newClient(t, mock, openaitest.APIKey), provider.DefaultLimits())

			var res *provider.Result
			start := time.Now()
			err := fastRetry().Do(context.Background(), func(ctx context.Context, _ int) error {
				var err error
				res, err = guard.Moderate(ctx, provider.Image{URL: imageURL})
				return err
			})

			if err != nil {
				t.Fatalf("moderate with retries: %v", err)
			}
			if res.Scores["sexual"] != 0.3 {
				t.Errorf("sexual score = %v, want 0.3", res.Scores["sexual"])
			}
			if got := mock.Count(); got != tt.wantCalls {
				t.Errorf("mock saw %d requests, want %d", got, tt.wantCalls)
			}
			if tt.name == "rate limit then success" && time.Since(start) < time.Second {
				t.Errorf("retried after %s, before the 1s Retry-After", time.Since(start))
			}
		})
	}
}

func TestTimeoutOnHangingProvider(t *testing.T) {
	mock := openaitest.Start(t)
	mock.Enqueue(providertest.Hang(5 * time.Second))
	limits := provider.DefaultLimits()
	limits.Timeout = 200 * time.Millisecond
	guard := provider.NewGuard(newClient(t, mock, openaitest.APIKey), limits)

	start := time.Now()
	_, err := guard.Moderate(context.Background(), provider.Image{URL: imageURL})

	if !errors.Is(err, provider.ErrTimeout) {
		t.Fatalf("error = %v, want ErrTimeout", err)
	}
	if !provider.Retryable(err) {
		t.Errorf("a timeout must be retryable: %v", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("call took %s, want about the 200ms timeout", elapsed)
	}
}

func fastRetry() provider.RetryPolicy {
	p := provider.DefaultRetryPolicy()
	p.InitialBackoff = 10 * time.Millisecond
	p.MaxBackoff = 20 * time.Millisecond
	return p
}

func assertError(t *testing.T, err, kind error, status int, code string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error = %v, want kind %v", err, kind)
	}
	var perr *provider.Error
	if !errors.As(err, &perr) {
		t.Fatalf("error %T is not a *provider.Error", err)
	}
	if status != 0 && perr.StatusCode != status {
		t.Errorf("status = %d, want %d", perr.StatusCode, status)
	}
	if code != "" && perr.Code != code {
		t.Errorf("code = %q, want %q", perr.Code, code)
	}
	if perr.Provider != openai.Name {
		t.Errorf("provider = %q, want %q", perr.Provider, openai.Name)
	}
}

func ptr[T any](v T) *T { return &v }
