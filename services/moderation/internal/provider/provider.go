// Package provider is the contract between genrelay's screening policy and
// the third-party image moderation services it calls. It defines the
// Provider interface, the Image and Result types, and the typed errors
// every implementation returns. Guard and RetryPolicy bound and retry
// the calls.
//
// Implementations live in subpackages (openai, rekognition, vision,
// httpclassifier). Each has a mock server in a ...test subpackage next to
// it, which reproduces the real service's request checks and responses.
package provider

import "context"

// Provider classifies one image. Implementations are safe for concurrent
// use. Moderate blocks for one HTTP round trip and honours ctx; it does not
// retry, because Guard and RetryPolicy own timeouts, retries and the
// circuit breaker. Every failure is an *Error whose Kind is one of the
// sentinels in errors.go.
type Provider interface {
	// Name is the provider's configuration name, for example "openai".
	// It appears in decisions and cache keys.
	Name() string
	// NeedsBytes reports whether Moderate reads Image.Bytes. When false,
	// the provider fetches Image.URL itself.
	NeedsBytes() bool
	// Moderate returns the provider's scores for img.
	Moderate(ctx context.Context, img Image) (*Result, error)
}

// Image is the input of one moderation call.
type Image struct {
	// ID is the generator's image id, used for cache keys and errors.
	ID string
	// URL is the image's download location. Only https URLs on the
	// configured allowlist reach a provider.
	URL string
	// Bytes is the downloaded image, set by the caller only for providers
	// whose NeedsBytes returns true.
	Bytes []byte
	// MIMEType is "image/jpeg" or "image/png" when Bytes is set, as
	// sniffed from the magic bytes.
	MIMEType string
}

// Result is one provider's classification of one image.
type Result struct {
	// Scores maps a category (see the Category constants) to a score from
	// 0 (certainly absent) to 1 (certainly present). A category the
	// provider did not report is absent from the map.
	Scores map[string]float64 `json:"scores"`
	// Labels are the provider's own labels as returned, for audit, for
	// example "Explicit Nudity:97.3" or "adult:VERY_LIKELY".
	Labels []string `json:"labels,omitempty"`
	// ModelVersion is the model that produced the scores, when the
	// provider reports one.
	ModelVersion string `json:"model_version,omitempty"`
}

// Categories shared by all providers. OpenAI's moderation categories are
// the reference names; the other providers map their labels onto them, and
// add the categories that OpenAI lacks. A label that maps to none of these
// keeps its own name in lower case with spaces replaced by hyphens.
const (
	CategorySexual          = "sexual"
	CategorySexualMinors    = "sexual/minors"
	CategorySuggestive      = "suggestive"
	CategoryViolence        = "violence"
	CategoryViolenceGraphic = "violence/graphic"
	CategorySelfHarm        = "self-harm"
	CategoryHate            = "hate"
	CategoryHarassment      = "harassment"
	CategoryIllicit         = "illicit"
	CategoryDrugs           = "drugs"
	CategoryAlcohol         = "alcohol"
	CategoryGambling        = "gambling"
	CategoryRudeGestures    = "rude-gestures"
	CategoryMedical         = "medical"
	CategorySpoof           = "spoof"
)
