// Command ingress receives Leonardo.Ai webhook callbacks over HTTP,
// checks the bearer key, the source address, the size and the envelope,
// removes secrets and stores each callback in the NATS JetStream stream
// GENRELAY_INBOUND. It responds 202 only after JetStream acknowledged the
// callback, and 503 with Retry-After while NATS cannot store it.
//
// Run `ingress --help` for the settings, each a flag and a GENRELAY_
// environment variable.
package main

import (
	"context"
	"errors"
	"io"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Errors returned by run.
var (
	// ErrInvalidConfig is returned when a flag or environment variable is
	// malformed or the settings contradict each other.
	ErrInvalidConfig = errors.New("invalid configuration")
	// errHelp is returned by parseConfig after it printed the help text.
	errHelp = errors.New("help requested")
	// errHealthcheckFailed is returned by the -healthcheck probe when the
	// service is not ready; the probe has already printed why.
	errHealthcheckFailed = errors.New("healthcheck failed")
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()

	if err != nil {
		if !errors.Is(err, errHealthcheckFailed) {
			log := newLogger(zapcore.InfoLevel, "json", os.Stderr)
			log.Error("ingress failed", zap.Error(err))
		}
		os.Exit(1)
	}
}

// run parses the configuration from args and the environment, then either
// probes a running ingress (-healthcheck) or serves until ctx ends. Help
// and the probe's result go to stdout, logs to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, stdout)
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
		return err
	}

	if cfg.Healthcheck {
		return healthcheck(ctx, cfg, stdout)
	}

	log := newLogger(cfg.LogLevel, cfg.LogFormat, stderr)
	defer func() { _ = log.Sync() }()

	return serve(ctx, cfg, log)
}

// newLogger returns a zap logger that writes to w in format json or
// console, with ISO 8601 times and durations as text such as "1.5ms".
func newLogger(level zapcore.Level, format string, w io.Writer) *zap.Logger {
	encoding := zap.NewProductionEncoderConfig()
	encoding.TimeKey = "time"
	encoding.EncodeTime = zapcore.ISO8601TimeEncoder
	encoding.EncodeDuration = zapcore.StringDurationEncoder

	encoder := zapcore.NewJSONEncoder(encoding)
	if format == "console" {
		encoder = zapcore.NewConsoleEncoder(encoding)
	}

	sink := zapcore.Lock(zapcore.AddSync(w))
	core := zapcore.NewCore(encoder, sink, level)
	return zap.New(core, zap.ErrorOutput(sink)).With(zap.String("service", "ingress"))
}
