package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sony/gobreaker/v2"
	"golang.org/x/sync/semaphore"
)

// Limits bound the calls to one provider.
type Limits struct {
	// Timeout bounds one call, including the wait for a free concurrency
	// slot. Default 10s.
	Timeout time.Duration
	// Concurrency is the maximum number of calls in flight at once from
	// this process. Default 4.
	Concurrency int
	// BreakerFailures is the number of consecutive failed calls that opens
	// the circuit breaker. Default 5.
	BreakerFailures uint32
	// BreakerOpenFor is how long the breaker stays open before it lets
	// trial calls through (half-open). Default 30s.
	BreakerOpenFor time.Duration
	// BreakerHalfOpenCalls is the number of trial calls allowed while
	// half-open; that many successes in a row close the breaker.
	// Default 1.
	BreakerHalfOpenCalls uint32
}

// DefaultLimits returns the defaults documented on Limits.
func DefaultLimits() Limits {
	return Limits{
		Timeout:              10 * time.Second,
		Concurrency:          4,
		BreakerFailures:      5,
		BreakerOpenFor:       30 * time.Second,
		BreakerHalfOpenCalls: 1,
	}
}

// Validate reports settings that cannot work.
func (l Limits) Validate() error {
	switch {
	case l.Timeout <= 0:
		return fmt.Errorf("provider timeout %s must be positive", l.Timeout)
	case l.Concurrency < 1:
		return fmt.Errorf("provider concurrency %d must be at least 1", l.Concurrency)
	case l.BreakerFailures < 1:
		return fmt.Errorf("breaker failures %d must be at least 1", l.BreakerFailures)
	case l.BreakerOpenFor <= 0:
		return fmt.Errorf("breaker open timeout %s must be positive", l.BreakerOpenFor)
	case l.BreakerHalfOpenCalls < 1:
		return fmt.Errorf("breaker half-open calls %d must be at least 1",
			l.BreakerHalfOpenCalls)
	}
	return nil
}

// Guard wraps a Provider with a concurrency limit, a timeout per call and
// a circuit breaker. It is itself a Provider and safe for concurrent use.
type Guard struct {
	p       Provider
	timeout time.Duration
	slots   *semaphore.Weighted
	breaker *gobreaker.CircuitBreaker[*Result]
}

// NewGuard wraps p with l, which must be valid.
func NewGuard(p Provider, l Limits) *Guard {
	return &Guard{
		p:       p,
		timeout: l.Timeout,
		slots:   semaphore.NewWeighted(int64(l.Concurrency)),
		breaker: gobreaker.NewCircuitBreaker[*Result](gobreaker.Settings{
			Name:        p.Name(),
			MaxRequests: l.BreakerHalfOpenCalls,
			Timeout:     l.BreakerOpenFor,
			ReadyToTrip: func(c gobreaker.Counts) bool {
				return c.ConsecutiveFailures >= l.BreakerFailures
			},
			IsExcluded: excludedFromBreaker,
		}),
	}
}

// Name returns the wrapped provider's name.
func (g *Guard) Name() string { return g.p.Name() }

// NeedsBytes returns the wrapped provider's NeedsBytes.
func (g *Guard) NeedsBytes() bool { return g.p.NeedsBytes() }

// BreakerState returns "closed", "half-open" or "open".
func (g *Guard) BreakerState() string { return g.breaker.State().String() }

// Moderate waits for a concurrency slot, then calls the provider through
// the breaker, all within the timeout. An open breaker returns
// ErrCircuitOpen without a call. A half-open breaker whose trial calls
// are all in flight returns ErrRetryable without a call, because the
// trials decide within one call whether the breaker closes, so a retry
// after the backoff may pass.
func (g *Guard) Moderate(ctx context.Context, img Image) (*Result, error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()

	if err := g.slots.Acquire(ctx, 1); err != nil {
		return nil, g.slotError(ctx, err)
	}
	defer g.slots.Release(1)

	res, err := g.breaker.Execute(func() (*Result, error) {
		return g.p.Moderate(ctx, img)
	})
	switch {
	case errors.Is(err, gobreaker.ErrOpenState):
		return nil, &Error{Provider: g.Name(), Kind: ErrCircuitOpen, Err: err}
	case errors.Is(err, gobreaker.ErrTooManyRequests):
		return nil, &Error{
			Provider: g.Name(), Kind: ErrRetryable,
			Err: fmt.Errorf("half-open circuit breaker is waiting for its trial calls: %w", err),
		}
	}
	return res, err
}

func (g *Guard) slotError(ctx context.Context, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return &Error{
			Provider: g.Name(), Kind: ErrTimeout,
			Err: fmt.Errorf("no free concurrency slot within %s", g.timeout),
		}
	}
	return err
}

// excludedFromBreaker keeps failures that carry no information about the
// provider's health out of the breaker's counts: an image the provider
// rejects, and a call abandoned because the caller's context ended.
func excludedFromBreaker(err error) bool {
	return errors.Is(err, ErrInvalidInput) || errors.Is(err, context.Canceled)
}
