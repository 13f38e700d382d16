package vision_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/genrelay/genrelay/services/moderation/internal/provider"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/providertest"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/vision"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/vision/visiontest"
)

const imageURL = "https://cdn.leonardo.ai/users/u/generations/g/image_0.jpg"

func newClient(t *testing.T, mock *visiontest.Server, key string) *vision.Client {
	t.Helper()
	c, err := vision.New(vision.Config{APIKey: key, BaseURL: mock.URL()})
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	return c
}

func TestModerateMapsLikelihoods(t *testing.T) {
	mock := visiontest.Start(t)
	mock.Enqueue(visiontest.SafeSearch(map[string]string{
		"adult": "VERY_LIKELY", "racy": "POSSIBLE", "violence": "UNLIKELY", "medical": "",
	}))

	res, err := newClient(t, mock, visiontest.APIKey).
		Moderate(context.Background(), provider.Image{URL: imageURL})
	if err != nil {
		t.Fatalf("moderate: %v", err)
	}

	want := map[string]float64{
		"sexual": 0.95, "suggestive": 0.5, "violence": 0.25,
		"medical": 0.5, "spoof": 0.05,
	}
	for cat, score := range want {
		if got := res.Scores[cat]; got != score {
			t.Errorf("%s score = %v, want %v", cat, got, score)
		}
	}
	if !containsLabel(res.Labels, "adult:VERY_LIKELY") || !containsLabel(res.Labels, "medical:UNKNOWN") {
		t.Errorf("labels = %v, want raw likelihoods with UNKNOWN for the missing field", res.Labels)
	}
	if got := visiontest.ImageURI(mock.Requests()[0]); got != imageURL {
		t.Errorf("image uri = %q, want %q", got, imageURL)
	}
}

func TestLikelihoodTable(t *testing.T) {
	tests := map[string]float64{
		"VERY_UNLIKELY": 0.05, "UNLIKELY": 0.25, "POSSIBLE": 0.5,
		"LIKELY": 0.75, "VERY_LIKELY": 0.95, "UNKNOWN": 0.5, "SOMETHING_NEW": 0.5,
	}
	for label, want := range tests {
		if got := vision.LikelihoodScore(label); got != want {
			t.Errorf("LikelihoodScore(%s) = %v, want %v", label, got, want)
		}
	}
}

func TestKeyTravelsInHeader(t *testing.T) {
	mock := visiontest.Start(t)

	if _, err := newClient(t, mock, visiontest.APIKey).
		Moderate(context.Background(), provider.Image{URL: imageURL}); err != nil {
		t.Fatalf("moderate: %v", err)
	}

	req := mock.Requests()[0]
	if req.Header.Get("X-Goog-Api-Key") != visiontest.APIKey {
		t.Errorf("X-Goog-Api-Key header missing")
	}
	if strings.Contains(req.Query, visiontest.APIKey) {
		t.Errorf("key leaked into the query string %q", req.Query)
	}
}

func TestModerateErrorKinds(t *testing.T) {
	tests := []struct {
		name     string
		key      string
		response *providertest.Response
		wantKind error
		wantCode string
	}{
		{name: "wrong key", key: "AIza-wrong", wantKind: provider.ErrAuth, wantCode: "INVALID_ARGUMENT"},
		{
			name: "permission denied", response: ptr(visiontest.Status(http.StatusForbidden,
				"PERMISSION_DENIED", "Cloud Vision API has not been used in project 1 before or it is disabled.", "SERVICE_DISABLED")),
			wantKind: provider.ErrAuth, wantCode: "PERMISSION_DENIED",
		},
		{
			name: "quota", response: ptr(visiontest.QuotaExceeded(0)),
			wantKind: provider.ErrRateLimited, wantCode: "RESOURCE_EXHAUSTED",
		},
		{name: "internal", response: ptr(visiontest.Internal()), wantKind: provider.ErrRetryable, wantCode: "INTERNAL"},
		{name: "unavailable", response: ptr(visiontest.Unavailable()), wantKind: provider.ErrRetryable, wantCode: "UNAVAILABLE"},
		{
			name: "invalid argument", response: ptr(visiontest.InvalidArgument("Invalid image URI.")),
			wantKind: provider.ErrInvalidInput, wantCode: "INVALID_ARGUMENT",
		},
		{
			name: "per-image bad data", response: ptr(visiontest.ImageError(3, "Bad image data.")),
			wantKind: provider.ErrInvalidInput, wantCode: "image error 3",
		},
		{
			name: "per-image url not reachable", response: ptr(visiontest.ImageError(4,
				"We can not access the URL currently. Please download the content and pass it in.")),
			wantKind: provider.ErrRetryable, wantCode: "image error 4",
		},
		{
			name: "per-image url not allowed", response: ptr(visiontest.ImageError(7,
				"We're not allowed to access the URL on your behalf. Please download the content and pass it in.")),
			wantKind: provider.ErrInvalidInput, wantCode: "image error 7",
		},
		{
			name: "no annotation", response: ptr(providertest.JSON(http.StatusOK, `{"responses": [{}]}`)),
			wantKind: provider.ErrBadResponse,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mock := visiontest.Start(t)
			if tt.response != nil {
				mock.Enqueue(*tt.response)
			}
			key := visiontest.APIKey
			if tt.key != "" {
				key = tt.key
			}

			_, err := newClient(t, mock, key).
				Moderate(context.Background(), provider.Image{URL: imageURL})

			if !errors.Is(err, tt.wantKind) {
				t.Fatalf("error = %v, want kind %v", err, tt.wantKind)
			}
			var perr *provider.Error
			if !errors.As(err, &perr) {
				t.Fatalf("error %T is not a *provider.Error", err)
			}
			if tt.wantCode != "" && perr.Code != tt.wantCode {
				t.Errorf("code = %q, want %q", perr.Code, tt.wantCode)
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
		{"429 with retry-after then success", []providertest.Response{visiontest.QuotaExceeded(time.Second)}, 2},
		{"two 5xx then success", []providertest.Response{visiontest.Internal(), visiontest.Unavailable()}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mock := visiontest.Start(t)
			mock.Enqueue(tt.responses...)
			mock.Enqueue(visiontest.SafeSearch(map[string]string{"adult": "LIKELY"}))
			guard := provider.NewGuard(newClient(t, mock, visiontest.APIKey), provider.DefaultLimits())

			var res *provider.Result
			err := fastRetry().Do(context.Background(), func(ctx context.Context, _ int) error {
				var err error
				res, err = guard.Moderate(ctx, provider.Image{URL: imageURL})
				return err
			})

			if err != nil {
				t.Fatalf("moderate with retries: %v", err)
			}
			if res.Scores["sexual"] != 0.75 {
				t.Errorf("sexual score = %v, want 0.75", res.Scores["sexual"])
			}
			if got := mock.Count(); got != tt.wantCalls {
				t.Errorf("mock saw %d requests, want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestTimeoutOnHangingVision(t *testing.T) {
	mock := visiontest.Start(t)
	mock.Enqueue(providertest.Hang(5 * time.Second))
	limits := provider.DefaultLimits()
	limits.Timeout = 150 * time.Millisecond
	guard := provider.NewGuard(newClient(t, mock, visiontest.APIKey), limits)

	_, err := guard.Moderate(context.Background(), provider.Image{URL: imageURL})

	if !errors.Is(err, provider.ErrTimeout) {
		t.Fatalf("error = %v, want ErrTimeout", err)
	}
}

func fastRetry() provider.RetryPolicy {
	p := provider.DefaultRetryPolicy()
	p.InitialBackoff = 10 * time.Millisecond
	p.MaxBackoff = 20 * time.Millisecond
	return p
}

func containsLabel(labels []string, want string) bool {
	for _, l := range labels {
		if l == want {
			return true
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }
