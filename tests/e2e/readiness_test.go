package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/genrelay/genrelay/pkg/leonardo/leonardotest"
)

// TestIngressReadinessQuorum stops two of the three NATS nodes, so that
// no quorum remains. Ingress must stay alive, report unready and reject
// callbacks with 503 and Retry-After. Once the nodes are back it must be
// ready again without a restart.
func TestIngressReadinessQuorum(t *testing.T) {
	s := requireStack(t)
	t.Cleanup(func() { s.heal(t) })
	s.waitHealthy(t)
	ctx := context.Background()

	before, err := s.inspect(ctx, ingress)
	if err != nil {
		t.Fatal(err)
	}

	if err := s.stopNodes(ctx, 30*time.Second, nats2, nats3); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, s.ingressURL("/readyz"), http.StatusServiceUnavailable, time.Minute)
	if status, err := httpStatus(s.ingressURL("/healthz")); err != nil || status != http.StatusOK {
		t.Errorf("healthz without quorum: status %d, error %v, expected 200", status, err)
	}

	id := "e2e-" + s.runID + "-no-quorum"
	body := leonardotest.WithObjectID(leonardotest.ImageSD15, id)
	resp := s.postCallback(ctx, body)
	if resp.status != http.StatusServiceUnavailable {
		t.Errorf("callback without quorum: %s, expected HTTP 503", resp)
	}
	if resp.retryAfter == "" {
		t.Errorf("callback without quorum: no Retry-After header")
	}

	if err := s.startNodes(ctx, nats2, nats3); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, s.ingressURL("/readyz"), http.StatusOK, 2*time.Minute)

	after, err := s.inspect(ctx, ingress)
	if err != nil {
		t.Fatal(err)
	}
	if after.State.StartedAt != before.State.StartedAt {
		t.Errorf("ingress started again at %s, expected it to keep running since %s",
			after.State.StartedAt, before.State.StartedAt)
	}
	if after.RestartCount != before.RestartCount {
		t.Errorf("ingress restart count %d, expected %d", after.RestartCount, before.RestartCount)
	}
	s.waitHealthy(t)

	// The callback refused without quorum is accepted now and appears once.
	if resp := s.postCallback(ctx, body); !resp.ok() {
		t.Fatalf("callback after recovery: %s, expected 2xx", resp)
	}
	results := s.waitOutputs(t, id, []string{id}, 2*time.Minute)
	if len(results) != 1 {
		t.Errorf("callback after recovery: %d outputs, expected 1", len(results))
	}
}

// waitStatus polls url until it responds with status.
func waitStatus(t *testing.T, url string, status int, timeout time.Duration) {
	t.Helper()

	err := poll(context.Background(), timeout, 500*time.Millisecond, func() (bool, string) {
		got, err := httpStatus(url)
		if err != nil {
			return false, err.Error()
		}
		return got == status, http.StatusText(got)
	})
	if err != nil {
		t.Fatalf("wait for %s to respond %d: %v", url, status, err)
	}
}
