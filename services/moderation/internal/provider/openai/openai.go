// Package openai sends an image URL to OpenAI's moderation endpoint
// (POST /v1/moderations) through the official Go SDK (openai-go v3). The
// SDK's own retries are disabled so that provider.RetryPolicy decides, and
// the client reads no environment variables: everything comes from Config.
package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"

	sdk "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/genrelay/genrelay/services/moderation/internal/provider"
)

// Name is the provider's configuration name.
const Name = "openai"

// Defaults.
const (
	DefaultBaseURL = "https://api.openai.com/v1"
	DefaultModel   = sdk.ModerationModelOmniModerationLatest
)

// Config configures the client.
type Config struct {
	// APIKey is sent as a bearer token. Required.
	APIKey string
	// BaseURL is the API root including /v1. Default DefaultBaseURL.
	BaseURL string
	// Model is the moderation model. Default omni-moderation-latest, the
	// only family that accepts image input.
	Model string
	// HTTPClient sends the requests. Default http.DefaultClient.
	HTTPClient *http.Client
}

// Client is a provider.Provider backed by OpenAI moderation.
type Client struct {
	svc   sdk.ModerationService
	model string
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("openai: missing API key")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if cfg.Model == "" {
		cfg.Model = DefaultModel
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}

	svc := sdk.NewModerationService(
		option.WithBaseURL(cfg.BaseURL),
		option.WithAPIKey(cfg.APIKey),
		option.WithHTTPClient(cfg.HTTPClient),
		option.WithMaxRetries(0),
	)
	return &Client{svc: svc, model: cfg.Model}, nil
}

// Name returns "openai".
func (c *Client) Name() string { return Name }

// NeedsBytes returns false: OpenAI downloads the image from its URL.
func (c *Client) NeedsBytes() bool { return false }

// Moderate sends img.URL as an image_url input and returns the scores of
// the categories that apply to images.
func (c *Client) Moderate(ctx context.Context, img provider.Image) (*provider.Result, error) {
	part := sdk.ModerationMultiModalInputParamOfImageURL(
		sdk.ModerationImageURLInputImageURLParam{URL: img.URL})
	resp, err := c.svc.New(ctx, sdk.ModerationNewParams{
		Model: c.model,
		Input: sdk.ModerationNewParamsInputUnion{
			OfModerationMultiModalArray: []sdk.ModerationMultiModalInputUnionParam{part},
		},
	})
	if err != nil {
		return nil, translate(err)
	}
	return result(resp)
}

// translate maps the SDK's errors onto provider error kinds using the
// status and the error object's type and code.
func translate(err error) error {
	var apiErr *sdk.Error
	if !errors.As(err, &apiErr) {
		return provider.TransportError(Name, err)
	}

	kind := provider.KindForStatus(apiErr.StatusCode)
	code := apiErr.Code
	if code == "" {
		code = apiErr.Type
	}
	return provider.NewError(Name, kind, apiErr.Response, code, apiErr.Message)
}

func result(resp *sdk.ModerationNewResponse) (*provider.Result, error) {
	if len(resp.Results) != 1 {
		return nil, provider.Errorf(Name, http.StatusOK,
			"expected 1 result, got %d", len(resp.Results))
	}
	m := resp.Results[0]

	scores, err := imageScores(m)
	if err != nil {
		return nil, provider.Errorf(Name, http.StatusOK, "read scores: %w", err)
	}
	return &provider.Result{
		Scores: scores, Labels: flaggedLabels(m), ModelVersion: resp.Model,
	}, nil
}

// imageScores returns the scores of the categories whose applied input
// types include "image". The other categories apply to text only, so
// their scores carry no information about an image. When the response lacks
// category_applied_input_types, every score is kept.
func imageScores(m sdk.Moderation) (map[string]float64, error) {
	var all map[string]float64
	if err := json.Unmarshal([]byte(m.CategoryScores.RawJSON()), &all); err != nil {
		return nil, err
	}

	var applied map[string][]string
	raw := m.CategoryAppliedInputTypes.RawJSON()
	if raw == "" || json.Unmarshal([]byte(raw), &applied) != nil || len(applied) == 0 {
		return all, nil
	}

	scores := make(map[string]float64)
	for cat, score := range all {
		if slices.Contains(applied[cat], "image") {
			scores[cat] = score
		}
	}
	return scores, nil
}

func flaggedLabels(m sdk.Moderation) []string {
	var flags map[string]bool
	if json.Unmarshal([]byte(m.Categories.RawJSON()), &flags) != nil {
		return nil
	}

	var labels []string
	for cat, on := range flags {
		if on {
			labels = append(labels, fmt.Sprintf("%s:flagged", cat))
		}
	}
	sort.Strings(labels)
	return labels
}
