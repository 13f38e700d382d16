package broker_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/genrelay/genrelay/pkg/broker"
	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/pkg/natstest"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		change  func(*broker.Config)
		wantErr bool
	}{
		{name: "defaults", change: func(*broker.Config) {}},
		{name: "three replicas", change: func(c *broker.Config) { c.Replicas = 3 }},
		{name: "zero replicas", change: func(c *broker.Config) { c.Replicas = 0 }, wantErr: true},
		{name: "six replicas", change: func(c *broker.Config) { c.Replicas = 6 }, wantErr: true},
		{name: "no duplicate window", change: func(c *broker.Config) { c.DuplicateWindow = 0 }, wantErr: true},
		{
			name:    "window longer than inbound age",
			change:  func(c *broker.Config) { c.InboundMaxAge = time.Minute },
			wantErr: true,
		},
		{name: "negative max age", change: func(c *broker.Config) { c.InboundMaxAge = -time.Hour }, wantErr: true},
		{name: "negative max bytes", change: func(c *broker.Config) { c.InboundMaxBytes = -5 }, wantErr: true},
		{name: "negative max msgs", change: func(c *broker.Config) { c.InboundMaxMsgs = -5 }, wantErr: true},
		{name: "negative results bytes", change: func(c *broker.Config) { c.ResultsMaxBytes = -1 }, wantErr: true},
		{
			name:   "unlimited ages",
			change: func(c *broker.Config) { c.InboundMaxAge, c.ResultsMaxAge = 0, 0 },
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := broker.DefaultConfig()
			tt.change(&cfg)

			err := cfg.Validate()
			if tt.wantErr && !errors.Is(err, broker.ErrInvalidConfig) {
				t.Fatalf("Validate() = %v, want ErrInvalidConfig", err)
			}
			if !tt.wantErr && err != nil {
				t.Fatalf("Validate() = %v, want nil", err)
			}
		})
	}
}

func TestResultSubject(t *testing.T) {
	const typ = "image_generation.complete"
	tests := []struct {
		outcome genrelayv1.Outcome
		want    string
	}{
		{genrelayv1.Outcome_OUTCOME_CLEAN, "genrelay.clean." + typ},
		{genrelayv1.Outcome_OUTCOME_REJECTED, "genrelay.rejected." + typ},
		{genrelayv1.Outcome_OUTCOME_REVIEW, "genrelay.review." + typ},
		{genrelayv1.Outcome_OUTCOME_FAILED, "genrelay.failed." + typ},
		{genrelayv1.Outcome_OUTCOME_UNHANDLED, "genrelay.unhandled." + typ},
		{genrelayv1.Outcome_OUTCOME_DEAD_LETTER, "genrelay.dlq." + typ},
		{genrelayv1.Outcome_OUTCOME_UNSPECIFIED, "genrelay.dlq." + typ},
	}

	for _, tt := range tests {
		if got := broker.ResultSubject(tt.outcome, typ); got != tt.want {
			t.Errorf("ResultSubject(%s) = %q, want %q", tt.outcome, got, tt.want)
		}
	}
}

func TestEnsureStreamsConcurrentAndIdempotent(t *testing.T) {
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx := context.Background()
	cfg := broker.DefaultConfig()

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() { errs <- broker.EnsureStreams(ctx, js, cfg) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("EnsureStreams: %v", err)
		}
	}

	cfg.InboundMaxMsgs = 10
	if err := broker.EnsureStreams(ctx, js, cfg); err != nil {
		t.Fatalf("EnsureStreams with new limits: %v", err)
	}

	info, err := stream(t, js, broker.InboundStream)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.MaxMsgs != 10 {
		t.Errorf("inbound MaxMsgs = %d, want 10 after update", info.Config.MaxMsgs)
	}
	if info.Config.Discard != jetstream.DiscardNew {
		t.Errorf("inbound Discard = %v, want DiscardNew", info.Config.Discard)
	}
}

func TestInboundStreamDeduplicatesAndRejectsWhenFull(t *testing.T) {
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx := context.Background()

	cfg := broker.DefaultConfig()
	cfg.InboundMaxMsgs = 2
	if err := broker.EnsureStreams(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}

	subject := broker.InboundSubject("leonardo", "image_generation.complete")
	publish := func(id string) (*jetstream.PubAck, error) {
		return js.Publish(ctx, subject, []byte(`{}`), jetstream.WithMsgID(id))
	}

	if _, err := publish("a"); err != nil {
		t.Fatalf("first publish: %v", err)
	}
	ack, err := publish("a")
	if err != nil {
		t.Fatalf("repeated publish: %v", err)
	}
	if !ack.Duplicate {
		t.Errorf("repeated publish: Duplicate = false, want true")
	}
	if _, err := publish("b"); err != nil {
		t.Fatalf("second message: %v", err)
	}
	if _, err := publish("c"); err == nil {
		t.Fatalf("publish to a full stream succeeded, want an error")
	}

	info, err := stream(t, js, broker.InboundStream)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2 {
		t.Errorf("inbound holds %d messages, want 2", info.State.Msgs)
	}
}

func TestEnsureVerdictBucket(t *testing.T) {
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx := context.Background()

	kv, err := broker.EnsureVerdictBucket(ctx, js, broker.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "image-1", []byte("clean")); err != nil {
		t.Fatalf("put: %v", err)
	}

	if _, err := broker.EnsureVerdictBucket(ctx, js, broker.DefaultConfig()); err != nil {
		t.Fatalf("second EnsureVerdictBucket: %v", err)
	}
	entry, err := kv.Get(ctx, "image-1")
	if err != nil {
		t.Fatalf("get after second ensure: %v", err)
	}
	if string(entry.Value()) != "clean" {
		t.Errorf("value = %q, want clean", entry.Value())
	}
}

func stream(t *testing.T, js jetstream.JetStream, name string) (*jetstream.StreamInfo, error) {
	t.Helper()

	s, err := js.Stream(context.Background(), name)
	if err != nil {
		return nil, err
	}
	return s.Info(context.Background())
}
