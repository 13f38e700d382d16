// Package worker runs moderation's durable pull consumer on the inbound
// stream: it fetches callbacks into a bounded pool of workers, hands each
// to the pipeline, publishes the events, and acknowledges the callback
// only after JetStream has stored every event. Failures are retried with
// a backoff schedule up to a delivery limit, then dead-lettered.
package worker

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/genrelay/genrelay/pkg/broker"
)

// ErrInvalidConfig is returned by New when a Config field is out of range.
var ErrInvalidConfig = errors.New("invalid worker config")

// Config configures the consumer and the worker pool.
type Config struct {
	// Durable is the consumer name. Replicas that share it share the
	// work. Default "genrelay-moderation".
	Durable string
	// AckWait is the shortest time the server waits for an
	// acknowledgement or a progress signal before it redelivers a
	// message. Default 30s.
	AckWait time.Duration
	// MaxDeliver is the number of deliveries of one message. When
	// processing fails at the last one, the message is dead-lettered.
	// Default 10.
	MaxDeliver int
	// Backoff is the delay before each redelivery after a failure: the
	// first value after the first delivery, and so on, the last value
	// repeating. It is applied with NakWithDelay and not set as the
	// consumer's BackOff too: with both set, nats-server 2.15.3 waited
	// longer than the schedule. A delivery that is neither acknowledged
	// nor in progress, as after a crash, is redelivered after AckWait.
	// Default 1s, 5s, 15s, 30s, 1m, 2m, 5m, 10m, 10m.
	Backoff []time.Duration
	// MaxInFlight bounds the messages delivered and not yet acknowledged,
	// across all replicas (the consumer's MaxAckPending). Default 64.
	MaxInFlight int
	// Workers is the number of messages one replica processes at once.
	// Default 8.
	Workers int
	// PublishTimeout bounds each publish and acknowledgement. Default 5s.
	PublishTimeout time.Duration
	// ShutdownTimeout bounds the wait for messages in flight at shutdown.
	// The ones still running then are returned for redelivery. Default
	// 20s.
	ShutdownTimeout time.Duration
	// FetchWait is how long one pull request waits for messages, and so
	// the longest delay before a stop request is noticed. Default 1s.
	FetchWait time.Duration
}

// DefaultConfig returns the defaults that Config documents.
func DefaultConfig() Config {
	return Config{
		Durable:    "genrelay-moderation",
		AckWait:    30 * time.Second,
		MaxDeliver: 10,
		Backoff: []time.Duration{
			time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second,
			time.Minute, 2 * time.Minute, 5 * time.Minute,
			10 * time.Minute, 10 * time.Minute,
		},
		MaxInFlight:     64,
		Workers:         8,
		PublishTimeout:  5 * time.Second,
		ShutdownTimeout: 20 * time.Second,
		FetchWait:       time.Second,
	}
}

// Validate returns ErrInvalidConfig, with the field, for a value out of
// range.
func (c Config) Validate() error {
	checks := []struct {
		bad  bool
		text string
	}{
		{c.Durable == "", "consumer name must be set"},
		{c.AckWait <= 0, "ack wait must be positive"},
		{c.MaxDeliver < 1, "max deliver must be at least 1"},
		{len(c.Backoff) == 0, "retry backoff needs at least one value"},
		{c.MaxInFlight < 1, "max in flight must be at least 1"},
		{c.Workers < 1, "workers must be at least 1"},
		{c.PublishTimeout <= 0, "publish timeout must be positive"},
		{c.ShutdownTimeout < 0, "shutdown timeout must not be negative"},
		{c.FetchWait <= 0, "fetch wait must be positive"},
	}
	for _, check := range checks {
		if check.bad {
			return fmt.Errorf("%w: %s", ErrInvalidConfig, check.text)
		}
	}
	for _, d := range c.Backoff {
		if d <= 0 {
			return fmt.Errorf("%w: retry backoff value %s must be positive", ErrInvalidConfig, d)
		}
	}
	return nil
}

// ConsumerConfig returns the durable pull consumer's configuration.
func (c Config) ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       c.Durable,
		Description:   "genrelay moderation of inbound callbacks",
		FilterSubject: broker.InboundPrefix + ".>",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    c.MaxDeliver,
		MaxAckPending: c.MaxInFlight,
	}
}

// retryDelay returns the delay before redelivering a message whose given
// delivery, counted from 1, failed.
func (c Config) retryDelay(delivery uint64) time.Duration {
	return pick(c.Backoff, delivery)
}

func pick(schedule []time.Duration, delivery uint64) time.Duration {
	i := min(int(max(delivery, 1)-1), len(schedule)-1)
	return schedule[i]
}
