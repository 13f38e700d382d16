// Package httpclassifier calls a self-hosted image classifier over HTTP:
// it POSTs the image URL as JSON, {"url": "..."} by default, and reads one
// score from the JSON response at a dotted path such as "scores.nsfw".
package httpclassifier

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
const Name = "http"

// maxResponseBytes bounds the classifier's response body.
const maxResponseBytes = 1 << 20

// Config configures the client.
type Config struct {
	// URL is the classifier endpoint. Required.
	URL string
	// URLField is the request body field that holds the image URL.
	// Default "url".
	URLField string
	// ScoreField is the dotted path of the score in the response, for
	// example "scores.nsfw". The value must be a number from 0 to 1.
	// Required.
	ScoreField string
	// Category is the category the score is reported under. Default
	// "sexual".
	Category string
	// Token, when set, is sent as "Authorization: Bearer <Token>".
	Token string
	// HTTPClient sends the requests. Default http.DefaultClient.
	HTTPClient *http.Client
}

// Client is a provider.Provider backed by a self-hosted classifier.
type Client struct {
	cfg  Config
	path []string
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	if cfg.URL == "" {
		return nil, errors.New("http classifier: missing URL")
	}
	if cfg.ScoreField == "" || strings.Contains(cfg.ScoreField, "..") {
		return nil, fmt.Errorf("http classifier: invalid score field %q", cfg.ScoreField)
	}
	if cfg.URLField == "" {
		cfg.URLField = "url"
	}
	if cfg.Category == "" {
		cfg.Category = provider.CategorySexual
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	return &Client{cfg: cfg, path: strings.Split(cfg.ScoreField, ".")}, nil
}

// Name returns "http".
func (c *Client) Name() string { return Name }

// NeedsBytes returns false: the classifier downloads the image itself.
func (c *Client) NeedsBytes() bool { return false }

// Moderate posts img.URL and returns the configured score.
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
		return nil, provider.NewError(Name, provider.KindForStatus(resp.StatusCode),
			resp, http.StatusText(resp.StatusCode), errorMessage(body))
	}
	return c.result(body)
}

func (c *Client) newRequest(ctx context.Context, imageURL string) (*http.Request, error) {
	body, err := json.Marshal(map[string]string{c.cfg.URLField: imageURL})
	if err != nil {
		return nil, fmt.Errorf("encode classifier request: %w", err)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build classifier request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if c.cfg.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.cfg.Token)
	}
	return req, nil
}

func (c *Client) result(body []byte) (*provider.Result, error) {
	var doc any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, provider.Errorf(Name, http.StatusOK, "decode response: %w", err)
	}

	score, err := lookup(doc, c.path)
	if err != nil {
		return nil, provider.Errorf(Name, http.StatusOK, "score field %q: %w",
			c.cfg.ScoreField, err)
	}
	return &provider.Result{
		Scores: map[string]float64{c.cfg.Category: score},
		Labels: []string{fmt.Sprintf("%s:%g", c.cfg.ScoreField, score)},
	}, nil
}

// lookup follows path through nested JSON objects and returns the number
// at its end, which must lie between 0 and 1.
func lookup(doc any, path []string) (float64, error) {
	for _, key := range path {
		obj, ok := doc.(map[string]any)
		if !ok {
			return 0, fmt.Errorf("%q is not inside an object", key)
		}
		if doc, ok = obj[key]; !ok {
			return 0, fmt.Errorf("missing key %q", key)
		}
	}

	num, ok := doc.(json.Number)
	if !ok {
		return 0, fmt.Errorf("value %v is not a number", doc)
	}
	score, err := num.Float64()
	if err != nil || score < 0 || score > 1 {
		return 0, fmt.Errorf("value %s is not a number from 0 to 1", num)
	}
	return score, nil
}

// errorMessage returns a short excerpt of an error body, because
// classifiers return errors in no fixed shape.
func errorMessage(body []byte) string {
	var obj struct {
		Error   any    `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &obj) == nil {
		if s, ok := obj.Error.(string); ok && s != "" {
			return s
		}
		if obj.Message != "" {
			return obj.Message
		}
	}
	const limit = 200
	s := strings.TrimSpace(string(body))
	if len(s) > limit {
		s = s[:limit] + "..."
	}
	return s
}
