package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/genrelay/genrelay/pkg/leonardo"
	"github.com/genrelay/genrelay/pkg/natsconn"
	"github.com/genrelay/genrelay/services/ingress/internal/auth"
	"github.com/genrelay/genrelay/services/ingress/internal/publish"
	"github.com/genrelay/genrelay/services/ingress/internal/sourceip"
	"github.com/genrelay/genrelay/services/ingress/internal/webhook"
)

// Readiness probe timing: a result is reused for readinessCacheTTL, and
// one check waits at most readinessTimeout, below the 3s of -healthcheck.
const (
	readinessCacheTTL = time.Second
	readinessTimeout  = 2 * time.Second
)

// natsClientName identifies ingress connections in NATS monitoring.
const natsClientName = "genrelay-ingress"

// serve runs ingress until ctx ends: it connects to NATS, keeps the
// streams set up in the background, serves HTTP, and on shutdown
// finishes requests in flight before draining the NATS connection.
func serve(ctx context.Context, cfg Config, log *zap.Logger) error {
	log.Info("ingress starting", cfg.LogFields()...)
	if len(cfg.Keys) == 0 {
		log.Warn("authentication is off: any client that reaches this " +
			"address can store callbacks; set GENRELAY_WEBHOOK_KEYS")
	}
	warnShortKeys(log, cfg.Keys)

	// Connect to NATS. The connection retries in the background, so
	// ingress starts even while NATS is down.
	keeper := publish.NewStreamKeeper(cfg.Broker, log)
	nc, err := natsconn.Connect(cfg.NATSURL, natsClientName, natsEvents(log, keeper))
	if err != nil {
		return err
	}
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })

	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return fmt.Errorf("jetstream context: %w", err)
	}

	// Set the streams up in the background, retrying until NATS responds.
	keeperCtx, stopKeeper := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { keeper.Run(keeperCtx, js) })

	// Serve HTTP until ctx ends, then stop the keeper and drain NATS.
	handler := webhook.New(webhookConfig(cfg, nc, js, log))
	err = serveHTTP(ctx, cfg, handler, log)

	stopKeeper()
	wg.Wait()
	drainNATS(nc, closed, cfg.ShutdownTimeout, log)
	log.Info("ingress stopped")
	return err
}

// natsEvents logs connection changes and sets the streams up again after
// a reconnect, in case the server came back with an empty store.
func natsEvents(log *zap.Logger, keeper *publish.StreamKeeper) natsconn.Events {
	return natsconn.Events{
		Disconnected: func(err error) {
			log.Warn("nats disconnected", zap.Error(err))
		},
		Reconnected: func(url string) {
			log.Info("nats reconnected", zap.String("nats_url", url))
			keeper.Trigger()
		},
		Error: func(err error) {
			log.Error("nats error", zap.Error(err))
		},
	}
}

func webhookConfig(
	cfg Config,
	nc *nats.Conn,
	js jetstream.JetStream,
	log *zap.Logger,
) webhook.Config {
	wc := webhook.Config{
		Resolver:     sourceip.NewResolver(cfg.TrustedProxies),
		MaxBodyBytes: cfg.MaxBodyBytes,
		RetryAfter:   cfg.RetryAfter,
		Publisher:    publish.NewPublisher(nc, js, cfg.PublishTimeout),
		Readiness:    publish.NewReadiness(nc, js, readinessCacheTTL, readinessTimeout),
		Logger:       log,
	}
	if len(cfg.Keys) > 0 {
		wc.Keyring = auth.NewKeyring(cfg.Keys)
	}
	if len(cfg.AllowedSources) > 0 {
		wc.Allowlist = sourceip.NewAllowlist(cfg.AllowedSources)
	}
	return wc
}

// serveHTTP listens on cfg.HTTPAddr until ctx ends, then stops accepting
// connections and waits up to cfg.ShutdownTimeout for requests in
// flight.
func serveHTTP(
	ctx context.Context,
	cfg Config,
	handler http.Handler,
	log *zap.Logger,
) error {
	srv, err := newHTTPServer(cfg, handler, log)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	log.Info("http server listening",
		zap.String("addr", ln.Addr().String()), zap.Bool("tls", cfg.TLS()))

	served := make(chan error, 1)
	go func() { served <- serveOn(srv, ln, cfg.TLS()) }()

	select {
	case err := <-served:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}

	log.Info("http server shutting down", zap.Duration("timeout", cfg.ShutdownTimeout))
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()

	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("http server shutdown: %w", err)
	}
	<-served
	return nil
}

func newHTTPServer(
	cfg Config,
	handler http.Handler,
	log *zap.Logger,
) (*http.Server, error) {
	httpLog := log.With(zap.String("component", "http"))
	errorLog, err := zap.NewStdLogAt(httpLog, zapcore.WarnLevel)
	if err != nil {
		return nil, fmt.Errorf("http error log: %w", err)
	}

	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          errorLog,
	}
	if !cfg.TLS() {
		return srv, nil
	}

	cert, err := tls.LoadX509KeyPair(cfg.TLSCertFile, cfg.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s: %w", cfg.TLSCertFile, err)
	}
	srv.TLSConfig = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}
	return srv, nil
}

// serveOn serves until Shutdown, which is not an error.
func serveOn(srv *http.Server, ln net.Listener, useTLS bool) error {
	var err error
	if useTLS {
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// drainNATS flushes what is pending and closes the connection, waiting at
// most timeout; a connection that is down is closed at once.
func drainNATS(
	nc *nats.Conn,
	closed <-chan struct{},
	timeout time.Duration,
	log *zap.Logger,
) {
	if !nc.IsConnected() {
		nc.Close()
		return
	}

	if err := nc.Drain(); err != nil {
		log.Warn("nats drain failed, closing", zap.Error(err))
		nc.Close()
		return
	}

	select {
	case <-closed:
	case <-time.After(timeout):
		log.Warn("nats drain timed out, closing", zap.Duration("timeout", timeout))
		nc.Close()
	}
}

// warnShortKeys logs, by label, each webhook key shorter than
// leonardo.MinSubstringSecretLength: such a key is easy to guess, and
// redaction removes it from payloads only where it is a whole string.
func warnShortKeys(log *zap.Logger, keys []auth.Key) {
	for _, k := range keys {
		if len(k.Secret) < leonardo.MinSubstringSecretLength {
			log.Warn("webhook key is short; use a long random key",
				zap.String("key_label", k.Label),
				zap.Int("min_length", leonardo.MinSubstringSecretLength))
		}
	}
}
