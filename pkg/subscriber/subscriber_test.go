package subscriber_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/genrelay/genrelay/pkg/broker"
	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/pkg/natstest"
	"github.com/genrelay/genrelay/pkg/subscriber"
)

const eventType = "image_generation.complete"

func TestRunDeliversSelectedOutcomes(t *testing.T) {
	js := setup(t)
	publish(t, js, "clean-1", genrelayv1.Outcome_OUTCOME_CLEAN)
	publish(t, js, "rejected-1", genrelayv1.Outcome_OUTCOME_REJECTED)
	publish(t, js, "clean-2", genrelayv1.Outcome_OUTCOME_CLEAN)

	got := collect(t, js, subscriber.Config{Durable: "default"}, 2, nil)

	if len(got) != 2 || got[0] != "clean-1" || got[1] != "clean-2" {
		t.Errorf("received %v, want [clean-1 clean-2]", got)
	}
}

func TestRunRetriesFailedHandler(t *testing.T) {
	js := setup(t)
	publish(t, js, "clean-1", genrelayv1.Outcome_OUTCOME_CLEAN)

	var calls int
	cfg := subscriber.Config{Durable: "retry", RetryDelay: 50 * time.Millisecond}
	got := collect(t, js, cfg, 2, func(*genrelayv1.Event) error {
		calls++
		if calls == 1 {
			return errors.New("downstream unavailable")
		}
		return nil
	})

	if len(got) != 2 || got[0] != "clean-1" || got[1] != "clean-1" {
		t.Errorf("deliveries %v, want clean-1 twice", got)
	}
}

func TestRunDropsPermanentFailuresAndBadEvents(t *testing.T) {
	js := setup(t)
	_, err := js.Publish(context.Background(), broker.ResultSubject(
		genrelayv1.Outcome_OUTCOME_CLEAN, eventType), []byte("not json"))
	if err != nil {
		t.Fatal(err)
	}
	publish(t, js, "poison", genrelayv1.Outcome_OUTCOME_CLEAN)
	publish(t, js, "good", genrelayv1.Outcome_OUTCOME_CLEAN)

	var mu sync.Mutex
	var reported []error
	cfg := subscriber.Config{
		Durable:    "permanent",
		RetryDelay: 50 * time.Millisecond,
		OnError: func(err error) {
			mu.Lock()
			defer mu.Unlock()
			reported = append(reported, err)
		},
	}
	got := collect(t, js, cfg, 2, func(e *genrelayv1.Event) error {
		if e.GetId() == "poison" {
			return fmt.Errorf("unknown customer: %w", subscriber.ErrPermanent)
		}
		return nil
	})

	if len(got) != 2 || got[0] != "poison" || got[1] != "good" {
		t.Fatalf("deliveries %v, want [poison good]", got)
	}

	// Neither the undecodable message nor the permanent failure may come
	// back: wait past the retry delay and check nothing else arrives.
	more := collect(t, js, cfg, 0, nil)
	if len(more) != 0 {
		t.Errorf("redelivered %v after a permanent failure", more)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 2 {
		t.Errorf("OnError called %d times (%v), want 2", len(reported), reported)
	}
}

func TestRunRejectsMissingDurable(t *testing.T) {
	js := setup(t)
	err := subscriber.Run(context.Background(), js, subscriber.Config{}, nil)
	if !errors.Is(err, subscriber.ErrInvalidConfig) {
		t.Fatalf("Run without Durable = %v, want ErrInvalidConfig", err)
	}
}

func setup(t *testing.T) jetstream.JetStream {
	t.Helper()

	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	if err := broker.EnsureStreams(context.Background(), js, broker.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	return js
}

func publish(t *testing.T, js jetstream.JetStream, id string, outcome genrelayv1.Outcome) {
	t.Helper()

	body, err := protojson.Marshal(&genrelayv1.Event{Id: id, Type: eventType, Outcome: outcome})
	if err != nil {
		t.Fatal(err)
	}
	_, err = js.Publish(context.Background(), broker.ResultSubject(outcome, eventType), body)
	if err != nil {
		t.Fatal(err)
	}
}

// collect runs a subscriber until it has seen want deliveries, or for one
// second when want is 0, and returns the event ids in delivery order.
func collect(
	t *testing.T,
	js jetstream.JetStream,
	cfg subscriber.Config,
	want int,
	handle func(*genrelayv1.Event) error,
) []string {
	t.Helper()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if want == 0 {
		ctx, cancel = context.WithTimeout(context.Background(), time.Second)
	}
	defer cancel()

	var mu sync.Mutex
	var ids []string
	err := subscriber.Run(ctx, js, cfg, func(_ context.Context, e *genrelayv1.Event) error {
		mu.Lock()
		ids = append(ids, e.GetId())
		if len(ids) == want {
			cancel()
		}
		mu.Unlock()

		if handle != nil {
			return handle(e)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	if want > 0 && len(ids) < want {
		t.Fatalf("received %v before the deadline, want %d deliveries", ids, want)
	}
	return ids
}
