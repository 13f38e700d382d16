// Package subscriber consumes genrelay results from JetStream through a
// durable consumer and hands each event to a typed callback, acknowledging
// it when the callback succeeds.
//
// Several processes that use the same Durable name share the work: each
// event goes to one of them. Events arrive at least once, so a handler
// should be idempotent; Event.Id is stable across redeliveries.
package subscriber

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/genrelay/genrelay/pkg/broker"
	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
)

// Handler processes one event. Returning nil acknowledges it; returning an
// error redelivers it after Config.RetryDelay, unless the error wraps
// ErrPermanent, which drops it.
type Handler func(ctx context.Context, event *genrelayv1.Event) error

// ErrPermanent marks a handler error that retrying cannot fix. Wrap it:
// fmt.Errorf("unknown customer %s: %w", id, subscriber.ErrPermanent).
var ErrPermanent = errors.New("permanent failure")

// ErrInvalidConfig is returned by Run when the Config is unusable.
var ErrInvalidConfig = errors.New("invalid subscriber config")

// Config selects the events to receive and bounds the work in flight.
type Config struct {
	// Durable is the consumer name. It must be set; processes sharing it
	// share the events, and a restarted process resumes where it stopped.
	Durable string
	// Outcomes to receive. Default: OUTCOME_CLEAN only.
	Outcomes []genrelayv1.Outcome
	// MaxInFlight is the number of events delivered but not yet
	// acknowledged. Default 64.
	MaxInFlight int
	// AckWait is how long the server waits for an acknowledgement before
	// redelivering. Default 30s. Handlers that run longer should return
	// quickly and process in the background.
	AckWait time.Duration
	// MaxDeliver caps deliveries of one event; -1 means no cap. Default -1,
	// so an event is never dropped because a handler kept failing.
	MaxDeliver int
	// RetryDelay is the wait before redelivering an event whose handler
	// failed. Default 5s.
	RetryDelay time.Duration
	// OnError receives errors that Run handles itself: undecodable events
	// (dropped), handler errors (retried or dropped) and failed
	// acknowledgements. Default: errors are discarded.
	OnError func(err error)
}

func (c *Config) setDefaults() error {
	if c.Durable == "" {
		return fmt.Errorf("%w: Durable must be set", ErrInvalidConfig)
	}
	if len(c.Outcomes) == 0 {
		c.Outcomes = []genrelayv1.Outcome{genrelayv1.Outcome_OUTCOME_CLEAN}
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 64
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = -1
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = 5 * time.Second
	}
	if c.OnError == nil {
		c.OnError = func(error) {}
	}
	return nil
}

func (c *Config) consumerConfig() jetstream.ConsumerConfig {
	filters := make([]string, 0, len(c.Outcomes))
	for _, o := range c.Outcomes {
		filters = append(filters, broker.OutcomeFilter(o))
	}

	return jetstream.ConsumerConfig{
		Durable:        c.Durable,
		Description:    "genrelay subscriber",
		FilterSubjects: filters,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        c.AckWait,
		MaxDeliver:     c.MaxDeliver,
		MaxAckPending:  c.MaxInFlight,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
}

// Run creates or updates the durable consumer and delivers events to
// handle until ctx is done. It returns nil after ctx is cancelled, or an
// error if the consumer cannot be set up.
func Run(ctx context.Context, js jetstream.JetStream, cfg Config, handle Handler) error {
	if err := cfg.setDefaults(); err != nil {
		return err
	}

	cons, err := js.CreateOrUpdateConsumer(ctx, broker.ResultsStream, cfg.consumerConfig())
	if err != nil {
		return fmt.Errorf("create consumer %s on %s: %w", cfg.Durable, broker.ResultsStream, err)
	}

	cc, err := cons.Consume(
		func(msg jetstream.Msg) { deliver(ctx, cfg, msg, handle) },
		jetstream.PullMaxMessages(cfg.MaxInFlight),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			cfg.OnError(fmt.Errorf("consume %s: %w", cfg.Durable, err))
		}),
	)
	if err != nil {
		return fmt.Errorf("consume %s: %w", cfg.Durable, err)
	}

	<-ctx.Done()
	cc.Drain()
	<-cc.Closed()

	return nil
}

func deliver(ctx context.Context, cfg Config, msg jetstream.Msg, handle Handler) {
	var event genrelayv1.Event
	if err := protojson.Unmarshal(msg.Data(), &event); err != nil {
		cfg.OnError(fmt.Errorf("decode event on %s: %w", msg.Subject(), err))
		ack(cfg, msg, msg.Term)
		return
	}

	err := handle(ctx, &event)
	switch {
	case err == nil:
		ack(cfg, msg, msg.Ack)
	case errors.Is(err, ErrPermanent):
		cfg.OnError(fmt.Errorf("handle event %s, dropped: %w", event.GetId(), err))
		ack(cfg, msg, msg.Term)
	default:
		cfg.OnError(fmt.Errorf("handle event %s, retrying in %s: %w", event.GetId(), cfg.RetryDelay, err))
		ack(cfg, msg, func() error { return msg.NakWithDelay(cfg.RetryDelay) })
	}
}

func ack(cfg Config, msg jetstream.Msg, op func() error) {
	if err := op(); err != nil {
		cfg.OnError(fmt.Errorf("acknowledge message on %s: %w", msg.Subject(), err))
	}
}
