package rekognition_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/genrelay/genrelay/services/moderation/internal/provider"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/providertest"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/rekognition"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/rekognition/rekognitiontest"
)

var jpeg = append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, bytes.Repeat([]byte{7}, 64)...)

type credentials struct{ keyID, secret, region string }

var goodCreds = credentials{
	rekognitiontest.AccessKeyID, rekognitiontest.SecretAccessKey, rekognitiontest.Region,
}

func newClient(t *testing.T, mock *rekognitiontest.Server, c credentials) *rekognition.Client {
	t.Helper()
	client, err := rekognition.New(rekognition.Config{
		Region: c.region, AccessKeyID: c.keyID, SecretAccessKey: c.secret,
		BaseURL: mock.URL(),
	})
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	return client
}

func image(b []byte) provider.Image {
	return provider.Image{ID: "img-1", URL: "https://cdn.leonardo.ai/a.jpg", Bytes: b, MIMEType: "image/jpeg"}
}

func TestModerateMapsLabelsToCategories(t *testing.T) {
	mock := rekognitiontest.Start(t)
	mock.Enqueue(rekognitiontest.Labels("7.0",
		rekognitiontest.Label{Name: "Explicit", Confidence: 91.5},
		rekognitiontest.Label{Name: "Explicit Nudity", Parent: "Explicit", Confidence: 97.25},
		rekognitiontest.Label{Name: "Exposed Female Nipple", Parent: "Explicit Nudity", Confidence: 88, Level: 3},
		rekognitiontest.Label{Name: "Swimwear or Underwear", Confidence: 55},
		rekognitiontest.Label{Name: "Visually Disturbing", Confidence: 40},
		rekognitiontest.Label{Name: "Brand New Category", Confidence: 61},
	))

	res, err := newClient(t, mock, goodCreds).Moderate(context.Background(), image(jpeg))
	if err != nil {
		t.Fatalf("moderate: %v", err)
	}

	want := map[string]float64{
		"sexual": 0.9725, "suggestive": 0.55, "violence/graphic": 0.40, "brand-new-category": 0.61,
	}
	for cat, score := range want {
		if got := res.Scores[cat]; got < score-1e-4 || got > score+1e-4 {
			t.Errorf("%s score = %v, want %v", cat, got, score)
		}
	}
	if len(res.Scores) != len(want) {
		t.Errorf("scores = %v, want exactly %v", res.Scores, want)
	}
	if res.ModelVersion != "7.0" {
		t.Errorf("model version = %q, want 7.0", res.ModelVersion)
	}
	if len(res.Labels) != 6 || !slices.Contains(res.Labels, "Explicit/Explicit Nudity:97.2") {
		t.Errorf("labels = %v", res.Labels)
	}
}

func TestModerateSendsSignedBytes(t *testing.T) {
	mock := rekognitiontest.Start(t)

	if _, err := newClient(t, mock, goodCreds).Moderate(context.Background(), image(jpeg)); err != nil {
		t.Fatalf("moderate: %v", err)
	}

	req := mock.Requests()[0]
	if !rekognitiontest.HasAuthorization(req) {
		t.Errorf("request has no SigV4 Authorization header")
	}
	body, err := rekognitiontest.Decode(req)
	if err != nil {
		t.Fatalf("decode request: %v", err)
	}
	if !bytes.Equal(body.Image.Bytes, jpeg) {
		t.Errorf("sent %d bytes, want the %d image bytes", len(body.Image.Bytes), len(jpeg))
	}
	if body.MinConfidence == nil || *body.MinConfidence != rekognition.DefaultMinConfidence {
		t.Errorf("MinConfidence = %v, want %d", body.MinConfidence, rekognition.DefaultMinConfidence)
	}
}

func TestModerateErrorKinds(t *testing.T) {
	tests := []struct {
		name     string
		creds    credentials
		image    []byte
		response *providertest.Response
		wantKind error
		wantCode string
	}{
		{
			name: "unknown access key", creds: credentials{"AKIAWRONG", "x", rekognitiontest.Region},
			wantKind: provider.ErrAuth, wantCode: "UnrecognizedClientException",
		},
		{
			name:     "wrong secret",
			creds:    credentials{rekognitiontest.AccessKeyID, "wrong-secret", rekognitiontest.Region},
			wantKind: provider.ErrAuth, wantCode: "InvalidSignatureException",
		},
		{
			name: "access denied", response: ptr(rekognitiontest.AccessDenied()),
			wantKind: provider.ErrAuth, wantCode: "AccessDeniedException",
		},
		{
			name: "throttling", response: ptr(rekognitiontest.Throttling()),
			wantKind: provider.ErrRateLimited, wantCode: "ThrottlingException",
		},
		{
			name: "service throttling 500", response: ptr(rekognitiontest.ServiceThrottling()),
			wantKind: provider.ErrRateLimited, wantCode: "ThrottlingException",
		},
		{
			name: "provisioned throughput", response: ptr(rekognitiontest.ProvisionedThroughputExceeded()),
			wantKind: provider.ErrRateLimited, wantCode: "ProvisionedThroughputExceededException",
		},
		{
			name: "internal error", response: ptr(rekognitiontest.InternalServerError()),
			wantKind: provider.ErrRetryable, wantCode: "InternalServerError",
		},
		{
			name: "not jpeg or png", image: []byte("GIF89a-not-supported"),
			wantKind: provider.ErrInvalidInput, wantCode: "InvalidImageFormatException",
		},
		{
			name: "too large", image: append(append([]byte{}, jpeg...), make([]byte, 5<<20)...),
			wantKind: provider.ErrInvalidInput, wantCode: "ImageTooLargeException",
		},
		{name: "no bytes", image: []byte{}, wantKind: provider.ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mock := rekognitiontest.Start(t)
			if tt.response != nil {
				mock.Enqueue(*tt.response)
			}
			creds := goodCreds
			if tt.creds.keyID != "" {
				creds = tt.creds
			}
			img := jpeg
			if tt.image != nil {
				img = tt.image
			}

			_, err := newClient(t, mock, creds).Moderate(context.Background(), image(img))

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
		{"throttled then success", []providertest.Response{rekognitiontest.Throttling()}, 2},
		{"two 5xx then success", []providertest.Response{
			rekognitiontest.InternalServerError(), rekognitiontest.ServiceThrottling()}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mock := rekognitiontest.Start(t)
			mock.Enqueue(tt.responses...)
			mock.Enqueue(rekognitiontest.Labels("7.0", rekognitiontest.Label{Name: "Violence", Confidence: 66}))
			guard := provider.NewGuard(newClient(t, mock, goodCreds), provider.DefaultLimits())

			var res *provider.Result
			err := fastRetry().Do(context.Background(), func(ctx context.Context, _ int) error {
				var err error
				res, err = guard.Moderate(ctx, image(jpeg))
				return err
			})

			if err != nil {
				t.Fatalf("moderate with retries: %v", err)
			}
			if got := res.Scores["violence"]; got < 0.659 || got > 0.661 {
				t.Errorf("violence score = %v, want 0.66", got)
			}
			if got := mock.Count(); got != tt.wantCalls {
				t.Errorf("mock saw %d requests, want %d", got, tt.wantCalls)
			}
		})
	}
}

func TestTimeoutOnHangingRekognition(t *testing.T) {
	mock := rekognitiontest.Start(t)
	mock.Enqueue(providertest.Hang(5 * time.Second))
	limits := provider.DefaultLimits()
	limits.Timeout = 150 * time.Millisecond
	guard := provider.NewGuard(newClient(t, mock, goodCreds), limits)

	_, err := guard.Moderate(context.Background(), image(jpeg))

	if !errors.Is(err, provider.ErrTimeout) {
		t.Fatalf("error = %v, want ErrTimeout", err)
	}
}

func TestCategoryTable(t *testing.T) {
	tests := map[string]string{
		"Explicit": "sexual", "Explicit Nudity": "sexual",
		"Non-Explicit Nudity of Intimate parts and Kissing": "suggestive",
		"Suggestive": "suggestive", "Violence": "violence",
		"Visually Disturbing": "violence/graphic", "Drugs & Tobacco": "drugs",
		"Hate Symbols": "hate", "Rude Gestures": "rude-gestures", "Some New Label": "some-new-label",
	}
	for label, want := range tests {
		if got := rekognition.Category(label); got != want {
			t.Errorf("Category(%q) = %q, want %q", label, got, want)
		}
	}
}

func fastRetry() provider.RetryPolicy {
	p := provider.DefaultRetryPolicy()
	p.InitialBackoff = 10 * time.Millisecond
	p.MaxBackoff = 20 * time.Millisecond
	return p
}

func ptr[T any](v T) *T { return &v }
