// Package broker holds the JetStream layout that every genrelay component
// shares: subject names, stream and bucket names, message headers, and the
// code that creates or updates the streams at start-up.
package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream and bucket names.
const (
	// InboundStream stores callbacks as ingress received them, redacted.
	InboundStream = "GENRELAY_INBOUND"
	// ResultsStream stores every event that moderation publishes.
	ResultsStream = "GENRELAY_RESULTS"
	// ImageVerdictBucket maps an image id to the outcome moderation gave
	// it, so that post-processing results inherit their source's verdict.
	ImageVerdictBucket = "genrelay_image_verdicts"
)

// Subject prefixes. Each subject ends with the event type, which may
// itself contain dots, so consumers filter with ">" rather than "*".
const (
	InboundPrefix    = "genrelay.inbound"
	CleanPrefix      = "genrelay.clean"
	RejectedPrefix   = "genrelay.rejected"
	ReviewPrefix     = "genrelay.review"
	FailedPrefix     = "genrelay.failed"
	UnhandledPrefix  = "genrelay.unhandled"
	DeadLetterPrefix = "genrelay.dlq"
)

// Message headers set by genrelay in addition to the JetStream ones.
const (
	// HeaderMsgID is JetStream's de-duplication header.
	HeaderMsgID = jetstream.MsgIDHeader
	// HeaderReceivedAt is when ingress accepted the callback, RFC 3339
	// with nanoseconds, UTC.
	HeaderReceivedAt = "Genrelay-Received-At"
	// HeaderKeyLabel names the webhook key that authenticated the
	// callback. It is the operator's label, never the key.
	HeaderKeyLabel = "Genrelay-Key-Label"
	// HeaderRequestID is the ingress request id, for tracing a callback
	// from the HTTP log to the stored message.
	HeaderRequestID = "Genrelay-Request-Id"
	// HeaderSchema names the protobuf message in the body of results.
	HeaderSchema = "Genrelay-Schema"
	// HeaderContentType is the encoding of the body.
	HeaderContentType = "Content-Type"
)

// InboundSubject returns the subject for a callback of the given source
// and type, for example genrelay.inbound.leonardo.image_generation.complete.
func InboundSubject(source, eventType string) string {
	return InboundPrefix + "." + source + "." + eventType
}

// Config sizes the streams. Zero values take the defaults that
// DefaultConfig documents.
type Config struct {
	// Replicas per stream and bucket: 1 on a single server, 3 on a
	// three-node cluster.
	Replicas int
	// DuplicateWindow is how long a message id is remembered, so that a
	// callback repeated within it is stored once.
	DuplicateWindow time.Duration
	// InboundMaxAge, InboundMaxBytes and InboundMaxMsgs bound the inbound
	// stream. When it is full, new publishes fail rather than evicting
	// callbacks that moderation has not processed yet.
	InboundMaxAge   time.Duration
	InboundMaxBytes int64
	InboundMaxMsgs  int64
	// ResultsMaxAge and ResultsMaxBytes bound the results stream, which
	// drops its oldest events when full.
	ResultsMaxAge   time.Duration
	ResultsMaxBytes int64
	// VerdictTTL is how long an image verdict is kept for the
	// post-processing results that may follow it.
	VerdictTTL time.Duration
}

// DefaultConfig returns the defaults: one replica, a two-hour duplicate
// window, inbound kept 7 days up to 1 GiB or one million messages, results
// kept 7 days up to 1 GiB, and image verdicts kept 30 days.
func DefaultConfig() Config {
	return Config{
		Replicas:        1,
		DuplicateWindow: 2 * time.Hour,
		InboundMaxAge:   7 * 24 * time.Hour,
		InboundMaxBytes: 1 << 30,
		InboundMaxMsgs:  1_000_000,
		ResultsMaxAge:   7 * 24 * time.Hour,
		ResultsMaxBytes: 1 << 30,
		VerdictTTL:      30 * 24 * time.Hour,
	}
}

// ErrInvalidConfig is returned by Config.Validate.
var ErrInvalidConfig = errors.New("invalid broker config")

// Validate reports settings that JetStream would reject or that would lose
// data silently.
func (c Config) Validate() error {
	switch {
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("%w: replicas %d must be between 1 and 5", ErrInvalidConfig, c.Replicas)
	case c.InboundMaxAge < 0 || c.ResultsMaxAge < 0 || c.VerdictTTL < 0:
		return fmt.Errorf("%w: max ages and the verdict TTL must not be negative", ErrInvalidConfig)
	case c.InboundMaxBytes < 0 || c.InboundMaxMsgs < 0 || c.ResultsMaxBytes < 0:
		return fmt.Errorf("%w: stream size limits must not be negative (0 = no limit)", ErrInvalidConfig)
	case c.DuplicateWindow <= 0:
		return fmt.Errorf("%w: duplicate window must be positive", ErrInvalidConfig)
	case c.InboundMaxAge > 0 && c.DuplicateWindow > c.InboundMaxAge:
		return fmt.Errorf("%w: duplicate window %s exceeds inbound max age %s",
			ErrInvalidConfig, c.DuplicateWindow, c.InboundMaxAge)
	case c.ResultsMaxAge > 0 && c.DuplicateWindow > c.ResultsMaxAge:
		return fmt.Errorf("%w: duplicate window %s exceeds results max age %s",
			ErrInvalidConfig, c.DuplicateWindow, c.ResultsMaxAge)
	}
	return nil
}

// InboundStreamConfig returns the inbound stream's configuration.
func (c Config) InboundStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        InboundStream,
		Description: "genrelay callbacks as received, secrets redacted",
		Subjects:    []string{InboundPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		Replicas:    c.Replicas,
		Duplicates:  c.DuplicateWindow,
		MaxAge:      c.InboundMaxAge,
		MaxBytes:    nonZero(c.InboundMaxBytes),
		MaxMsgs:     nonZero(c.InboundMaxMsgs),
	}
}

// ResultsStreamConfig returns the results stream's configuration.
func (c Config) ResultsStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        ResultsStream,
		Description: "genrelay moderation outcomes",
		Subjects: []string{
			CleanPrefix + ".>", RejectedPrefix + ".>", ReviewPrefix + ".>",
			FailedPrefix + ".>", UnhandledPrefix + ".>", DeadLetterPrefix + ".>",
		},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		Discard:    jetstream.DiscardOld,
		Replicas:   c.Replicas,
		Duplicates: c.DuplicateWindow,
		MaxAge:     c.ResultsMaxAge,
		MaxBytes:   nonZero(c.ResultsMaxBytes),
	}
}

// VerdictBucketConfig returns the image verdict bucket's configuration.
func (c Config) VerdictBucketConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      ImageVerdictBucket,
		Description: "genrelay moderation outcome per image id",
		TTL:         c.VerdictTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		History:     1,
	}
}

// EnsureStreams creates the inbound and results streams, or updates them
// to cfg when they exist. Several processes may call it at once.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}

	for _, sc := range []jetstream.StreamConfig{cfg.InboundStreamConfig(), cfg.ResultsStreamConfig()} {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("create or update stream %s: %w", sc.Name, err)
		}
	}
	return nil
}

// EnsureVerdictBucket creates the image verdict bucket, or updates it to
// cfg when it exists, and returns it.
func EnsureVerdictBucket(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, cfg.VerdictBucketConfig())
	if err != nil {
		return nil, fmt.Errorf("create or update bucket %s: %w", ImageVerdictBucket, err)
	}
	return kv, nil
}

// nonZero maps 0 ("use the default") to -1, JetStream's "unlimited", so
// that a zero limit in Config never means "store nothing".
func nonZero(n int64) int64 {
	if n == 0 {
		return -1
	}
	return n
}
