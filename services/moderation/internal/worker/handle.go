package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/genrelay/genrelay/pkg/broker"
	"github.com/genrelay/genrelay/services/moderation/internal/pipeline"
)

// Values of the headers set on every published event.
const (
	contentTypeJSON = "application/json"
	eventSchema     = "genrelay.v1.Event"
)

// handle processes one message: it publishes its events and acknowledges
// it, or returns it for redelivery, or dead-letters it at the last
// delivery. ctx is done only when shutdown gives up on the message.
func (w *Worker) handle(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		w.log.Error("message without jetstream metadata, terminated",
			zap.String("subject", msg.Subject()), zap.Error(err))
		_ = msg.Term()
		return
	}

	in := message(msg, meta)
	log := w.log.With(
		zap.String("message_id", in.MsgID),
		zap.String("request_id", msg.Headers().Get(broker.HeaderRequestID)),
		zap.Uint64("inbound_sequence", in.Sequence),
		zap.Uint64("delivery", meta.NumDelivered),
	)

	keepAlive := startKeepAlive(msg, w.cfg.AckWait)
	defer keepAlive.stop()

	outputs, err := w.proc.Process(ctx, in, keepAlive.touch)
	if err == nil {
		err = w.publishAll(ctx, outputs, log)
	}
	if err != nil {
		w.fail(ctx, msg, meta, in, err, log)
		return
	}
	w.ack(ctx, msg, log)
}

// message converts a JetStream message for the pipeline. ReceivedAt comes
// from the header that ingress sets, else from the stream's timestamp.
func message(msg jetstream.Msg, meta *jetstream.MsgMetadata) pipeline.Message {
	received, err := time.Parse(time.RFC3339Nano, msg.Headers().Get(broker.HeaderReceivedAt))
	if err != nil {
		received = meta.Timestamp
	}
	return pipeline.Message{
		Subject:    msg.Subject(),
		Data:       msg.Data(),
		MsgID:      msg.Headers().Get(broker.HeaderMsgID),
		Sequence:   meta.Sequence.Stream,
		ReceivedAt: received.UTC(),
	}
}

// fail returns a failed message for redelivery after the backoff delay,
// or dead-letters it when this was its last delivery.
func (w *Worker) fail(ctx context.Context, msg jetstream.Msg,
	meta *jetstream.MsgMetadata, in pipeline.Message, cause error, log *zap.Logger,
) {
	switch {
	case ctx.Err() != nil:
		log.Info("message returned at shutdown", zap.Error(cause))
		w.nak(msg, 0, log)
	case meta.NumDelivered >= uint64(w.cfg.MaxDeliver):
		w.deadLetter(msg, in, cause, log)
	default:
		delay := w.cfg.retryDelay(meta.NumDelivered)
		log.Warn("message processing failed, retrying",
			zap.Duration("retry_in", delay), zap.Error(cause))
		w.nak(msg, delay, log)
	}
}

// deadLetter publishes the dead-letter event for a message at its last
// delivery and acknowledges the message. If even that publish fails, the
// message stays in the inbound stream, and no further delivery follows.
//
// NOTE: a last delivery that times out, because its replica died, gets
// no dead-letter event: JetStream only sends a MAX_DELIVERIES advisory,
// which nothing consumes yet.
func (w *Worker) deadLetter(msg jetstream.Msg, in pipeline.Message, cause error, log *zap.Logger) {
	out := w.proc.DeadLetter(in, cause)
	log = log.With(zap.String("event_id", out.MsgID),
		zap.String("object_id", out.Event.GetObjectId()),
		zap.String("type", out.Event.GetType()))

	// The message is past its redelivery limit, so shutdown does not
	// cancel this publish: it gets its own timeout.
	if err := w.publishAll(context.Background(), []pipeline.Output{out}, log); err != nil {
		log.Error("message dropped at the redelivery limit, it stays in the inbound stream",
			zap.NamedError("cause", cause), zap.Error(err))
		w.nak(msg, 0, log)
		return
	}
	log.Error("message dead-lettered at the redelivery limit", zap.Error(cause))
	w.ack(context.Background(), msg, log)
}

// publishAll publishes the outputs in order and logs one line per event.
// It returns the first publish error.
func (w *Worker) publishAll(ctx context.Context, outputs []pipeline.Output, log *zap.Logger) error {
	for _, out := range outputs {
		ack, err := w.publish(ctx, out)
		if err != nil {
			return err
		}
		logPublished(log, out, ack.Duplicate)
	}
	return nil
}

func (w *Worker) publish(ctx context.Context, out pipeline.Output) (*jetstream.PubAck, error) {
	data, err := protojson.Marshal(out.Event)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", out.MsgID, err)
	}

	msg := nats.NewMsg(out.Subject)
	msg.Data = data
	msg.Header.Set(broker.HeaderContentType, contentTypeJSON)
	msg.Header.Set(broker.HeaderSchema, eventSchema)

	ctx, cancel := context.WithTimeout(ctx, w.cfg.PublishTimeout)
	defer cancel()
	ack, err := w.js.PublishMsg(ctx, msg,
		jetstream.WithMsgID(out.MsgID),
		jetstream.WithExpectStream(broker.ResultsStream))
	if err != nil {
		return nil, fmt.Errorf("publish event %s: %w", out.MsgID, err)
	}
	return ack, nil
}

func logPublished(log *zap.Logger, out pipeline.Output, duplicate bool) {
	ce := log.Check(zap.InfoLevel, "event published")
	if ce == nil {
		return
	}

	ev := out.Event
	ce.Write(
		zap.String("event_id", ev.GetId()),
		zap.String("type", ev.GetType()),
		zap.String("object_id", ev.GetObjectId()),
		zap.String("source_image_id", ev.GetSourceImageId()),
		zap.String("outcome", pipeline.OutcomeName(ev.GetOutcome())),
		zap.Int("image_count", len(ev.GetImages())),
		zap.Int32("removed_count", ev.GetRemovedCount()),
		zap.String("reason", ev.GetReason()),
		zap.Bool("duplicate", duplicate),
	)
}

// ack acknowledges the message and waits for the server to confirm, so
// that a lost acknowledgement is logged rather than silently redelivered.
func (w *Worker) ack(ctx context.Context, msg jetstream.Msg, log *zap.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.PublishTimeout)
	defer cancel()

	if err := msg.DoubleAck(ctx); err != nil {
		log.Warn("acknowledge message failed, it will be redelivered and its events deduplicated",
			zap.Error(err))
	}
}

// nak returns the message for redelivery after delay, at once when delay
// is 0.
func (w *Worker) nak(msg jetstream.Msg, delay time.Duration, log *zap.Logger) {
	var err error
	if delay > 0 {
		err = msg.NakWithDelay(delay)
	} else {
		err = msg.Nak()
	}
	if err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		log.Warn("return message for redelivery failed, it will be redelivered after the ack wait",
			zap.Error(err))
	}
}
