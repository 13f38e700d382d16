package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/genrelay/genrelay/pkg/broker"
	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
)

// result is one event read back from the results stream.
type result struct {
	subject string
	body    []byte
	event   *genrelayv1.Event
}

// readResults reads the results stream from its first message to the last
// one stored when the call began, with an ordered consumer, and returns
// the events whose object id starts with prefix.
func (s *stack) readResults(ctx context.Context, prefix string) ([]result, error) {
	stream, err := s.js.Stream(ctx, broker.ResultsStream)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", broker.ResultsStream, err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("info of %s: %w", broker.ResultsStream, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil, nil
	}

	// Each read makes an ephemeral consumer. The server deletes it soon
	// after the read, so that they do not pile up across polls.
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		InactiveThreshold: 10 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("ordered consumer on %s: %w", broker.ResultsStream, err)
	}
	return fetchUntil(ctx, cons, last, prefix)
}

// fetchUntil reads cons until it has passed stream sequence last.
func fetchUntil(ctx context.Context, cons jetstream.Consumer, last uint64, prefix string) ([]result, error) {
	var results []result
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("read results: %w", err)
		}

		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, fmt.Errorf("fetch results: %w", err)
		}

		done := false
		for msg := range batch.Messages() {
			meta, err := msg.Metadata()
			if err != nil {
				return nil, fmt.Errorf("metadata of a result: %w", err)
			}
			r, err := decodeResult(msg)
			if err != nil {
				return nil, err
			}
			if strings.HasPrefix(r.event.GetObjectId(), prefix) {
				results = append(results, r)
			}
			done = meta.Sequence.Stream >= last
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return nil, fmt.Errorf("fetch results: %w", err)
		}
		if done {
			return results, nil
		}
	}
}

func decodeResult(msg jetstream.Msg) (result, error) {
	var event genrelayv1.Event
	if err := protojson.Unmarshal(msg.Data(), &event); err != nil {
		return result{}, fmt.Errorf("decode result on %s: %w", msg.Subject(), err)
	}
	return result{subject: msg.Subject(), body: msg.Data(), event: &event}, nil
}

// consumersDrained returns true when every consumer of the inbound stream
// has neither messages left to deliver nor deliveries awaiting an ack, so
// moderation will publish nothing more for the callbacks sent so far.
func (s *stack) consumersDrained(ctx context.Context) (bool, string) {
	stream, err := s.js.Stream(ctx, broker.InboundStream)
	if err != nil {
		return false, err.Error()
	}

	lister := stream.ListConsumers(ctx)
	var busy []string
	for info := range lister.Info() {
		if info.NumPending > 0 || info.NumAckPending > 0 {
			busy = append(busy, fmt.Sprintf("%s: %d pending, %d awaiting ack",
				info.Name, info.NumPending, info.NumAckPending))
		}
	}
	if err := lister.Err(); err != nil {
		return false, err.Error()
	}
	return len(busy) == 0, strings.Join(busy, "; ")
}
