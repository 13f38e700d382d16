package provider

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// RetryPolicy retries a failed call with exponential backoff and jitter.
// Only errors that match ErrRetryable are retried, so invalid input,
// authentication errors, unreadable responses and an open circuit stop at
// once.
type RetryPolicy struct {
	// Attempts is the maximum number of calls, first one included.
	// Default 3.
	Attempts int
	// InitialBackoff is the wait before the second call, before jitter.
	// Default 500ms.
	InitialBackoff time.Duration
	// MaxBackoff caps the wait between calls, before jitter. Default 10s.
	MaxBackoff time.Duration
	// Jitter spreads each wait uniformly over ±Jitter of its value, so
	// replicas that failed together do not retry together. Default 0.5.
	Jitter float64
	// MaxRetryAfter is the longest Retry-After that is honoured. A rate
	// limit asking for a longer wait ends the retries, so a message is not
	// held for minutes. Default 30s.
	MaxRetryAfter time.Duration
}

// DefaultRetryPolicy returns the defaults documented on RetryPolicy.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		Attempts:       3,
		InitialBackoff: 500 * time.Millisecond,
		MaxBackoff:     10 * time.Second,
		Jitter:         0.5,
		MaxRetryAfter:  30 * time.Second,
	}
}

// Validate reports settings that cannot work.
func (p RetryPolicy) Validate() error {
	switch {
	case p.Attempts < 1:
		return fmt.Errorf("retry attempts %d must be at least 1", p.Attempts)
	case p.InitialBackoff <= 0 || p.MaxBackoff < p.InitialBackoff:
		return fmt.Errorf("retry backoff %s..%s must be positive and ascending",
			p.InitialBackoff, p.MaxBackoff)
	case p.Jitter < 0 || p.Jitter > 1:
		return fmt.Errorf("retry jitter %g must be between 0 and 1", p.Jitter)
	case p.MaxRetryAfter < 0:
		return fmt.Errorf("max retry-after %s must not be negative", p.MaxRetryAfter)
	}
	return nil
}

// Attempt is one call that Do may repeat. attempt counts from 1.
type Attempt func(ctx context.Context, attempt int) error

// Do calls op until it succeeds, fails with an error that is not
// retryable, or has been called Attempts times, and returns op's last
// error. Between calls it waits for the backoff, or for a rate limit's
// RetryAfter when that is longer. It returns ctx's error as soon as ctx
// ends, also while waiting.
func (p RetryPolicy) Do(ctx context.Context, op Attempt) error {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     p.InitialBackoff,
		RandomizationFactor: p.Jitter,
		Multiplier:          2,
		MaxInterval:         p.MaxBackoff,
	}
	b.Reset()

	for attempt := 1; ; attempt++ {
		err := op(ctx, attempt)
		if err == nil || !Retryable(err) || attempt >= p.Attempts {
			return err
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}

		wait, ok := p.wait(b, err)
		if !ok {
			return err
		}
		if werr := sleep(ctx, wait); werr != nil {
			return werr
		}
	}
}

// wait returns the pause before the next attempt, and false when the
// provider asked for a longer pause than MaxRetryAfter.
func (p RetryPolicy) wait(b *backoff.ExponentialBackOff, err error) (time.Duration, bool) {
	next := b.NextBackOff()

	var perr *Error
	if errors.As(err, &perr) && perr.RetryAfter > 0 {
		if perr.RetryAfter > p.MaxRetryAfter {
			return 0, false
		}
		next = max(next, perr.RetryAfter)
	}
	return next, true
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()

	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
