// Command moderation consumes Leonardo.Ai callbacks from the inbound
// JetStream stream, decides from the generator's flags (and, later, a
// third-party moderation step) which images are clean, rejected or need
// review, and publishes one event per outcome to the results stream.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/genrelay/genrelay/services/moderation/internal/health"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "moderation:", err)
		os.Exit(1)
	}
}

// run parses the configuration and runs the service, or the readiness
// probe, until ctx is done. Logs go to stderr, and the probe prints its
// line of success to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}

	if cfg.Healthcheck {
		return probe(ctx, cfg, stdout)
	}

	log := newLogger(cfg, stderr)
	defer func() { _ = log.Sync() }()

	log.Info("moderation starting", cfg.fields()...)
	if cfg.Screening.FailsOpen() {
		log.Warn("moderation fail mode is clean: an image that no provider " +
			"could check is published as clean")
	}
	return serve(ctx, cfg, log)
}

// probe runs the -healthcheck request and prints its one line.
func probe(ctx context.Context, cfg config, stdout io.Writer) error {
	url, err := health.Probe(ctx, cfg.HTTPAddr, cfg.tlsEnabled())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ready: %s returned 200\n", url)
	return nil
}

// newLogger returns a zap logger writing to w in the configured format.
// The level was validated with the rest of the configuration.
func newLogger(cfg config, w io.Writer) *zap.Logger {
	level, _ := zapcore.ParseLevel(cfg.LogLevel)

	encoderCfg := zap.NewProductionEncoderConfig()
	encoderCfg.TimeKey = "time"
	encoderCfg.EncodeTime = zapcore.RFC3339NanoTimeEncoder
	encoderCfg.EncodeDuration = zapcore.StringDurationEncoder

	encoder := zapcore.NewJSONEncoder(encoderCfg)
	if cfg.LogFormat == "console" {
		encoder = zapcore.NewConsoleEncoder(encoderCfg)
	}

	core := zapcore.NewCore(encoder, zapcore.Lock(zapcore.AddSync(w)), level)
	return zap.New(core).With(zap.String("service", "moderation"))
}
