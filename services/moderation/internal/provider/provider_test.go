package provider_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/genrelay/genrelay/services/moderation/internal/provider"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"absent", http.Header{}, 0},
		{"seconds", http.Header{"Retry-After": {"7"}}, 7 * time.Second},
		{"milliseconds win", http.Header{"Retry-After": {"1"}, "Retry-After-Ms": {"250"}}, 250 * time.Millisecond},
		{"http date", http.Header{"Retry-After": {"Sat, 01 Mar 2025 12:00:05 GMT"}}, 5 * time.Second},
		{"date in the past", http.Header{"Retry-After": {"Sat, 01 Mar 2025 11:00:00 GMT"}}, 0},
		{"negative seconds", http.Header{"Retry-After": {"-3"}}, 0},
		{"garbage", http.Header{"Retry-After": {"soon"}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := provider.ParseRetryAfter(tt.header, now); got != tt.want {
				t.Errorf("ParseRetryAfter = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestErrorKindMatching(t *testing.T) {
	tests := []struct {
		kind          error
		wantRetryable bool
	}{
		{provider.ErrRetryable, true},
		{provider.ErrRateLimited, true},
		{provider.ErrTimeout, true},
		{provider.ErrInvalidInput, false},
		{provider.ErrAuth, false},
		{provider.ErrBadResponse, false},
		{provider.ErrCircuitOpen, false},
	}
	for _, tt := range tests {
		t.Run(tt.kind.Error(), func(t *testing.T) {
			err := error(&provider.Error{Provider: "x", Kind: tt.kind})
			if !errors.Is(err, tt.kind) {
				t.Errorf("errors.Is(err, its own kind) = false")
			}
			if got := provider.Retryable(err); got != tt.wantRetryable {
				t.Errorf("Retryable = %v, want %v", got, tt.wantRetryable)
			}
		})
	}
}

func TestKindForStatus(t *testing.T) {
	tests := map[int]error{
		400: provider.ErrInvalidInput, 401: provider.ErrAuth, 403: provider.ErrAuth,
		404: provider.ErrInvalidInput, 408: provider.ErrRetryable, 413: provider.ErrInvalidInput,
		429: provider.ErrRateLimited, 500: provider.ErrRetryable, 503: provider.ErrRetryable,
		302: provider.ErrBadResponse, 418: provider.ErrBadResponse,
	}
	for status, want := range tests {
		if got := provider.KindForStatus(status); got != want {
			t.Errorf("KindForStatus(%d) = %v, want %v", status, got, want)
		}
	}
}

func TestRetryPolicyStops(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		wantCalls int
	}{
		{"retryable uses all attempts", &provider.Error{Kind: provider.ErrRetryable}, 3},
		{"auth is not retried", &provider.Error{Kind: provider.ErrAuth}, 1},
		{"invalid input is not retried", &provider.Error{Kind: provider.ErrInvalidInput}, 1},
		{"open circuit is not retried", &provider.Error{Kind: provider.ErrCircuitOpen}, 1},
		{
			"retry-after beyond the cap ends retries",
			&provider.Error{Kind: provider.ErrRateLimited, RetryAfter: time.Hour}, 1,
		},
		{"plain error is not retried", errors.New("boom"), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := fastRetry().Do(context.Background(), func(context.Context, int) error {
				calls++
				return tt.err
			})
			if !errors.Is(err, tt.err) {
				t.Errorf("error = %v, want %v", err, tt.err)
			}
			if calls != tt.wantCalls {
				t.Errorf("calls = %d, want %d", calls, tt.wantCalls)
			}
		})
	}
}

func TestRetryPolicyHonoursRetryAfter(t *testing.T) {
	calls := 0
	start := time.Now()
	err := fastRetry().Do(context.Background(), func(context.Context, int) error {
		calls++
		if calls == 1 {
			return &provider.Error{Kind: provider.ErrRateLimited, RetryAfter: 300 * time.Millisecond}
		}
		return nil
	})

	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if elapsed := time.Since(start); elapsed < 300*time.Millisecond {
		t.Errorf("second call after %s, want at least the 300ms Retry-After", elapsed)
	}
}

func TestRetryPolicyReturnsContextError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	policy := fastRetry()
	policy.InitialBackoff, policy.MaxBackoff = time.Hour, time.Hour

	err := policy.Do(ctx, func(context.Context, int) error {
		cancel()
		return &provider.Error{Kind: provider.ErrRetryable}
	})

	if !errors.Is(err, context.Canceled) {
		t.Errorf("error = %v, want context.Canceled", err)
	}
}

func TestGuardBreakerOpensAndRecovers(t *testing.T) {
	fake := &fakeProvider{err: &provider.Error{Provider: "fake", Kind: provider.ErrRetryable}}
	limits := provider.DefaultLimits()
	limits.BreakerFailures = 3
	limits.BreakerOpenFor = 200 * time.Millisecond
	guard := provider.NewGuard(fake, limits)

	for range 3 {
		_, _ = guard.Moderate(context.Background(), provider.Image{})
	}
	_, err := guard.Moderate(context.Background(), provider.Image{})

	if !errors.Is(err, provider.ErrCircuitOpen) {
		t.Fatalf("fourth call error = %v, want ErrCircuitOpen", err)
	}
	if got := fake.calls.Load(); got != 3 {
		t.Errorf("provider called %d times, want 3 (none while open)", got)
	}

	fake.setErr(nil)
	time.Sleep(250 * time.Millisecond)
	if _, err := guard.Moderate(context.Background(), provider.Image{}); err != nil {
		t.Fatalf("call after open timeout: %v", err)
	}
	if state := guard.BreakerState(); state != "closed" {
		t.Errorf("breaker state = %s, want closed after a successful trial", state)
	}
}

func TestGuardHalfOpenExtraCallRetryable(t *testing.T) {
	fake := &fakeProvider{err: &provider.Error{Provider: "fake", Kind: provider.ErrRetryable}}
	limits := provider.DefaultLimits()
	limits.BreakerFailures = 1
	limits.BreakerOpenFor = 50 * time.Millisecond
	guard := provider.NewGuard(fake, limits)
	_, _ = guard.Moderate(context.Background(), provider.Image{})

	// After the open timeout, one trial call is in flight when a second
	// call arrives.
	fake.setErr(nil)
	fake.delay = 200 * time.Millisecond
	time.Sleep(80 * time.Millisecond)
	trial := make(chan error, 1)
	go func() {
		_, err := guard.Moderate(context.Background(), provider.Image{})
		trial <- err
	}()
	time.Sleep(50 * time.Millisecond)
	_, err := guard.Moderate(context.Background(), provider.Image{})

	if !provider.Retryable(err) {
		t.Errorf("second call error = %v, want a retryable error", err)
	}
	if errors.Is(err, provider.ErrCircuitOpen) {
		t.Errorf("second call error = %v, want no ErrCircuitOpen while half-open", err)
	}
	if err := <-trial; err != nil {
		t.Fatalf("trial call: %v", err)
	}
	if got := fake.calls.Load(); got != 2 {
		t.Errorf("provider called %d times, want 2 (the second call not sent)", got)
	}
	if state := guard.BreakerState(); state != "closed" {
		t.Errorf("breaker state = %s, want closed after the trial", state)
	}
}

func TestGuardIgnoresInvalidInputForBreaker(t *testing.T) {
	fake := &fakeProvider{err: &provider.Error{Provider: "fake", Kind: provider.ErrInvalidInput}}
	limits := provider.DefaultLimits()
	limits.BreakerFailures = 2
	guard := provider.NewGuard(fake, limits)

	for range 5 {
		_, _ = guard.Moderate(context.Background(), provider.Image{})
	}

	if state := guard.BreakerState(); state != "closed" {
		t.Errorf("breaker state = %s, want closed: invalid images say nothing of health", state)
	}
}

func TestGuardConcurrencyLimit(t *testing.T) {
	fake := &fakeProvider{block: make(chan struct{})}
	limits := provider.DefaultLimits()
	limits.Concurrency = 1
	limits.Timeout = 100 * time.Millisecond
	guard := provider.NewGuard(fake, limits)

	done := make(chan error, 1)
	go func() {
		_, err := guard.Moderate(context.Background(), provider.Image{})
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	_, err := guard.Moderate(context.Background(), provider.Image{})
	close(fake.block)
	<-done

	if !errors.Is(err, provider.ErrTimeout) {
		t.Errorf("second call error = %v, want ErrTimeout while the only slot is busy", err)
	}
	if got := fake.calls.Load(); got != 1 {
		t.Errorf("provider called %d times, want 1", got)
	}
}

type fakeProvider struct {
	calls atomic.Int32
	delay time.Duration
	block chan struct{} // when set, Moderate waits for it and ignores ctx
	errv  atomic.Pointer[error]
	err   error
}

func (f *fakeProvider) setErr(err error) { f.errv.Store(&err) }

func (f *fakeProvider) Name() string     { return "fake" }
func (f *fakeProvider) NeedsBytes() bool { return false }

func (f *fakeProvider) Moderate(ctx context.Context, _ provider.Image) (*provider.Result, error) {
	f.calls.Add(1)
	if f.block != nil {
		<-f.block
		return &provider.Result{}, nil
	}
	select {
	case <-time.After(f.delay):
	case <-ctx.Done():
		return nil, &provider.Error{Provider: "fake", Kind: provider.ErrTimeout}
	}

	err := f.err
	if p := f.errv.Load(); p != nil {
		err = *p
	}
	if err != nil {
		return nil, err
	}
	return &provider.Result{Scores: map[string]float64{"sexual": 0.1}}, nil
}

func fastRetry() provider.RetryPolicy {
	p := provider.DefaultRetryPolicy()
	p.InitialBackoff = 5 * time.Millisecond
	p.MaxBackoff = 10 * time.Millisecond
	return p
}
