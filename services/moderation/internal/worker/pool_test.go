package worker

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/pkg/leonardo/leonardotest"
	"github.com/genrelay/genrelay/services/moderation/internal/pipeline"
)

// concurrencyScreener records the largest number of Screen calls that ran
// at the same time.
type concurrencyScreener struct {
	delay time.Duration

	mu      sync.Mutex
	running int
	maxSeen int
	calls   int
}

func (s *concurrencyScreener) Applies(pipeline.ScreenImage) bool { return true }

// Screen returns screenOne's decision as the only one.
func (s *concurrencyScreener) Screen(ctx context.Context, img pipeline.ScreenImage, progress func()) ([]*genrelayv1.Decision, error) {
	d, err := s.screenOne(ctx, img, progress)
	if err != nil || d == nil {
		return nil, err
	}
	return []*genrelayv1.Decision{d}, nil
}

func (s *concurrencyScreener) screenOne(ctx context.Context, img pipeline.ScreenImage,
	progress func(),
) (*genrelayv1.Decision, error) {
	s.mu.Lock()
	s.running++
	s.calls++
	s.maxSeen = max(s.maxSeen, s.running)
	s.mu.Unlock()

	defer func() {
		s.mu.Lock()
		s.running--
		s.mu.Unlock()
	}()

	if err := waitWithProgress(ctx, s.delay, progress); err != nil {
		return nil, err
	}
	return &genrelayv1.Decision{ImageId: img.ID, Rule: "threshold", Provider: "fake",
		Outcome: genrelayv1.Outcome_OUTCOME_CLEAN, Reason: "scored low"}, nil
}

func (s *concurrencyScreener) stats() (maxSeen, calls int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxSeen, s.calls
}

func publishGenerations(t *testing.T, env testEnv, prefix string, n int) {
	t.Helper()

	for i := range n {
		body := leonardotest.WithObjectID(leonardotest.ImageComplete, fmt.Sprintf("%s-%03d", prefix, i))
		publishCallback(t, env.js, body, messageID(t, body))
	}
}

func TestWorkerPoolBounded(t *testing.T) {
	env := newEnv(t)
	publishGenerations(t, env, "pool", 12)
	cfg := testConfig()
	cfg.Workers = 3
	screener := &concurrencyScreener{delay: 100 * time.Millisecond}

	startWorker(t, env, cfg, workerOptions{screener: screener})
	waitAcked(t, env.js, cfg.Durable)
	waitResults(t, env.js, 12, 0)

	maxSeen, calls := screener.stats()
	if maxSeen != cfg.Workers {
		t.Errorf("at most %d messages ran at once, expected %d", maxSeen, cfg.Workers)
	}
	if calls != 12 {
		t.Errorf("screener calls = %d, expected 12", calls)
	}
}

func TestReplicasShareDurable(t *testing.T) {
	env := newEnv(t)
	const callbacks = 30
	publishGenerations(t, env, "shared", callbacks)
	cfg := testConfig()
	first := &concurrencyScreener{delay: 50 * time.Millisecond}
	second := &concurrencyScreener{delay: 50 * time.Millisecond}

	startWorker(t, env, cfg, workerOptions{screener: first})
	startWorker(t, env, cfg, workerOptions{screener: second})
	waitAcked(t, env.js, cfg.Durable)
	results := waitResults(t, env.js, callbacks, 300*time.Millisecond)

	_, firstCalls := first.stats()
	_, secondCalls := second.stats()
	if firstCalls == 0 || secondCalls == 0 {
		t.Errorf("replica calls = %d and %d, expected both to take work", firstCalls, secondCalls)
	}
	if firstCalls+secondCalls != callbacks {
		t.Errorf("calls = %d, expected %d: a message was processed twice",
			firstCalls+secondCalls, callbacks)
	}
	if len(results) != callbacks {
		t.Errorf("got %d events, expected %d", len(results), callbacks)
	}
}
