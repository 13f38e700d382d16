package verdicts

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/genrelay/genrelay/pkg/broker"
	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/pkg/natstest"
)

func TestKey(t *testing.T) {
	tests := []struct {
		id       string
		expected string
	}{
		{"57124242-5051-41cc-917f-9acae01f5057", "57124242-5051-41cc-917f-9acae01f5057"},
		{"a_b=c.d", "a_b=c.d"},
		{"=abc", "=PWFiYw"},
		{"a b", "=YSBi"},
		{"a.b.", "=YS5iLg"},
		{".ab", "=LmFi"},
		{"a..b", "=YS4uYg"},
		{"a*b>c", "=YSpiPmM"},
		{"x/y", "=eC95"},
		{"ü", "=w7w"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			got, err := Key(tt.id)
			if err != nil {
				t.Fatalf("Key(%q): %v", tt.id, err)
			}
			if got != tt.expected {
				t.Errorf("Key(%q) = %q, expected %q", tt.id, got, tt.expected)
			}
		})
	}

	if _, err := Key(""); !errors.Is(err, ErrEmptyImageID) {
		t.Errorf("Key(\"\") error = %v, expected ErrEmptyImageID", err)
	}
}

func startStore(t *testing.T) (*Store, jetstream.KeyValue) {
	t.Helper()

	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)

	kv, err := broker.EnsureVerdictBucket(ctx, js, broker.DefaultConfig())
	if err != nil {
		t.Fatalf("ensure bucket: %v", err)
	}
	return New(kv), kv
}

func TestStoreRoundTrip(t *testing.T) {
	store, _ := startStore(t)
	ctx := context.Background()
	decided := time.Date(2025, 3, 19, 10, 30, 0, 0, time.UTC)

	ids := []string{"57124242-5051-41cc-917f-9acae01f5057", "odd id/with*chars", "a..b"}
	for i, id := range ids {
		put := Verdict{
			Outcome:   genrelayv1.Outcome(i + 1),
			Reason:    "reason " + id,
			EventID:   "event-" + id,
			DecidedAt: decided,
		}
		if err := store.Put(ctx, id, put); err != nil {
			t.Fatalf("Put(%q): %v", id, err)
		}

		got, ok, err := store.Get(ctx, id)
		if err != nil || !ok {
			t.Fatalf("Get(%q) = %v, %v", id, ok, err)
		}
		if got != put {
			t.Errorf("Get(%q) = %+v, expected %+v", id, got, put)
		}
	}
}

func TestStoreMissingAndUnreadable(t *testing.T) {
	store, kv := startStore(t)
	ctx := context.Background()

	if _, ok, err := store.Get(ctx, "never-seen"); ok || err != nil {
		t.Errorf("Get of a missing id = %v, %v; expected false, nil", ok, err)
	}

	values := map[string]string{
		"not-json":        "{",
		"unknown-outcome": `{"outcome":"OUTCOME_MAYBE"}`,
	}
	for id, value := range values {
		if _, err := kv.PutString(ctx, id, value); err != nil {
			t.Fatalf("put raw value: %v", err)
		}
		if _, ok, err := store.Get(ctx, id); ok || err != nil {
			t.Errorf("Get of %s = %v, %v; expected false, nil", id, ok, err)
		}
	}
}

func TestStoreUnavailable(t *testing.T) {
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	kv, err := broker.EnsureVerdictBucket(context.Background(), js, broker.DefaultConfig())
	if err != nil {
		t.Fatalf("ensure bucket: %v", err)
	}
	store := New(kv)
	srv.Shutdown()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _, err = store.Get(ctx, "img")
	if !errors.Is(err, ErrStore) {
		t.Errorf("Get with NATS down: error = %v, expected ErrStore", err)
	}
	err = store.Put(ctx, "img", Verdict{Outcome: genrelayv1.Outcome_OUTCOME_CLEAN})
	if !errors.Is(err, ErrStore) {
		t.Errorf("Put with NATS down: error = %v, expected ErrStore", err)
	}
	if err != nil && !strings.Contains(err.Error(), "img") {
		t.Errorf("error %q does not name the image", err)
	}
}
