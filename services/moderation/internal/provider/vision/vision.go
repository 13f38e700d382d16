// Package vision sends an image URL to Google Cloud Vision's SafeSearch
// detection: POST {base}/v1/images:annotate with one request and the
// SAFE_SEARCH_DETECTION feature.
//
// It uses plain net/http against the documented REST API rather than the
// official Go client (cloud.google.com/go/vision), which is built on gRPC
// and pulls in the gRPC stack and Google's auth libraries for one call.
// The API key travels in the X-Goog-Api-Key header, which Google APIs
// accept in place of the key query parameter, so it never appears in a
// URL that a proxy or an error message could log.
package vision

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/genrelay/genrelay/services/moderation/internal/provider"
)

// Name is the provider's configuration name.
const Name = "vision"

// DefaultBaseURL is the public endpoint.
const DefaultBaseURL = "https://vision.googleapis.com"

const maxResponseBytes = 1 << 20

// Likelihood scores. Vision returns likelihood labels rather than
// numbers, so each label maps to the middle of the band it names:
//
//	VERY_UNLIKELY 0.05   UNLIKELY 0.25   POSSIBLE 0.5
//	LIKELY        0.75   VERY_LIKELY 0.95
//
// UNKNOWN maps to 0.5, as if POSSIBLE: Vision could not decide, and a
// category it could not decide must not pass as clean under the default
// thresholds. A label not in this table is treated the same way.
var likelihoodScores = map[string]float64{
	"UNKNOWN":       0.5,
	"VERY_UNLIKELY": 0.05,
	"UNLIKELY":      0.25,
	"POSSIBLE":      0.5,
	"LIKELY":        0.75,
	"VERY_LIKELY":   0.95,
}

// safeSearchCategories maps SafeSearchAnnotation fields to categories.
var safeSearchCategories = map[string]string{
	"adult":    provider.CategorySexual,
	"racy":     provider.CategorySuggestive,
	"violence": provider.CategoryViolence,
	"medical":  provider.CategoryMedical,
	"spoof":    provider.CategorySpoof,
}

// LikelihoodScore returns the score for a likelihood label.
func LikelihoodScore(label string) float64 {
	if s, ok := likelihoodScores[label]; ok {
		return s
	}
	return likelihoodScores["UNKNOWN"]
}

// Config configures the client.
type Config struct {
	// APIKey is sent in the X-Goog-Api-Key header. Required.
	APIKey string
	// BaseURL is the API root without /v1. Default DefaultBaseURL.
	BaseURL string
	// HTTPClient sends the requests. Default http.DefaultClient.
	HTTPClient *http.Client
}

// Client is a provider.Provider backed by Cloud Vision SafeSearch.
type Client struct {
	cfg      Config
	endpoint string
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("vision: missing API key")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	endpoint := strings.TrimSuffix(cfg.BaseURL, "/") + "/v1/images:annotate"
	return &Client{cfg: cfg, endpoint: endpoint}, nil
}

// Name returns "vision".
func (c *Client) Name() string { return Name }

// NeedsBytes returns false: Vision downloads the image from its URL.
func (c *Client) NeedsBytes() bool { return false }

// Moderate annotates img.URL with SafeSearch and maps the likelihoods to
// scores with the table on likelihoodScores.
func (c *Client) Moderate(ctx context.Context, img provider.Image) (*provider.Result, error) {
	req, err := c.newRequest(ctx, img.URL)
	if err != nil {
		return nil, err
	}

	resp, body, err := provider.Send(c.cfg.HTTPClient, req, Name, maxResponseBytes)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(resp, body)
	}
	return parseAnnotation(body)
}

type annotateRequest struct {
	Requests []imageRequest `json:"requests"`
}

type imageRequest struct {
	Image struct {
		Source struct {
			ImageURI string `json:"imageUri"`
		} `json:"source"`
	} `json:"image"`
	Features []feature `json:"features"`
}

type feature struct {
	Type string `json:"type"`
}

func (c *Client) newRequest(ctx context.Context, imageURL string) (*http.Request, error) {
	var one imageRequest
	one.Image.Source.ImageURI = imageURL
	one.Features = []feature{{Type: "SAFE_SEARCH_DETECTION"}}
	body, err := json.Marshal(annotateRequest{Requests: []imageRequest{one}})
	if err != nil {
		return nil, fmt.Errorf("encode vision request: %w", err)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build vision request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Goog-Api-Key", c.cfg.APIKey)
	return req, nil
}
