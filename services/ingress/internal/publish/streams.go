package publish

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/genrelay/genrelay/pkg/broker"
	"github.com/genrelay/genrelay/pkg/natsconn"
)

// Retry timing of stream setup.
const (
	setupRetryMin      = 250 * time.Millisecond
	setupRetryMax      = 5 * time.Second
	setupAttemptTime   = 5 * time.Second
	setupLogEveryTries = 10
)

// StreamKeeper creates or updates the genrelay streams, retrying until it
// succeeds, at start-up and again after each reconnect: a NATS server
// that comes back with an empty store gets its streams back without a
// restart of ingress.
type StreamKeeper struct {
	cfg     broker.Config
	log     *zap.Logger
	trigger chan struct{}
}

// NewStreamKeeper returns a keeper for the streams that cfg describes.
// It exists before the NATS connection does, so that the connection's
// reconnect handler can call Trigger.
func NewStreamKeeper(cfg broker.Config, log *zap.Logger) *StreamKeeper {
	return &StreamKeeper{cfg: cfg, log: log, trigger: make(chan struct{}, 1)}
}

// Trigger makes Run set the streams up again. It never blocks, and
// several calls before Run reads them count as one.
func (k *StreamKeeper) Trigger() {
	select {
	case k.trigger <- struct{}{}:
	default:
	}
}

// Run sets the streams up through js, then again after each Trigger,
// until ctx ends.
func (k *StreamKeeper) Run(ctx context.Context, js jetstream.JetStream) {
	for {
		k.ensure(ctx, js)

		select {
		case <-ctx.Done():
			return
		case <-k.trigger:
		}
	}
}

// ensure calls broker.EnsureStreams until it succeeds or ctx ends,
// logging the first failure and every tenth after it.
func (k *StreamKeeper) ensure(ctx context.Context, js jetstream.JetStream) {
	wait := setupRetryMin
	for attempt := 1; ; attempt++ {
		err := k.ensureOnce(ctx, js)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			k.log.Info("streams ready", zap.Int("attempts", attempt),
				zap.Strings("streams", streamNames()))
			return
		}

		if attempt == 1 || attempt%setupLogEveryTries == 0 {
			k.log.Warn("stream setup failed, retrying", zap.Int("attempts", attempt),
				zap.Duration("retry_in", wait), zap.Error(err))
		}

		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, setupRetryMax)
	}
}

// ensureOnce fails at once while NATS is disconnected, instead of
// waiting for a timeout with the requests in the reconnect buffer.
func (k *StreamKeeper) ensureOnce(ctx context.Context, js jetstream.JetStream) error {
	if !js.Conn().IsConnected() {
		return natsconn.ErrNotConnected
	}

	ctx, cancel := context.WithTimeout(ctx, setupAttemptTime)
	defer cancel()

	return broker.EnsureStreams(ctx, js, k.cfg)
}

func streamNames() []string {
	return []string{broker.InboundStream, broker.ResultsStream}
}
