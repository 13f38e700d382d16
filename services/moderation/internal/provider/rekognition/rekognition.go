// Package rekognition sends image bytes to Amazon Rekognition's
// DetectModerationLabels, through aws-sdk-go-v2. Rekognition does not fetch
// URLs, so the caller downloads the image (see package imagefetch) and
// passes JPEG or PNG bytes of at most 5 MiB.
//
// The client is built from static credentials and a region in Config,
// without the SDK's default chain, so nothing is read from the
// environment or ~/.aws. The SDK's retries are off, so that
// provider.RetryPolicy decides.
package rekognition

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sdk "github.com/aws/aws-sdk-go-v2/service/rekognition"
	"github.com/aws/aws-sdk-go-v2/service/rekognition/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/genrelay/genrelay/services/moderation/internal/provider"
)

// Name is the provider's configuration name.
const Name = "rekognition"

// MaxImageBytes is the largest image Rekognition accepts as bytes.
const MaxImageBytes = 5 << 20

// DefaultMinConfidence is the lowest label confidence requested, in
// percent. Labels below it are not returned, so their categories score 0.
const DefaultMinConfidence = 30

// Config configures the client.
type Config struct {
	// Region is the AWS region, for example "eu-west-1". Required.
	Region string
	// AccessKeyID and SecretAccessKey are static credentials. Required.
	AccessKeyID     string
	SecretAccessKey string
	// SessionToken is set for temporary credentials only.
	SessionToken string
	// BaseURL overrides the regional endpoint, for VPC endpoints, proxies
	// and tests. Default: the SDK's endpoint for Region.
	BaseURL string
	// MinConfidence is the lowest confidence requested, 0-100.
	// Default DefaultMinConfidence.
	MinConfidence float32
	// HTTPClient sends the requests. Default http.DefaultClient.
	HTTPClient *http.Client
}

// Client is a provider.Provider backed by Rekognition.
type Client struct {
	api           *sdk.Client
	minConfidence float32
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	switch {
	case cfg.Region == "":
		return nil, errors.New("rekognition: missing AWS region")
	case cfg.AccessKeyID == "" || cfg.SecretAccessKey == "":
		return nil, errors.New("rekognition: missing AWS access key id or secret access key")
	case cfg.MinConfidence < 0 || cfg.MinConfidence > 100:
		return nil, fmt.Errorf("rekognition: min confidence %g must be 0-100", cfg.MinConfidence)
	}
	if cfg.MinConfidence == 0 {
		cfg.MinConfidence = DefaultMinConfidence
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}

	awsCfg := aws.Config{
		Region: cfg.Region,
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(
			cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)),
		HTTPClient: cfg.HTTPClient,
		Retryer:    func() aws.Retryer { return aws.NopRetryer{} },
	}
	api := sdk.NewFromConfig(awsCfg, func(o *sdk.Options) {
		if cfg.BaseURL != "" {
			o.BaseEndpoint = aws.String(cfg.BaseURL)
		}
	})
	return &Client{api: api, minConfidence: cfg.MinConfidence}, nil
}

// Name returns "rekognition".
func (c *Client) Name() string { return Name }

// NeedsBytes returns true: Rekognition takes the image bytes.
func (c *Client) NeedsBytes() bool { return true }

// Moderate sends img.Bytes to DetectModerationLabels and maps each label's
// top-level category and confidence (0-100) to a 0-1 score.
func (c *Client) Moderate(ctx context.Context, img provider.Image) (*provider.Result, error) {
	if len(img.Bytes) == 0 {
		return nil, &provider.Error{
			Provider: Name, Kind: provider.ErrInvalidInput,
			Message: "image bytes missing",
		}
	}

	out, err := c.api.DetectModerationLabels(ctx, &sdk.DetectModerationLabelsInput{
		Image:         &types.Image{Bytes: img.Bytes},
		MinConfidence: aws.Float32(c.minConfidence),
	})
	if err != nil {
		return nil, translate(err)
	}
	return result(out), nil
}

// errorKinds maps Rekognition's and AWS's common error codes. The
// Rekognition Developer Guide's "Error handling" page marks
// ThrottlingException and ProvisionedThroughputExceededException as
// retryable, and the other 400 errors as not.
var errorKinds = map[string]error{
	"ThrottlingException":                    provider.ErrRateLimited,
	"ProvisionedThroughputExceededException": provider.ErrRateLimited,
	"InternalServerError":                    provider.ErrRetryable,
	"ServiceUnavailableException":            provider.ErrRetryable,
	"InternalFailure":                        provider.ErrRetryable,
	"ImageTooLargeException":                 provider.ErrInvalidInput,
	"InvalidImageFormatException":            provider.ErrInvalidInput,
	"InvalidParameterException":              provider.ErrInvalidInput,
	"AccessDeniedException":                  provider.ErrAuth,
	"UnrecognizedClientException":            provider.ErrAuth,
	"InvalidSignatureException":              provider.ErrAuth,
	"IncompleteSignature":                    provider.ErrAuth,
	"IncompleteSignatureException":           provider.ErrAuth,
	"MissingAuthenticationToken":             provider.ErrAuth,
	"MissingAuthenticationTokenException":    provider.ErrAuth,
	"InvalidClientTokenId":                   provider.ErrAuth,
	"ExpiredToken":                           provider.ErrAuth,
	"ExpiredTokenException":                  provider.ErrAuth,
}

func translate(err error) error {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return provider.TransportError(Name, err)
	}

	var resp *http.Response
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) && respErr.Response != nil {
		resp = respErr.Response.Response
	}

	kind, ok := errorKinds[apiErr.ErrorCode()]
	if !ok && resp != nil {
		kind = provider.KindForStatus(resp.StatusCode)
	} else if !ok {
		kind = provider.ErrBadResponse
	}
	return provider.NewError(Name, kind, resp, apiErr.ErrorCode(), apiErr.ErrorMessage())
}

func result(out *sdk.DetectModerationLabelsOutput) *provider.Result {
	parents := map[string]string{}
	for _, l := range out.ModerationLabels {
		parents[aws.ToString(l.Name)] = aws.ToString(l.ParentName)
	}

	res := &provider.Result{
		Scores:       map[string]float64{},
		ModelVersion: aws.ToString(out.ModerationModelVersion),
	}
	for _, l := range out.ModerationLabels {
		name := aws.ToString(l.Name)
		score := float64(aws.ToFloat32(l.Confidence)) / 100
		cat := Category(root(name, parents))
		res.Scores[cat] = max(res.Scores[cat], score)
		res.Labels = append(res.Labels, label(l))
	}
	sort.Strings(res.Labels)
	return res
}

// root follows ParentName links to the top-level label. Rekognition's
// taxonomy has at most three levels; the loop stops after ten steps in
// case a response ever names a cycle.
func root(name string, parents map[string]string) string {
	for range 10 {
		parent := parents[name]
		if parent == "" {
			return name
		}
		name = parent
	}
	return name
}

func label(l types.ModerationLabel) string {
	name := aws.ToString(l.Name)
	if p := aws.ToString(l.ParentName); p != "" {
		name = p + "/" + name
	}
	return fmt.Sprintf("%s:%.1f", name, aws.ToFloat32(l.Confidence))
}

// topLevel maps Rekognition's top-level (taxonomy level 1) moderation
// labels to categories: the current taxonomy (model 7) and the earlier
// one (model 6), whose names a pinned older model may still return.
var topLevel = map[string]string{
	"Explicit":        provider.CategorySexual,
	"Explicit Nudity": provider.CategorySexual,
	"Non-Explicit Nudity of Intimate parts and Kissing": provider.CategorySuggestive,
	"Swimwear or Underwear":                             provider.CategorySuggestive,
	"Suggestive":                                        provider.CategorySuggestive,
	"Violence":                                          provider.CategoryViolence,
	"Visually Disturbing":                               provider.CategoryViolenceGraphic,
	"Drugs & Tobacco":                                   provider.CategoryDrugs,
	"Drugs":                                             provider.CategoryDrugs,
	"Tobacco":                                           provider.CategoryDrugs,
	"Alcohol":                                           provider.CategoryAlcohol,
	"Gambling":                                          provider.CategoryGambling,
	"Rude Gestures":                                     provider.CategoryRudeGestures,
	"Hate Symbols":                                      provider.CategoryHate,
}

// Category returns the category of a top-level label. A label not in the
// table keeps its name in lower case with spaces replaced by hyphens.
func Category(topLevelLabel string) string {
	if c, ok := topLevel[topLevelLabel]; ok {
		return c
	}
	return strings.ReplaceAll(strings.ToLower(topLevelLabel), " ", "-")
}
