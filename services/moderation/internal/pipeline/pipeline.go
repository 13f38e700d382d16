// Package pipeline turns one inbound callback into the events that
// moderation publishes. It decodes the callback, applies the policy, runs
// the optional screening step, stores every image's verdict and builds
// the events. Acknowledging and publishing belong to package worker.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/services/moderation/internal/policy"
	"github.com/genrelay/genrelay/services/moderation/internal/verdicts"
)

// Errors returned by Process. Failures of the verdict store wrap
// verdicts.ErrStore.
var (
	// ErrUndecodable is returned when the body, its envelope or its
	// data.object cannot be decoded. Retrying helps only if a newer
	// version of the service can read it.
	ErrUndecodable = errors.New("undecodable callback")
	// ErrScreening is returned when the screening step returns an error
	// instead of a decision for an image.
	ErrScreening = errors.New("image screening failed")
)

// Message is one inbound callback as the consumer received it.
type Message struct {
	// Subject is the inbound subject, genrelay.inbound.<source>.<type>.
	Subject string
	// Data is the body that ingress stored, secrets already redacted.
	Data []byte
	// MsgID is the Nats-Msg-Id header that ingress set, or empty.
	MsgID string
	// Sequence is the message's sequence in the inbound stream.
	Sequence uint64
	// ReceivedAt is when ingress accepted the callback.
	ReceivedAt time.Time
}

// Output is one event to publish.
type Output struct {
	// Subject is genrelay.<outcome>.<type>.
	Subject string
	// MsgID is the Nats-Msg-Id to publish with, equal to Event.Id.
	MsgID string
	Event *genrelayv1.Event
}

// Screener is the seam for a moderation step after the generator's
// flags, such as a third-party image moderation service. The pipeline
// calls it for every image that the policy found clean in an image or
// video generation, and applies each decision with policy.Result.Apply,
// which can make an image stricter but never cleaner.
type Screener interface {
	// Applies reports whether Screen should be called for the image.
	Applies(img ScreenImage) bool
	// Screen returns the decisions about one image, one per provider
	// consulted. It may take seconds and must call progress at least every
	// few seconds while it waits. It returns an error only when it has no
	// decision, for example when ctx is done, and the message is then
	// retried later.
	Screen(ctx context.Context, img ScreenImage, progress func()) ([]*genrelayv1.Decision, error)
}

// ScreenImage describes one image to Screener.
type ScreenImage struct {
	ID           string
	URL          string
	SDVersion    string
	ModelID      string
	GenerationID string
}

// VerdictStore keeps each image's outcome. *verdicts.Store implements it.
type VerdictStore interface {
	Get(ctx context.Context, imageID string) (verdicts.Verdict, bool, error)
	Put(ctx context.Context, imageID string, v verdicts.Verdict) error
}

// Config configures a Processor.
type Config struct {
	// Policy selects the action of each rule.
	Policy policy.Config
	// Verdicts stores image verdicts. Required.
	Verdicts VerdictStore
	// Screener, if not nil, checks images that the policy found clean.
	Screener Screener
	// Now returns the decision time. Default time.Now.
	Now func() time.Time
}

// Processor decides the outcome of inbound callbacks. It is safe for
// concurrent use.
type Processor struct {
	cfg Config
}

// New returns a Processor, or an error when cfg is incomplete.
func New(cfg Config) (*Processor, error) {
	if err := cfg.Policy.Validate(); err != nil {
		return nil, fmt.Errorf("new pipeline: %w", err)
	}
	if cfg.Verdicts == nil {
		return nil, errors.New("new pipeline: verdict store is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Processor{cfg: cfg}, nil
}

// subjectParts returns the source and event type from an inbound subject,
// with "unknown" for a part that is missing.
func subjectParts(subject string) (source, eventType string) {
	rest, ok := strings.CutPrefix(subject, inboundPrefix)
	if !ok {
		return "unknown", "unknown"
	}

	source, eventType, ok = strings.Cut(rest, ".")
	if source == "" {
		source = "unknown"
	}
	if !ok || eventType == "" {
		eventType = "unknown"
	}
	return source, eventType
}
