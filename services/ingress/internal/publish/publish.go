// Package publish stores callbacks in the JetStream inbound stream and
// reports whether that is possible right now.
//
// It turns NATS and JetStream failures into the two errors the HTTP layer
// needs: ErrUnavailable (try again later) and ErrTooLarge (never fits).
package publish

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/genrelay/genrelay/pkg/broker"
	"github.com/genrelay/genrelay/pkg/natsconn"
)

// Errors returned by Publisher.Publish, wrapping the NATS error.
var (
	// ErrUnavailable is returned when JetStream did not acknowledge the
	// message: NATS is disconnected, the publish timed out, no stream
	// responded, or the stream is full and rejects new messages. The
	// message may still have been stored, so the sender should repeat it
	// with the same message id.
	ErrUnavailable = errors.New("event store unavailable")
	// ErrTooLarge is returned when the message exceeds the NATS maximum
	// payload or the stream's maximum message size; repeating it fails
	// the same way.
	ErrTooLarge = errors.New("message too large for the event store")
)

// Message is one callback to store.
type Message struct {
	// Subject is the inbound subject, from broker.InboundSubject.
	Subject string
	// MsgID is the de-duplication id, sent as Nats-Msg-Id.
	MsgID string
	// KeyLabel names the webhook key that authenticated the callback;
	// empty when authentication is off, and then the header is omitted.
	KeyLabel string
	// RequestID is the HTTP request id.
	RequestID string
	// ReceivedAt is when the request arrived.
	ReceivedAt time.Time
	// Body is the redacted JSON callback.
	Body []byte
}

// Ack is JetStream's acknowledgement of a stored message.
type Ack struct {
	// Stream is the stream that stored the message.
	Stream string
	// Sequence is the message's stream sequence; for a duplicate, the
	// sequence of the message stored first.
	Sequence uint64
	// Duplicate is true when the stream already held a message with the
	// same id within its duplicate window, so nothing new was stored.
	Duplicate bool
}

// Publisher publishes messages and waits for JetStream to acknowledge
// them. It is safe for concurrent use.
type Publisher struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	timeout time.Duration
}

// NewPublisher returns a publisher that waits at most timeout for each
// acknowledgement.
func NewPublisher(
	nc *nats.Conn,
	js jetstream.JetStream,
	timeout time.Duration,
) *Publisher {
	return &Publisher{nc: nc, js: js, timeout: timeout}
}

// Publish stores m and returns the acknowledgement, which counts a
// duplicate as success. It fails at once while NATS is disconnected,
// rather than leaving the message in the reconnect buffer where it could
// be stored after Publish returned an error.
func (p *Publisher) Publish(ctx context.Context, m Message) (Ack, error) {
	if !p.nc.IsConnected() {
		return Ack{}, fmt.Errorf("publish %s: %w: %w",
			m.MsgID, ErrUnavailable, natsconn.ErrNotConnected)
	}

	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()

	ack, err := p.js.PublishMsg(ctx, m.natsMsg())
	if err != nil {
		return Ack{}, fmt.Errorf("publish %s: %w", m.MsgID, p.translate(err))
	}
	return Ack{Stream: ack.Stream, Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

func (m Message) natsMsg() *nats.Msg {
	msg := nats.NewMsg(m.Subject)
	msg.Data = m.Body
	msg.Header.Set(broker.HeaderMsgID, m.MsgID)
	msg.Header.Set(broker.HeaderReceivedAt, m.ReceivedAt.UTC().Format(time.RFC3339Nano))
	msg.Header.Set(broker.HeaderRequestID, m.RequestID)
	msg.Header.Set(broker.HeaderContentType, "application/json")
	if m.KeyLabel != "" {
		msg.Header.Set(broker.HeaderKeyLabel, m.KeyLabel)
	}
	return msg
}

// translate maps a publish error to ErrUnavailable or ErrTooLarge, and
// returns other errors unchanged.
func (p *Publisher) translate(err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return fmt.Errorf("%w: no acknowledgement within %s: %w",
			ErrUnavailable, p.timeout, err)
	case errors.Is(err, nats.ErrMaxPayload),
		isAPIError(err, jetstream.JSErrCodeStreamMessageExceedsMaximum):
		return fmt.Errorf("%w: %w", ErrTooLarge, err)
	case isConnectionError(err), isStoreUnavailable(err):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	default:
		return err
	}
}

func isConnectionError(err error) bool {
	for _, target := range []error{
		jetstream.ErrNoStreamResponse, nats.ErrNoResponders,
		nats.ErrConnectionClosed, nats.ErrConnectionDraining,
		nats.ErrConnectionReconnecting, nats.ErrDisconnected,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// isStoreUnavailable reports a JetStream API error with HTTP-like code
// 503. nats-server v2.15 returns it, with error code 10077 and the text
// "maximum messages exceeded" or "maximum bytes exceeded", when a
// discard-new stream is full.
func isStoreUnavailable(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.Code == http.StatusServiceUnavailable
}

func isAPIError(err error, code jetstream.ErrorCode) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == code
}
