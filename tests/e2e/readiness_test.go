package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestIngressReadinessQuorum stops two of the three NATS nodes, so that
// no quorum remains, and checks that ingress reports unready while alive,
// then ready again once the nodes are back, without being restarted.
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
