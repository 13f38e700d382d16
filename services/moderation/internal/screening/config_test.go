package screening_test

import (
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/peterbourgon/ff/v3"

	"github.com/genrelay/genrelay/services/moderation/internal/screening"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*screening.Config)
		wantErr string
	}{
		{name: "defaults with no provider", mutate: func(*screening.Config) {}},
		{name: "unknown provider", mutate: func(c *screening.Config) { c.Providers = []string{"azure"} },
			wantErr: `unknown moderation provider "azure"`},
		{name: "provider twice", mutate: func(c *screening.Config) {
			c.Providers = []string{"openai", "openai"}
			c.OpenAI.APIKey = "k"
		}, wantErr: "listed twice"},
		{name: "openai without key", mutate: func(c *screening.Config) { c.Providers = []string{"openai"} },
			wantErr: "missing openai-api-key"},
		{name: "rekognition without secret", mutate: func(c *screening.Config) {
			c.Providers = []string{"rekognition"}
			c.AWS.Region, c.AWS.AccessKeyID = "eu-west-1", "AKIA"
		}, wantErr: "missing aws-secret-access-key"},
		{name: "vision without key", mutate: func(c *screening.Config) { c.Providers = []string{"vision"} },
			wantErr: "missing vision-api-key"},
		{name: "http without url", mutate: func(c *screening.Config) { c.Providers = []string{"http"} },
			wantErr: "missing http-classifier-url"},
		{name: "plain http to a remote host", mutate: func(c *screening.Config) {
			c.Providers = []string{"openai"}
			c.OpenAI.APIKey, c.OpenAI.BaseURL = "k", "http://proxy.internal/v1"
		}, wantErr: "must be https"},
		{name: "plain http to loopback", mutate: func(c *screening.Config) {
			c.Providers = []string{"openai"}
			c.OpenAI.APIKey, c.OpenAI.BaseURL = "k", "http://127.0.0.1:8080/v1"
		}},
		{name: "rekognition image limit", mutate: func(c *screening.Config) {
			c.Providers = []string{"rekognition"}
			c.AWS.Region, c.AWS.AccessKeyID, c.AWS.SecretAccessKey = "eu-west-1", "AKIA", "s"
			c.Images.MaxBytes = 6 << 20
		}, wantErr: "exceeds Rekognition's limit"},
		{name: "zero attempts", mutate: func(c *screening.Config) { c.Retry.Attempts = 0 },
			wantErr: "retry attempts 0"},
		{name: "zero timeout", mutate: func(c *screening.Config) { c.Limits.Timeout = 0 },
			wantErr: "provider timeout"},
		{name: "empty allowlist", mutate: func(c *screening.Config) { c.Images.AllowedHosts = nil },
			wantErr: "allowlist is empty"},
		{name: "no progress", mutate: func(c *screening.Config) { c.ProgressInterval = 0 },
			wantErr: "progress-interval"},
		{name: "bad threshold", mutate: func(c *screening.Config) {
			c.Thresholds["sexual"] = screening.Pair{Review: 0.9, Block: 0.2}
		}, wantErr: "invalid thresholds for sexual"},
		{name: "no default pair", mutate: func(c *screening.Config) {
			delete(c.Thresholds, screening.DefaultCategory)
		}, wantErr: "lack the default pair"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := screening.DefaultConfig()
			tt.mutate(&cfg)
			err := cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, screening.ErrInvalidConfig) {
				t.Fatalf("error = %v, want ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestFlagsFromEnvironment(t *testing.T) {
	env := map[string]string{
		"GENRELAY_MODERATION_PROVIDERS":        "openai,http",
		"GENRELAY_OPENAI_API_KEY":              "sk-from-env",
		"GENRELAY_OPENAI_BASE_URL":             "https://proxy.example/v1",
		"GENRELAY_HTTP_CLASSIFIER_URL":         "https://classifier.example/classify",
		"GENRELAY_MODERATION_THRESHOLDS":       "sexual:0.3:0.7",
		"GENRELAY_MODERATION_RULE":             "sd-versions:v1_5",
		"GENRELAY_MODERATION_FAIL_MODE":        "rejected",
		"GENRELAY_MODERATION_BREAKER_FAILURES": "9",
		"GENRELAY_IMAGE_HOSTS":                 "cdn.leonardo.ai,*.example.com",
		"GENRELAY_MODERATION_CACHE_TTL":        "2h",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	cfg := screening.DefaultConfig()
	fs := flag.NewFlagSet("moderation", flag.ContinueOnError)
	cfg.RegisterFlags(fs)

	if err := ff.Parse(fs, nil, ff.WithEnvVarPrefix("GENRELAY")); err != nil {
		t.Fatalf("parse: %v", err)
	}

	if strings.Join(cfg.Providers, ",") != "openai,http" {
		t.Errorf("providers = %v", cfg.Providers)
	}
	if cfg.OpenAI.APIKey != "sk-from-env" || cfg.OpenAI.BaseURL != "https://proxy.example/v1" {
		t.Errorf("openai = %+v", cfg.OpenAI)
	}
	if got := cfg.Thresholds.For("sexual"); got.Review != 0.3 || got.Block != 0.7 {
		t.Errorf("sexual thresholds = %+v", got)
	}
	if cfg.Rule.String() != "sd-versions:v1_5" || cfg.FailMode != screening.FailRejected {
		t.Errorf("rule = %q, fail mode = %s", cfg.Rule, cfg.FailMode)
	}
	if cfg.Limits.BreakerFailures != 9 || cfg.Cache.TTL != 2*time.Hour {
		t.Errorf("breaker failures = %d, cache ttl = %s", cfg.Limits.BreakerFailures, cfg.Cache.TTL)
	}
	if len(cfg.Images.AllowedHosts) != 2 {
		t.Errorf("image hosts = %v", cfg.Images.AllowedHosts)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestFlagDefaultsMatchDefaultConfig(t *testing.T) {
	cfg := screening.DefaultConfig()
	fs := flag.NewFlagSet("moderation", flag.ContinueOnError)
	cfg.RegisterFlags(fs)

	want := map[string]string{
		"moderation-providers": "", "moderation-fail-mode": "review", "moderation-rule": "",
		"moderation-retry-attempts": "3", "moderation-provider-timeout": "10s",
		"moderation-breaker-failures": "5", "moderation-cache-ttl": "24h0m0s",
		"image-hosts": "cdn.leonardo.ai", "image-max-bytes": "5242880",
		"openai-base-url": "https://api.openai.com/v1", "openai-model": "omni-moderation-latest",
		"moderation-progress-interval": "5s",
	}
	for name, def := range want {
		f := fs.Lookup(name)
		if f == nil {
			t.Errorf("flag %s not registered", name)
			continue
		}
		if f.DefValue != def {
			t.Errorf("flag %s default = %q, want %q", name, f.DefValue, def)
		}
	}
}

func TestRedactedHidesSecrets(t *testing.T) {
	cfg := screening.DefaultConfig()
	cfg.OpenAI.APIKey = "sk-secret-1"
	cfg.AWS.SecretAccessKey = "aws-secret-2"
	cfg.AWS.SessionToken = "aws-token-3"
	cfg.Vision.APIKey = "AIza-secret-4"
	cfg.HTTP.Token = "bearer-secret-5"
	cfg.HTTP.URL = "https://user:pw-secret-6@classifier.example/c?key=q-secret-7"
	cfg.OpenAI.BaseURL = "https://user:pw-secret-8@proxy.example/v1"
	cfg.AWS.BaseURL = "https://user:pw-secret-9@aws-proxy.example"
	cfg.Vision.BaseURL = "https://vision.example?key=q-secret-10"

	out := cfg.Redacted()

	secrets := []string{"secret-1", "secret-2", "token-3", "secret-4", "secret-5",
		"secret-6", "secret-7", "secret-8", "secret-9", "secret-10"}
	for k, v := range out {
		for _, secret := range secrets {
			if strings.Contains(v, secret) {
				t.Errorf("%s = %q leaks %q", k, v, secret)
			}
		}
	}
	if out["openai_api_key"] != "REDACTED" || out["aws_session_token"] != "REDACTED" {
		t.Errorf("set secrets must show REDACTED: %v", out)
	}
	if out["moderation_fail_mode"] != "review" {
		t.Errorf("fail mode = %q", out["moderation_fail_mode"])
	}
}

func TestFailsOpenOnlyForClean(t *testing.T) {
	cfg := screening.DefaultConfig()
	if cfg.FailsOpen() {
		t.Error("default config fails open")
	}
	cfg.FailMode = screening.FailClean
	if !cfg.FailsOpen() {
		t.Error("fail mode clean does not report FailsOpen")
	}
}
