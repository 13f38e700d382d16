package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/genrelay/genrelay/pkg/broker"
	"github.com/genrelay/genrelay/pkg/natsconn"
	"github.com/genrelay/genrelay/services/moderation/internal/health"
	"github.com/genrelay/genrelay/services/moderation/internal/pipeline"
	"github.com/genrelay/genrelay/services/moderation/internal/verdictcache"
	"github.com/genrelay/genrelay/services/moderation/internal/verdicts"
	"github.com/genrelay/genrelay/services/moderation/internal/worker"
)

// readyCacheFor is how long a readiness result is reused.
const readyCacheFor = time.Second

// serve wires and runs the service until ctx is done. The health server
// starts first, so that probes get a response while NATS is still
// unreachable, then the streams, the bucket and the worker.
func serve(ctx context.Context, cfg config, log *zap.Logger) error {
	nc, err := natsconn.Connect(cfg.NATSURL, "genrelay-moderation", natsEvents(log))
	if err != nil {
		return err
	}
	defer drain(nc, log)

	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	// The health server runs for the whole life of the service, and a
	// failure to serve stops the service.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopHTTP, err := startHTTP(cfg, readiness(nc, js, cfg.Worker.Durable), cancel, log)
	if err != nil {
		return err
	}
	defer stopHTTP()

	// Streams and buckets, retried until NATS responds.
	res, err := setUp(ctx, js, cfg, log)
	if err != nil {
		return serveError(ctx)
	}

	// The worker, until ctx is done.
	w, err := newWorker(js, res, cfg, log)
	if err != nil {
		return err
	}
	_ = w.Run(ctx)
	log.Info("moderation stopped")
	return serveError(ctx)
}

// serveError returns the reason ctx was cancelled, unless it was the
// caller's own cancellation, which is a normal stop.
func serveError(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func newWorker(js jetstream.JetStream, res resources, cfg config,
	log *zap.Logger,
) (*worker.Worker, error) {
	screener, err := newScreener(cfg.Screening, res.providerCache, log)
	if err != nil {
		return nil, err
	}

	proc, err := pipeline.New(pipeline.Config{
		Policy:   cfg.Policy,
		Verdicts: verdicts.New(res.imageVerdicts),
		Screener: screener,
	})
	if err != nil {
		return nil, err
	}
	return worker.New(js, cfg.Worker, proc, log)
}

// resources are the buckets that setUp creates.
type resources struct {
	imageVerdicts jetstream.KeyValue
	// providerCache is nil when no moderation provider is configured.
	providerCache *verdictcache.Cache
}

// setUp creates or updates the streams and buckets, retrying with a delay
// that grows to 10s. It returns an error only when ctx is done.
func setUp(ctx context.Context, js jetstream.JetStream, cfg config,
	log *zap.Logger,
) (resources, error) {
	delay := 500 * time.Millisecond
	for {
		res, err := ensureStreams(ctx, js, cfg)
		if err == nil {
			log.Info("streams and buckets ready")
			return res, nil
		}

		log.Warn("set up streams failed, retrying",
			zap.Duration("retry_in", delay), zap.Error(err))
		select {
		case <-ctx.Done():
			return resources{}, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 10*time.Second)
	}
}

func ensureStreams(ctx context.Context, js jetstream.JetStream,
	cfg config,
) (resources, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()

	var res resources
	if err := broker.EnsureStreams(ctx, js, cfg.Broker); err != nil {
		return res, err
	}

	var err error
	if res.imageVerdicts, err = broker.EnsureVerdictBucket(ctx, js, cfg.Broker); err != nil {
		return res, err
	}
	if len(cfg.Screening.Providers) > 0 {
		res.providerCache, err = verdictcache.Open(ctx, js, cfg.Screening.Cache)
	}
	return res, err
}

// readiness returns a check that passes when NATS is connected and both
// the inbound stream and the durable consumer respond.
func readiness(nc *nats.Conn, js jetstream.JetStream, durable string) health.Check {
	return func(ctx context.Context) error {
		if err := natsconn.Ready(ctx, nc, js, broker.InboundStream); err != nil {
			return err
		}
		if _, err := js.Consumer(ctx, broker.InboundStream, durable); err != nil {
			return fmt.Errorf("consumer %s: %w", durable, err)
		}
		return nil
	}
}

// startHTTP binds the health server, so that a busy port fails start-up,
// and serves in the background. A serve error cancels the service through
// fail. The returned function shuts the server down.
func startHTTP(cfg config, check health.Check, fail context.CancelCauseFunc,
	log *zap.Logger,
) (func(), error) {
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}

	srv := &http.Server{
		Handler:           health.Handler(check, readyCacheFor),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
	if cfg.tlsEnabled() {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}

	go func() {
		err := serveHTTP(srv, ln, cfg)
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("health server failed", zap.Error(err))
			fail(fmt.Errorf("health server: %w", err))
		}
	}()
	log.Info("health server listening", zap.String("http_addr", ln.Addr().String()),
		zap.Bool("tls", cfg.tlsEnabled()))

	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

func serveHTTP(srv *http.Server, ln net.Listener, cfg config) error {
	if cfg.tlsEnabled() {
		return srv.ServeTLS(ln, cfg.TLSCertFile, cfg.TLSKeyFile)
	}
	return srv.Serve(ln)
}

func natsEvents(log *zap.Logger) natsconn.Events {
	return natsconn.Events{
		Disconnected: func(err error) {
			log.Warn("nats disconnected", zap.Error(err))
		},
		Reconnected: func(url string) {
			log.Info("nats reconnected", zap.String("nats_url", url))
		},
		Error: func(err error) {
			log.Warn("nats error", zap.Error(err))
		},
	}
}

// drain flushes pending publishes and acknowledgements, then closes the
// connection, waiting at most 10s.
func drain(nc *nats.Conn, log *zap.Logger) {
	if err := nc.Drain(); err != nil {
		nc.Close()
		return
	}

	deadline := time.Now().Add(10 * time.Second)
	for !nc.IsClosed() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !nc.IsClosed() {
		log.Warn("nats drain timed out, closing")
		nc.Close()
	}
}
