package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/genrelay/genrelay/services/moderation/internal/policy"
)

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := parseConfig(nil, io.Discard)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}

	checks := []struct {
		name     string
		got      any
		expected any
	}{
		{"nats url", cfg.NATSURL, "nats://127.0.0.1:4222"},
		{"http addr", cfg.HTTPAddr, "127.0.0.1:8081"},
		{"consumer", cfg.Worker.Durable, "genrelay-moderation"},
		{"ack wait", cfg.Worker.AckWait, 30 * time.Second},
		{"max deliver", cfg.Worker.MaxDeliver, 10},
		{"log format", cfg.LogFormat, "json"},
		{"log level", cfg.LogLevel, "info"},
		{"policy", cfg.Policy, policy.DefaultConfig()},
		{"healthcheck", cfg.Healthcheck, false},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.expected) {
			t.Errorf("%s = %v, expected %v", c.name, c.got, c.expected)
		}
	}
}

func TestParseConfigEnvironment(t *testing.T) {
	t.Setenv("GENRELAY_NSFW_IMAGE_ACTION", "review")
	t.Setenv("GENRELAY_UNKNOWN_SOURCE_ACTION", "rejected")
	t.Setenv("GENRELAY_RETRY_BACKOFF", "1s, 2s")
	t.Setenv("GENRELAY_MAX_DELIVER", "3")
	t.Setenv("GENRELAY_WORKERS", "2")
	t.Setenv("GENRELAY_STREAM_REPLICAS", "3")
	t.Setenv("GENRELAY_HEALTHCHECK", "true")

	cfg, err := parseConfig([]string{"-workers", "5"}, io.Discard)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}

	if cfg.Policy.NSFWImage != policy.Review || cfg.Policy.UnknownSource != policy.Reject {
		t.Errorf("policy = %+v, expected nsfw review and unknown source rejected", cfg.Policy)
	}
	if expected := []time.Duration{time.Second, 2 * time.Second}; !reflect.DeepEqual(cfg.Worker.Backoff, expected) {
		t.Errorf("backoff = %v, expected %v", cfg.Worker.Backoff, expected)
	}
	if cfg.Worker.MaxDeliver != 3 {
		t.Errorf("max deliver = %d, expected 3", cfg.Worker.MaxDeliver)
	}
	if cfg.Worker.Workers != 5 {
		t.Errorf("workers = %d, expected the flag's 5 over the environment's 2", cfg.Worker.Workers)
	}
	if cfg.Broker.Replicas != 3 {
		t.Errorf("stream replicas = %d, expected 3", cfg.Broker.Replicas)
	}
	if cfg.Healthcheck {
		t.Error("GENRELAY_HEALTHCHECK turned the service into a probe")
	}
}

func TestParseConfigInvalid(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		expected string
	}{
		{"clean action", []string{"-nsfw-image-action", "clean"}, "invalid policy action"},
		{"unknown action", []string{"-unknown-flag-action", "allow"}, "invalid policy action"},
		{"tls cert alone", []string{"-tls-cert-file", "cert.pem"}, "tls-key-file"},
		{"log level", []string{"-log-level", "loud"}, "log-level"},
		{"log format", []string{"-log-format", "xml"}, "log-format"},
		{"backoff", []string{"-retry-backoff", "1s,soon"}, "soon"},
		{"max deliver", []string{"-max-deliver", "0"}, "max deliver"},
		{"workers", []string{"-workers", "0"}, "workers"},
		{"replicas", []string{"-stream-replicas", "7"}, "replicas"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig(tt.args, io.Discard)
			if err == nil {
				t.Fatalf("parse %v: no error", tt.args)
			}
			if !strings.Contains(err.Error(), tt.expected) {
				t.Errorf("error %q does not mention %q", err, tt.expected)
			}
		})
	}
}

func TestHelpListsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	if err := run(t.Context(), []string{"--help"}, io.Discard, &out); err != nil {
		t.Fatalf("run --help: %v", err)
	}
	help := out.String()

	fs := newFlagSet(&config{}, io.Discard)
	fs.VisitAll(func(f *flag.Flag) {
		env := "GENRELAY_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if f.Name == "healthcheck" {
			env = "none"
		}
		entry := "  -" + f.Name + "\n"
		i := strings.Index(help, entry)
		if i < 0 {
			t.Errorf("help does not list -%s", f.Name)
			return
		}
		block := help[i+len(entry):]
		if next := strings.Index(block, "\n  -"); next >= 0 {
			block = block[:next]
		}
		if !strings.Contains(block, "default ") || !strings.Contains(block, "env "+env) {
			t.Errorf("help entry of -%s lacks its default or env %s:\n%s", f.Name, env, block)
		}
	})
}

func TestParseConfigHelp(t *testing.T) {
	_, err := parseConfig([]string{"-h"}, io.Discard)
	if !errors.Is(err, flag.ErrHelp) {
		t.Errorf("parse -h = %v, expected flag.ErrHelp", err)
	}
}

func TestMaskURLs(t *testing.T) {
	tests := []struct {
		in, expected string
	}{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://user:pw@a:4222", "nats://user:REDACTED@a:4222"},
		{"nats://s3cr3t-token@a:4222", "nats://REDACTED@a:4222"},
		{"nats://a:4222,nats://u:pw@b:4222", "nats://a:4222,nats://u:REDACTED@b:4222"},
		{"nats://u:pw@[bad", "REDACTED"},
	}
	for _, tt := range tests {
		if got := maskURLs(tt.in); got != tt.expected {
			t.Errorf("maskURLs(%q) = %q, expected %q", tt.in, got, tt.expected)
		}
	}
}
