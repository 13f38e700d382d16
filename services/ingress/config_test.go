package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
)

func TestHelpListsEveryFlag(t *testing.T) {
	clearEnv(t)

	for _, arg := range []string{"-h", "--help"} {
		t.Run(arg, func(t *testing.T) {
			var stdout bytes.Buffer
			if err := run(t.Context(), []string{arg}, &stdout, io.Discard); err != nil {
				t.Fatalf("run(%s) = %v, want nil", arg, err)
			}

			help := stdout.String()
			cfg := defaultConfig()
			newFlagSet(&cfg, &rawSettings{logLevel: "info"}).VisitAll(func(f *flag.Flag) {
				want := "env " + envName(f.Name) + ", default " + defaultText(f)
				if f.Name == "healthcheck" {
					want = "env none (command line only), default false"
				}
				if !strings.Contains(help, "  -"+f.Name) || !strings.Contains(help, want) {
					t.Errorf("help lacks -%s with %q", f.Name, want)
				}
			})
		})
	}
}

func TestHelpShowsDefaults(t *testing.T) {
	clearEnv(t)

	var stdout bytes.Buffer
	if err := run(t.Context(), []string{"--help"}, &stdout, io.Discard); err != nil {
		t.Fatalf("run(--help) = %v", err)
	}

	for _, want := range []string{
		"env GENRELAY_NATS_URL, default nats://127.0.0.1:4222",
		"env GENRELAY_HTTP_ADDR, default 127.0.0.1:8080",
		"env GENRELAY_MAX_BODY_BYTES, default 1048576",
		"env GENRELAY_PUBLISH_TIMEOUT, default 5s",
		"env GENRELAY_RETRY_AFTER, default 5s",
		"env GENRELAY_SHUTDOWN_TIMEOUT, default 20s",
		"env GENRELAY_LOG_LEVEL, default info",
		"env GENRELAY_LOG_FORMAT, default json",
		"env GENRELAY_WEBHOOK_KEYS, default none",
		"env GENRELAY_STREAM_REPLICAS, default 1",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	clearEnv(t)

	cfg, err := parseConfig([]string{"-webhook-keys", "prod:k1"}, io.Discard)
	if err != nil {
		t.Fatalf("parseConfig: %v", err)
	}

	checks := []struct {
		name      string
		got, want any
	}{
		{"nats url", cfg.NATSURL, "nats://127.0.0.1:4222"},
		{"http addr", cfg.HTTPAddr, "127.0.0.1:8080"},
		{"max body bytes", cfg.MaxBodyBytes, int64(1 << 20)},
		{"publish timeout", cfg.PublishTimeout, 5 * time.Second},
		{"retry after", cfg.RetryAfter, 5 * time.Second},
		{"shutdown timeout", cfg.ShutdownTimeout, 20 * time.Second},
		{"log level", cfg.LogLevel, zapcore.InfoLevel},
		{"log format", cfg.LogFormat, "json"},
		{"tls", cfg.TLS(), false},
		{"allow unauthenticated", cfg.AllowUnauthenticated, false},
		{"allowed sources", len(cfg.AllowedSources), 0},
		{"trusted proxies", len(cfg.TrustedProxies), 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	clearEnv(t)
	t.Setenv("GENRELAY_WEBHOOK_KEYS", "current:env-key-1,previous:env-key-2")
	t.Setenv("GENRELAY_NATS_URL", "nats://a:4222,nats://b:4222")
	t.Setenv("GENRELAY_MAX_BODY_BYTES", "2048")
	t.Setenv("GENRELAY_ALLOWED_SOURCES", "leonardo,192.0.2.0/24")
	t.Setenv("GENRELAY_TRUSTED_PROXIES", "10.0.0.0/8")
	t.Setenv("GENRELAY_PUBLISH_TIMEOUT", "2s")
	t.Setenv("GENRELAY_LOG_LEVEL", "debug")
	t.Setenv("GENRELAY_STREAM_REPLICAS", "3")
	t.Setenv("GENRELAY_HTTP_ADDR", "127.0.0.1:9999")

	cfg, err := parseConfig([]string{"-http-addr", "127.0.0.1:7777"}, io.Discard)
	if err != nil {
		t.Fatalf("parseConfig: %v", err)
	}

	checks := []struct {
		name      string
		got, want any
	}{
		{"key count", len(cfg.Keys), 2},
		{"second label", cfg.Keys[1].Label, "previous"},
		{"nats url", cfg.NATSURL, "nats://a:4222,nats://b:4222"},
		{"max body bytes", cfg.MaxBodyBytes, int64(2048)},
		{"allowed sources", len(cfg.AllowedSources), 7},
		{"trusted proxies", len(cfg.TrustedProxies), 1},
		{"publish timeout", cfg.PublishTimeout, 2 * time.Second},
		{"log level", cfg.LogLevel, zapcore.DebugLevel},
		{"stream replicas", cfg.Broker.Replicas, 3},
		{"flag wins over variable", cfg.HTTPAddr, "127.0.0.1:7777"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	const secret = "do-not-print-3e9a1f"

	tests := []struct {
		name        string
		args        []string
		wantMessage string
	}{
		{name: "no keys", args: nil, wantMessage: "no webhook keys: set GENRELAY_WEBHOOK_KEYS"},
		{name: "key without label", args: []string{"-webhook-keys", secret}, wantMessage: "expected label:key"},
		{name: "empty label", args: []string{"-webhook-keys", ":" + secret}, wantMessage: "label is empty"},
		{name: "empty key", args: []string{"-webhook-keys", "prod:"}, wantMessage: `key of label "prod" is empty`},
		{
			name:        "duplicate label",
			args:        []string{"-webhook-keys", "prod:" + secret + ",prod:x"},
			wantMessage: `duplicate label "prod"`,
		},
		{name: "bad allowed source", args: []string{"-allowed-sources", "example.com"}, wantMessage: "allowed-sources"},
		{name: "bad trusted proxy", args: []string{"-trusted-proxies", "10.0.0.0/99"}, wantMessage: "trusted-proxies"},
		{name: "cert without key", args: []string{"-tls-cert-file", "c.pem"}, wantMessage: "must be set together"},
		{name: "key without cert", args: []string{"-tls-key-file", "k.pem"}, wantMessage: "must be set together"},
		{name: "log level", args: []string{"-log-level", "trace"}, wantMessage: `"trace" is not debug, info, warn or error`},
		{name: "log format", args: []string{"-log-format", "xml"}, wantMessage: `log-format "xml"`},
		{name: "zero body limit", args: []string{"-max-body-bytes", "0"}, wantMessage: "max-body-bytes 0 must be positive"},
		{name: "zero publish timeout", args: []string{"-publish-timeout", "0s"}, wantMessage: "publish-timeout 0s must be positive"},
		{
			name:        "write timeout below publish timeout",
			args:        []string{"-write-timeout", "5s", "-publish-timeout", "5s"},
			wantMessage: "write-timeout 5s must exceed publish-timeout 5s",
		},
		{name: "http addr", args: []string{"-http-addr", "8080"}, wantMessage: `http-addr "8080" is not host:port`},
		{name: "broker", args: []string{"-stream-replicas", "0"}, wantMessage: "replicas 0 must be between 1 and 5"},
		{name: "unknown flag", args: []string{"-no-such-flag"}, wantMessage: "no-such-flag"},
		{name: "malformed duration", args: []string{"-retry-after", "soon"}, wantMessage: "retry-after"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			args := tt.args
			if !strings.Contains(strings.Join(args, " "), "-webhook-keys") && tt.name != "no keys" {
				args = append(args, "-webhook-keys", "prod:"+secret)
			}

			err := run(t.Context(), args, io.Discard, io.Discard)
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("run() = %v, want ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.wantMessage) {
				t.Errorf("error %q does not contain %q", err, tt.wantMessage)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q shows the webhook key", err)
			}
		})
	}
}

func TestAllowUnauthenticatedNeedsNoKeys(t *testing.T) {
	clearEnv(t)

	cfg, err := parseConfig([]string{"-allow-unauthenticated"}, io.Discard)
	if err != nil {
		t.Fatalf("parseConfig: %v", err)
	}
	if len(cfg.Keys) != 0 || !cfg.AllowUnauthenticated {
		t.Errorf("keys = %d, allow unauthenticated = %v", len(cfg.Keys), cfg.AllowUnauthenticated)
	}
}

func TestRedactURLs(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://user:pw@host:4222", "nats://user:REDACTED@host:4222"},
		{"nats://s3cr3t-token@host:4222", "nats://REDACTED@host:4222"},
		{"tls://u:p@a:4222, nats://b:4222", "tls://u:REDACTED@a:4222,nats://b:4222"},
		{"u:p@a:4222", "u:REDACTED@a:4222"},
		{"nats://u:p:x@a:4222", "nats://u:REDACTED@a:4222"},
	}

	for _, tt := range tests {
		if got := redactURLs(tt.in); got != tt.want {
			t.Errorf("redactURLs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestProbeURL(t *testing.T) {
	tests := []struct {
		addr string
		tls  bool
		want string
	}{
		{addr: "127.0.0.1:8080", want: "http://127.0.0.1:8080/readyz"},
		{addr: "0.0.0.0:8080", want: "http://127.0.0.1:8080/readyz"},
		{addr: ":8080", want: "http://127.0.0.1:8080/readyz"},
		{addr: "[::]:8080", want: "http://127.0.0.1:8080/readyz"},
		{addr: "[::1]:8443", tls: true, want: "https://[::1]:8443/readyz"},
		{addr: "localhost:8080", want: "http://localhost:8080/readyz"},
		{addr: "0.0.0.0:8443", tls: true, want: "https://127.0.0.1:8443/readyz"},
	}

	for _, tt := range tests {
		got, err := probeURL(tt.addr, tt.tls)
		if err != nil {
			t.Errorf("probeURL(%q): %v", tt.addr, err)
			continue
		}
		if got != tt.want {
			t.Errorf("probeURL(%q, %v) = %q, want %q", tt.addr, tt.tls, got, tt.want)
		}
	}

	if _, err := probeURL("8080", false); err == nil {
		t.Error("probeURL(8080) = nil error, want one")
	}
}

func TestParseConfigHealthcheckOnlyFromCommandLine(t *testing.T) {
	clearEnv(t)
	t.Setenv("GENRELAY_HEALTHCHECK", "true")

	cfg, err := parseConfig([]string{"-webhook-keys", "a:0123456789abcdef"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Healthcheck {
		t.Error("GENRELAY_HEALTHCHECK turned the service into a probe")
	}

	cfg, err = parseConfig([]string{"-healthcheck"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Healthcheck {
		t.Error("-healthcheck on the command line was ignored")
	}
}
