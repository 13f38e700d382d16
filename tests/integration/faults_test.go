package integration

import (
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/genrelay/genrelay/pkg/leonardo/leonardotest"
)

// TestNATSOutage stops NATS under running services. Ingress responds 503
// with Retry-After and both services report unready. After NATS returns,
// the same processes accept and moderate callbacks again.
func TestNATSOutage(t *testing.T) {
	s := startStack(t)
	ingressReady := "http://" + s.ingressAddr + "/readyz"
	moderationReady := "http://" + s.moderationAddr + "/readyz"

	s.nats.Shutdown()

	status, header, body := s.post(t, primaryKey, leonardotest.WithObjectID(leonardotest.ImageSD15, "outage-1"))
	if status != http.StatusServiceUnavailable {
		t.Errorf("post during outage: status %d (%s), want 503", status, body)
	}
	if header.Get("Retry-After") == "" {
		t.Error("post during outage: no Retry-After header")
	}
	if err := pollStatus(ingressReady, http.StatusServiceUnavailable, 10*time.Second); err != nil {
		t.Errorf("ingress readiness during outage: %v", err)
	}
	if err := pollStatus(moderationReady, http.StatusServiceUnavailable, 10*time.Second); err != nil {
		t.Errorf("moderation readiness during outage: %v", err)
	}

	s.nats.Restart()

	if err := pollStatus(ingressReady, http.StatusOK, 30*time.Second); err != nil {
		t.Fatalf("ingress readiness after restart: %v", err)
	}
	if err := pollStatus(moderationReady, http.StatusOK, 30*time.Second); err != nil {
		t.Fatalf("moderation readiness after restart: %v", err)
	}
	status, _, body = s.post(t, primaryKey, leonardotest.WithObjectID(leonardotest.ImageSD15, "outage-1"))
	if status != http.StatusAccepted {
		t.Fatalf("post after restart: status %d (%s), want 202", status, body)
	}
	s.waitResults(t, 30*time.Second, func(rs []result) bool {
		return len(forObject(rs, "outage-1")) == 1
	})
}

// TestModerationKilledMidBatch kills moderation with SIGKILL while it
// works through a backlog, starts it again, and checks that every
// callback yields exactly one event.
func TestModerationKilledMidBatch(t *testing.T) {
	const callbacks = 300
	s := startStack(t)
	s.moderation.stop(t, syscall.SIGTERM)

	for i := range callbacks {
		body := leonardotest.WithObjectID(leonardotest.ImageComplete, fmt.Sprintf("backlog-%03d", i))
		if status, _, text := s.post(t, primaryKey, body); status != http.StatusAccepted {
			t.Fatalf("callback %d: status %d (%s), want 202", i, status, text)
		}
	}

	s.startModeration(t)
	s.waitResults(t, 60*time.Second, func(rs []result) bool { return len(rs) >= 20 })
	s.moderation.stop(t, syscall.SIGKILL)
	killedAt := len(s.results(t))
	if killedAt >= callbacks {
		t.Fatalf("moderation finished all %d callbacks before the kill; raise the count", callbacks)
	}

	s.startModeration(t)
	s.waitResults(t, 120*time.Second, func(rs []result) bool {
		return len(distinctObjects(rs)) == callbacks
	})
	time.Sleep(3 * time.Second) // let a wrong duplicate surface
	got := s.results(t)

	t.Logf("killed after %d of %d outputs", killedAt, callbacks)
	if len(got) != callbacks {
		t.Errorf("%d outputs for %d callbacks, want exactly one each", len(got), callbacks)
	}
	for id, n := range distinctObjects(got) {
		if n != 1 {
			t.Errorf("object %s has %d outputs, want 1", id, n)
		}
	}
}

func distinctObjects(rs []result) map[string]int {
	seen := make(map[string]int, len(rs))
	for _, r := range rs {
		seen[r.event.GetObjectId()]++
	}
	return seen
}
