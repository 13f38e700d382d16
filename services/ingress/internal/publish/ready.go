package publish

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/genrelay/genrelay/pkg/broker"
	"github.com/genrelay/genrelay/pkg/natsconn"
)

// Readiness checks that callbacks can be stored: NATS is connected and
// the inbound stream responds. It caches each result for a short time, so
// that frequent probes send at most one stream info request per period.
// It is safe for concurrent use.
type Readiness struct {
	check   func(context.Context) error
	ttl     time.Duration
	timeout time.Duration
	now     func() time.Time

	mu        sync.Mutex
	checkedAt time.Time
	err       error
}

// NewReadiness returns a readiness check that caches results for ttl and
// gives each stream info request at most timeout.
func NewReadiness(
	nc *nats.Conn,
	js jetstream.JetStream,
	ttl, timeout time.Duration,
) *Readiness {
	check := func(ctx context.Context) error {
		return natsconn.Ready(ctx, nc, js, broker.InboundStream)
	}
	return &Readiness{check: check, ttl: ttl, timeout: timeout, now: time.Now}
}

// Check returns nil when callbacks can be stored, or the reason they
// cannot. Concurrent callers wait for one shared check.
func (r *Readiness) Check(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()

	now := r.now()
	if !r.checkedAt.IsZero() && now.Sub(r.checkedAt) < r.ttl {
		return r.err
	}

	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()

	r.err = r.check(ctx)
	r.checkedAt = r.now()
	return r.err
}
