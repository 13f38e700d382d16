package screening

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/genrelay/genrelay/services/moderation/internal/imagefetch"
	"github.com/genrelay/genrelay/services/moderation/internal/provider"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/httpclassifier"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/openai"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/rekognition"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/vision"
	"github.com/genrelay/genrelay/services/moderation/internal/verdictcache"
)

// Provider names accepted in Config.Providers.
var providerNames = []string{
	openai.Name, rekognition.Name, vision.Name, httpclassifier.Name,
}

// Config is the screening configuration. DefaultConfig fills in the
// defaults that each field's comment states; RegisterFlags binds every
// field to a flag.
type Config struct {
	// Providers are the providers to call, in the order listed: any of
	// openai, rekognition, vision and http. Default none, which turns
	// screening off.
	Providers []string

	OpenAI OpenAIConfig
	AWS    AWSConfig
	Vision VisionConfig
	HTTP   HTTPConfig

	// Thresholds map category scores to outcomes. Default
	// DefaultThresholds.
	Thresholds Thresholds
	// Rule selects the images sent to providers. Default: every image
	// the generator did not flag.
	Rule Rule
	// FailMode is the outcome when a provider cannot be asked. Default
	// review.
	FailMode FailMode
	// Retry governs retries of one provider call.
	Retry provider.RetryPolicy
	// Limits bound each provider: timeout, concurrency, breaker.
	Limits provider.Limits
	// Cache sizes the verdict bucket. Default 1 replica, TTL 24h.
	Cache verdictcache.Config
	// Images limits which URLs are used and how images are downloaded.
	Images ImagesConfig
	// ProgressInterval is how often the progress callback runs while an
	// image is screened, so JetStream's ack wait never lapses during a
	// call. Default 5s.
	ProgressInterval time.Duration
}

// OpenAIConfig configures the openai provider.
type OpenAIConfig struct {
	// APIKey is required when openai is chosen. Secret.
	APIKey string
	// BaseURL default https://api.openai.com/v1.
	BaseURL string
	// Model default omni-moderation-latest.
	Model string
}

// AWSConfig configures the rekognition provider.
type AWSConfig struct {
	// Region, AccessKeyID and SecretAccessKey are required when
	// rekognition is chosen. SecretAccessKey and SessionToken are secret.
	Region          string
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	// BaseURL overrides the regional endpoint. Default empty.
	BaseURL string
	// MinConfidence is the lowest label confidence requested, percent.
	// Default 30.
	MinConfidence float64
}

// VisionConfig configures the vision provider.
type VisionConfig struct {
	// APIKey is required when vision is chosen. Secret.
	APIKey string
	// BaseURL default https://vision.googleapis.com.
	BaseURL string
}

// HTTPConfig configures the http provider.
type HTTPConfig struct {
	// URL is the classifier endpoint, required when http is chosen.
	URL string
	// URLField is the request field holding the image URL. Default url.
	URLField string
	// ScoreField is the dotted path of the score. Default score.
	ScoreField string
	// Category receives the score. Default sexual.
	Category string
	// Token is an optional bearer token. Secret.
	Token string
}

// ImagesConfig limits image URLs and downloads.
type ImagesConfig struct {
	// AllowedHosts default cdn.leonardo.ai.
	AllowedHosts []string
	// MaxBytes default 5 MiB, Rekognition's limit.
	MaxBytes int64
	// MaxRedirects default 3.
	MaxRedirects int
	// FetchTimeout bounds one download. Default 10s.
	FetchTimeout time.Duration
}

// DefaultConfig returns the defaults documented on each field.
func DefaultConfig() Config {
	return Config{
		OpenAI: OpenAIConfig{BaseURL: openai.DefaultBaseURL, Model: openai.DefaultModel},
		AWS:    AWSConfig{MinConfidence: rekognition.DefaultMinConfidence},
		Vision: VisionConfig{BaseURL: vision.DefaultBaseURL},
		HTTP: HTTPConfig{
			URLField: "url", ScoreField: "score", Category: provider.CategorySexual,
		},
		Thresholds: DefaultThresholds(),
		FailMode:   FailReview,
		Retry:      provider.DefaultRetryPolicy(),
		Limits:     provider.DefaultLimits(),
		Cache: verdictcache.Config{
			Bucket: verdictcache.DefaultBucket, Replicas: 1, TTL: 24 * time.Hour,
		},
		Images: ImagesConfig{
			AllowedHosts: slices.Clone(imagefetch.DefaultAllowedHosts),
			MaxBytes:     imagefetch.DefaultMaxBytes,
			MaxRedirects: imagefetch.DefaultMaxRedirects,
			FetchTimeout: imagefetch.DefaultTimeout,
		},
		ProgressInterval: 5 * time.Second,
	}
}

// FailsOpen reports whether a provider failure lets an image through as
// clean. The service should log a warning at start-up when it does.
func (c Config) FailsOpen() bool { return c.FailMode == FailClean }

// ErrInvalidConfig is returned by Validate and New for settings that
// cannot work.
var ErrInvalidConfig = errors.New("invalid screening config")

// Validate reports unknown or repeated providers, missing credentials of
// a chosen provider, and limits that cannot work.
func (c Config) Validate() error {
	for _, check := range []func() error{
		c.validateProviders, c.Thresholds.Validate, c.Retry.Validate,
		c.Limits.Validate, c.validateLimits,
	} {
		if err := check(); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
	}
	return nil
}

func (c Config) validateProviders() error {
	seen := map[string]bool{}
	for _, name := range c.Providers {
		if !slices.Contains(providerNames, name) {
			return fmt.Errorf("unknown moderation provider %q: want one of %s",
				name, strings.Join(providerNames, ", "))
		}
		if seen[name] {
			return fmt.Errorf("moderation provider %q is listed twice", name)
		}
		seen[name] = true
		if err := c.validateProvider(name); err != nil {
			return err
		}
	}
	return nil
}

func (c Config) validateProvider(name string) error {
	switch name {
	case openai.Name:
		return firstError(required("openai-api-key", c.OpenAI.APIKey),
			checkBaseURL("openai-base-url", c.OpenAI.BaseURL))
	case rekognition.Name:
		return firstError(required("aws-region", c.AWS.Region),
			required("aws-access-key-id", c.AWS.AccessKeyID),
			required("aws-secret-access-key", c.AWS.SecretAccessKey),
			checkBaseURL("aws-base-url", c.AWS.BaseURL),
			c.validateRekognitionLimits())
	case vision.Name:
		return firstError(required("vision-api-key", c.Vision.APIKey),
			checkBaseURL("vision-base-url", c.Vision.BaseURL))
	default:
		return firstError(required("http-classifier-url", c.HTTP.URL),
			checkBaseURL("http-classifier-url", c.HTTP.URL),
			required("http-classifier-score-field", c.HTTP.ScoreField))
	}
}

func (c Config) validateRekognitionLimits() error {
	if c.Images.MaxBytes > rekognition.MaxImageBytes {
		return fmt.Errorf("image-max-bytes %d exceeds Rekognition's limit of %d bytes",
			c.Images.MaxBytes, rekognition.MaxImageBytes)
	}
	if c.AWS.MinConfidence < 0 || c.AWS.MinConfidence > 100 {
		return fmt.Errorf("rekognition-min-confidence %g must be 0-100", c.AWS.MinConfidence)
	}
	return nil
}

func (c Config) validateLimits() error {
	switch {
	case c.ProgressInterval <= 0:
		return fmt.Errorf("moderation-progress-interval %s must be positive",
			c.ProgressInterval)
	case c.Cache.TTL <= 0 || c.Cache.Replicas < 1 || c.Cache.Replicas > 5:
		return fmt.Errorf("moderation cache ttl %s must be positive and replicas %d 1-5",
			c.Cache.TTL, c.Cache.Replicas)
	case c.Images.MaxBytes <= 0 || c.Images.MaxRedirects < 0 || c.Images.FetchTimeout <= 0:
		return errors.New("image-max-bytes and image-fetch-timeout must be " +
			"positive, and image-max-redirects must not be negative")
	}
	_, err := imagefetch.NewAllowlist(c.Images.AllowedHosts)
	return err
}

func required(flagName, v string) error {
	if strings.TrimSpace(v) == "" {
		return fmt.Errorf("missing %s for the chosen provider", flagName)
	}
	return nil
}

// checkBaseURL accepts an empty value (the provider's default), an https
// URL, and plain http only to a loopback host, so that credentials never
// cross a network unencrypted.
func checkBaseURL(flagName, v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		return fmt.Errorf("invalid %s %q: want an absolute URL", flagName, v)
	}
	if u.Scheme == "https" || (u.Scheme == "http" && isLoopback(u.Hostname())) {
		return nil
	}
	return fmt.Errorf("invalid %s %q: must be https (http only to a loopback host)",
		flagName, v)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Redacted returns the settings for the start-up log, with every secret
// replaced by "REDACTED" when set and "" when not.
func (c Config) Redacted() map[string]string {
	return map[string]string{
		"moderation_providers":  strings.Join(c.Providers, ","),
		"moderation_rule":       c.Rule.String(),
		"moderation_thresholds": c.Thresholds.String(),
		"moderation_fail_mode":  c.FailMode.String(),
		"retry": fmt.Sprintf("%d attempts, backoff %s..%s",
			c.Retry.Attempts, c.Retry.InitialBackoff, c.Retry.MaxBackoff),
		"provider_limits": fmt.Sprintf("timeout %s, concurrency %d, breaker %d failures / %s",
			c.Limits.Timeout, c.Limits.Concurrency, c.Limits.BreakerFailures,
			c.Limits.BreakerOpenFor),
		"cache": fmt.Sprintf("%s, ttl %s, %d replicas",
			c.Cache.Bucket, c.Cache.TTL, c.Cache.Replicas),
		"image_hosts":           strings.Join(c.Images.AllowedHosts, ","),
		"image_max_bytes":       strconv.FormatInt(c.Images.MaxBytes, 10),
		"openai_api_key":        mask(c.OpenAI.APIKey),
		"openai_base_url":       redactURL(c.OpenAI.BaseURL),
		"openai_model":          c.OpenAI.Model,
		"aws_region":            c.AWS.Region,
		"aws_access_key_id":     c.AWS.AccessKeyID,
		"aws_secret_access_key": mask(c.AWS.SecretAccessKey),
		"aws_session_token":     mask(c.AWS.SessionToken),
		"aws_base_url":          redactURL(c.AWS.BaseURL),
		"vision_api_key":        mask(c.Vision.APIKey),
		"vision_base_url":       redactURL(c.Vision.BaseURL),
		"http_classifier_url":   redactURL(c.HTTP.URL),
		"http_classifier_token": mask(c.HTTP.Token),
		"http_classifier_fields": c.HTTP.URLField + " -> " + c.HTTP.ScoreField +
			" as " + c.HTTP.Category,
	}
}

func mask(secret string) string {
	if secret == "" {
		return ""
	}
	return "REDACTED"
}

// redactURL hides user info and the query, which may carry credentials.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return mask(raw)
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	if u.RawQuery != "" {
		u.RawQuery = "REDACTED"
	}
	return u.String()
}

// RegisterFlags binds c's fields to flags on fs, with c's current values
// as defaults. With ff's GENRELAY env prefix, flag moderation-providers
// is read from GENRELAY_MODERATION_PROVIDERS, and so on.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.registerPolicyFlags(fs)
	c.registerRetryFlags(fs)
	c.registerLimitFlags(fs)
	c.registerImageFlags(fs)
	c.registerOpenAIFlags(fs)
	c.registerAWSFlags(fs)
	c.registerVisionFlags(fs)
	c.registerHTTPFlags(fs)
}

func (c *Config) registerPolicyFlags(fs *flag.FlagSet) {
	fs.Var((*listValue)(&c.Providers), "moderation-providers",
		"image moderation providers to call in the order listed, "+
			"comma-separated: openai, rekognition, vision, http (empty = none)")
	fs.Var(&c.Rule, "moderation-rule",
		"which unflagged images go to providers: empty = all, always, never, "+
			"sd-versions:<v>,... or models:<id>,...; join clauses with ;")
	fs.Var(&c.Thresholds, "moderation-thresholds",
		"category:review:block score thresholds (0-1 or off), comma-separated, "+
			"applied over the defaults; 'default' sets unlisted categories")
	fs.Var(&c.FailMode, "moderation-fail-mode",
		"outcome when a provider fails: review, rejected or clean "+
			"(clean publishes unchecked images)")
	fs.DurationVar(&c.ProgressInterval, "moderation-progress-interval",
		c.ProgressInterval, "how often a message being screened is marked "+
			"in progress (duration); keep it well below the ack wait")
}

func (c *Config) registerRetryFlags(fs *flag.FlagSet) {
	r := &c.Retry
	fs.IntVar(&r.Attempts, "moderation-retry-attempts", r.Attempts,
		"provider calls per image and provider, first one included (count)")
	fs.DurationVar(&r.InitialBackoff, "moderation-retry-initial-backoff",
		r.InitialBackoff, "wait before the first retry, doubled on each "+
			"retry, with ±50% jitter (duration)")
	fs.DurationVar(&r.MaxBackoff, "moderation-retry-max-backoff", r.MaxBackoff,
		"longest wait between retries before jitter (duration)")
	fs.DurationVar(&r.MaxRetryAfter, "moderation-retry-max-retry-after",
		r.MaxRetryAfter, "longest Retry-After honoured; a longer one ends "+
			"the retries (duration)")
}

func (c *Config) registerLimitFlags(fs *flag.FlagSet) {
	l := &c.Limits
	fs.DurationVar(&l.Timeout, "moderation-provider-timeout", l.Timeout,
		"time limit of one provider call, including the wait for a "+
			"concurrency slot (duration)")
	fs.IntVar(&l.Concurrency, "moderation-provider-concurrency", l.Concurrency,
		"provider calls in flight at once per provider and process (count)")
	uintVar(fs, &l.BreakerFailures, "moderation-breaker-failures",
		"consecutive failed calls that open a provider's circuit breaker (count)")
	fs.DurationVar(&l.BreakerOpenFor, "moderation-breaker-open-timeout",
		l.BreakerOpenFor, "how long an open breaker skips the provider "+
			"before trial calls (duration)")
	uintVar(fs, &l.BreakerHalfOpenCalls, "moderation-breaker-half-open-requests",
		"trial calls let through by a half-open breaker (count)")
	fs.DurationVar(&c.Cache.TTL, "moderation-cache-ttl", c.Cache.TTL,
		"how long provider results are cached per image (duration)")
	fs.IntVar(&c.Cache.Replicas, "moderation-cache-replicas", c.Cache.Replicas,
		"replicas of the provider verdict bucket: 1 on one server, "+
			"3 on a cluster (count)")
}

func (c *Config) registerImageFlags(fs *flag.FlagSet) {
	im := &c.Images
	fs.Var((*listValue)(&im.AllowedHosts), "image-hosts",
		"hosts that image URLs may point to, comma-separated; "+
			"*.example.com allows subdomains")
	fs.Int64Var(&im.MaxBytes, "image-max-bytes", im.MaxBytes,
		"largest image downloaded for providers that need the bytes (bytes)")
	fs.IntVar(&im.MaxRedirects, "image-max-redirects", im.MaxRedirects,
		"redirects followed when downloading an image (count)")
	fs.DurationVar(&im.FetchTimeout, "image-fetch-timeout", im.FetchTimeout,
		"time limit of one image download (duration)")
}

func (c *Config) registerOpenAIFlags(fs *flag.FlagSet) {
	o := &c.OpenAI
	fs.StringVar(&o.APIKey, "openai-api-key", o.APIKey,
		"OpenAI API key (secret)")
	fs.StringVar(&o.BaseURL, "openai-base-url", o.BaseURL,
		"OpenAI API base URL, including /v1")
	fs.StringVar(&o.Model, "openai-model", o.Model,
		"OpenAI moderation model")
}

func (c *Config) registerAWSFlags(fs *flag.FlagSet) {
	a := &c.AWS
	fs.StringVar(&a.Region, "aws-region", a.Region,
		"AWS region of Rekognition, for example eu-west-1")
	fs.StringVar(&a.AccessKeyID, "aws-access-key-id", a.AccessKeyID,
		"AWS access key id for Rekognition")
	fs.StringVar(&a.SecretAccessKey, "aws-secret-access-key", a.SecretAccessKey,
		"AWS secret access key (secret)")
	fs.StringVar(&a.SessionToken, "aws-session-token", a.SessionToken,
		"AWS session token, for temporary credentials only (secret)")
	fs.StringVar(&a.BaseURL, "aws-base-url", a.BaseURL,
		"Rekognition endpoint URL (empty = the region's endpoint)")
	fs.Float64Var(&a.MinConfidence, "rekognition-min-confidence", a.MinConfidence,
		"lowest Rekognition label confidence requested (percent, 0-100); "+
			"keep it below the lowest review threshold")
}

func (c *Config) registerVisionFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Vision.APIKey, "vision-api-key", c.Vision.APIKey,
		"Google Cloud Vision API key (secret)")
	fs.StringVar(&c.Vision.BaseURL, "vision-base-url", c.Vision.BaseURL,
		"Cloud Vision API base URL, without /v1")
}

func (c *Config) registerHTTPFlags(fs *flag.FlagSet) {
	h := &c.HTTP
	fs.StringVar(&h.URL, "http-classifier-url", h.URL,
		"self-hosted classifier endpoint URL")
	fs.StringVar(&h.URLField, "http-classifier-url-field", h.URLField,
		"request JSON field that carries the image URL")
	fs.StringVar(&h.ScoreField, "http-classifier-score-field", h.ScoreField,
		"dotted path of the 0-1 score in the response, for example scores.nsfw")
	fs.StringVar(&h.Category, "http-classifier-category", h.Category,
		"category the classifier score counts as, for example sexual")
	fs.StringVar(&h.Token, "http-classifier-token", h.Token,
		"bearer token for the classifier (secret, optional)")
}

// listValue is a comma-separated flag.Value.
type listValue []string

func (l *listValue) Set(v string) error {
	*l = splitList(v)
	return nil
}

func (l *listValue) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}

type uint32Value struct{ p *uint32 }

func (u uint32Value) Set(v string) error {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil {
		return fmt.Errorf("want a whole number: %w", err)
	}
	*u.p = uint32(n)
	return nil
}

func (u uint32Value) String() string {
	if u.p == nil {
		return "0"
	}
	return strconv.FormatUint(uint64(*u.p), 10)
}

func uintVar(fs *flag.FlagSet, p *uint32, name, usage string) {
	fs.Var(uint32Value{p}, name, usage)
}
