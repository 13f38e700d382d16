package httpclassifier_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/genrelay/genrelay/services/moderation/internal/provider"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/httpclassifier"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/httpclassifier/httpclassifiertest"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/providertest"
)

const (
	imageURL = "https://cdn.leonardo.ai/users/u/generations/g/image_0.jpg"
	token    = "classifier-token-42"
)

func newClient(t *testing.T, mock *httpclassifiertest.Server, tok string) *httpclassifier.Client {
	t.Helper()
	c, err := httpclassifier.New(httpclassifier.Config{
		URL: mock.Endpoint(), ScoreField: httpclassifiertest.ScoreField,
		Category: "sexual", Token: tok,
	})
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	return c
}

func TestModerateReadsScoreField(t *testing.T) {
	mock := httpclassifiertest.Start(t, token)
	mock.Enqueue(httpclassifiertest.Score(0.87))

	res, err := newClient(t, mock, token).
		Moderate(context.Background(), provider.Image{URL: imageURL})
	if err != nil {
		t.Fatalf("moderate: %v", err)
	}

	if got := res.Scores["sexual"]; got != 0.87 {
		t.Errorf("sexual score = %v, want 0.87", got)
	}
	if len(res.Scores) != 1 {
		t.Errorf("scores = %v, want only the configured category", res.Scores)
	}
	if got := httpclassifiertest.ImageURL(mock.Requests()[0]); got != imageURL {
		t.Errorf("posted url = %q, want %q", got, imageURL)
	}
}

func TestModerateErrorKinds(t *testing.T) {
	tests := []struct {
		name      string
		token     string
		response  *providertest.Response
		wantKind  error
		wantRetry time.Duration
	}{
		{name: "wrong token", token: "nope", wantKind: provider.ErrAuth},
		{
			name: "rate limited", response: ptr(httpclassifiertest.RateLimited(2 * time.Second)),
			wantKind: provider.ErrRateLimited, wantRetry: 2 * time.Second,
		},
		{name: "server error", response: ptr(httpclassifiertest.ServerError()), wantKind: provider.ErrRetryable},
		{name: "unavailable", response: ptr(httpclassifiertest.Unavailable()), wantKind: provider.ErrRetryable},
		{
			name:     "invalid input",
			response: ptr(httpclassifiertest.Error(http.StatusBadRequest, "cannot decode image")),
			wantKind: provider.ErrInvalidInput,
		},
		{
			name:     "missing score field",
			response: ptr(providertest.JSON(http.StatusOK, `{"scores": {"sfw": 0.2}}`)),
			wantKind: provider.ErrBadResponse,
		},
		{
			name:     "score out of range",
			response: ptr(providertest.JSON(http.StatusOK, `{"scores": {"nsfw": 97}}`)),
			wantKind: provider.ErrBadResponse,
		},
		{
			name:     "score not a number",
			response: ptr(providertest.JSON(http.StatusOK, `{"scores": {"nsfw": "high"}}`)),
			wantKind: provider.ErrBadResponse,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mock := httpclassifiertest.Start(t, token)
			if tt.response != nil {
				mock.Enqueue(*tt.response)
			}
			tok := token
			if tt.token != "" {
				tok = tt.token
			}

			_, err := newClient(t, mock, tok).
				Moderate(context.Background(), provider.Image{URL: imageURL})

			if !errors.Is(err, tt.wantKind) {
				t.Fatalf("error = %v, want kind %v", err, tt.wantKind)
			}
			var perr *provider.Error
			if !errors.As(err, &perr) {
				t.Fatalf("error %T is not a *provider.Error", err)
			}
			if perr.RetryAfter != tt.wantRetry {
				t.Errorf("retry after = %s, want %s", perr.RetryAfter, tt.wantRetry)
			}
		})
	}
}

func TestRetriesThroughGuard(t *testing.T) {
	tests := []struct {
		name      string
		responses []providertest.Response
		wantCalls int
	}{
		{"rate limit then success", []providertest.Response{httpclassifiertest.RateLimited(0)}, 2},
		{"two 5xx then success", []providertest.Response{
			httpclassifiertest.ServerError(), httpclassifiertest.Unavailable()}, 3},
		{"three 5xx exhaust attempts", []providertest.Response{
			httpclassifiertest.ServerError(), httpclassifiertest.ServerError(),
			httpclassifiertest.ServerError()}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mock := httpclassifiertest.Start(t, token)
			mock.Enqueue(tt.responses...)
			mock.Enqueue(httpclassifiertest.Score(0.2))
			guard := provider.NewGuard(newClient(t, mock, token), provider.DefaultLimits())

			err := fastRetry().Do(context.Background(), func(ctx context.Context, _ int) error {
				_, err := guard.Moderate(ctx, provider.Image{URL: imageURL})
				return err
			})

			exhausted := len(tt.responses) >= fastRetry().Attempts
			if exhausted && !errors.Is(err, provider.ErrRetryable) {
				t.Errorf("error = %v, want the last retryable error", err)
			}
			if !exhausted && err != nil {
				t.Errorf("moderate with retries: %v", err)
			}
			if got := mock.Count(); got != tt.wantCalls {
				t.Errorf("mock saw %d requests, want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestNoRetryOnAuthError(t *testing.T) {
	mock := httpclassifiertest.Start(t, token)
	guard := provider.NewGuard(newClient(t, mock, "wrong"), provider.DefaultLimits())

	err := fastRetry().Do(context.Background(), func(ctx context.Context, _ int) error {
		_, err := guard.Moderate(ctx, provider.Image{URL: imageURL})
		return err
	})

	if !errors.Is(err, provider.ErrAuth) {
		t.Fatalf("error = %v, want ErrAuth", err)
	}
	if got := mock.Count(); got != 1 {
		t.Errorf("mock saw %d requests, want 1 (no retry)", got)
	}
}

func TestTimeoutOnHangingClassifier(t *testing.T) {
	mock := httpclassifiertest.Start(t, token)
	mock.Enqueue(providertest.Hang(5 * time.Second))
	limits := provider.DefaultLimits()
	limits.Timeout = 150 * time.Millisecond
	guard := provider.NewGuard(newClient(t, mock, token), limits)

	start := time.Now()
	_, err := guard.Moderate(context.Background(), provider.Image{URL: imageURL})

	if !errors.Is(err, provider.ErrTimeout) {
		t.Fatalf("error = %v, want ErrTimeout", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("call took %s, want about the 150ms timeout", elapsed)
	}
}

func fastRetry() provider.RetryPolicy {
	p := provider.DefaultRetryPolicy()
	p.InitialBackoff = 10 * time.Millisecond
	p.MaxBackoff = 20 * time.Millisecond
	return p
}

func ptr[T any](v T) *T { return &v }
