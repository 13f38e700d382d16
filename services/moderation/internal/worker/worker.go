package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/genrelay/genrelay/pkg/broker"
	"github.com/genrelay/genrelay/services/moderation/internal/pipeline"
)

// Processor decides the events of one callback. *pipeline.Processor
// implements it.
type Processor interface {
	Process(ctx context.Context, m pipeline.Message, progress func()) ([]pipeline.Output, error)
	DeadLetter(m pipeline.Message, cause error) pipeline.Output
}

// Worker consumes the inbound stream. Create it with New.
type Worker struct {
	js   jetstream.JetStream
	cfg  Config
	proc Processor
	log  *zap.Logger
}

// New returns a Worker, or ErrInvalidConfig.
func New(js jetstream.JetStream, cfg Config, proc Processor, log *zap.Logger) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Worker{js: js, cfg: cfg, proc: proc, log: log}, nil
}

// Run creates or updates the durable consumer, retrying while NATS is
// unreachable, then processes messages until ctx is done. It then stops
// fetching, waits up to ShutdownTimeout for the messages in flight, and
// returns the rest for redelivery. It returns nil after ctx is done.
func (w *Worker) Run(ctx context.Context) error {
	cons, err := w.ensureConsumer(ctx)
	if err != nil {
		return nil
	}

	// Messages in flight keep running after ctx is done, until finish
	// cancels them.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()

	var inFlight sync.WaitGroup
	slots := newSlots(w.cfg.Workers)
	fetchFailing := false

	for {
		n := slots.acquire(ctx)
		if n == 0 {
			break
		}

		got, err := w.fetch(cons, n, func(msg jetstream.Msg) {
			inFlight.Go(func() {
				defer slots.release(1)
				w.handle(work, msg)
			})
		})
		slots.release(n - got)

		if cons, err = w.afterFetch(ctx, cons, err, &fetchFailing); err != nil {
			break
		}
	}

	w.finish(&inFlight, cancelWork)
	return nil
}

// fetch pulls up to n messages and passes each to dispatch as it
// arrives. It returns the number received and the fetch error.
func (w *Worker) fetch(cons jetstream.Consumer, n int, dispatch func(jetstream.Msg)) (int, error) {
	batch, err := cons.Fetch(n, jetstream.FetchMaxWait(w.cfg.FetchWait))
	if err != nil {
		return 0, err
	}

	got := 0
	for msg := range batch.Messages() {
		got++
		dispatch(msg)
	}
	return got, batch.Error()
}

// afterFetch logs a fetch failure once until fetching works again, waits
// before the next try, and recreates the consumer if it was deleted. It
// returns an error only when ctx is done.
func (w *Worker) afterFetch(ctx context.Context, cons jetstream.Consumer,
	err error, failing *bool,
) (jetstream.Consumer, error) {
	if err == nil {
		if *failing {
			w.log.Info("fetching messages again", zap.String("consumer", w.cfg.Durable))
			*failing = false
		}
		return cons, nil
	}

	if !*failing {
		w.log.Warn("fetch messages failed, retrying",
			zap.String("consumer", w.cfg.Durable), zap.Error(err))
		*failing = true
	}
	if errors.Is(err, jetstream.ErrConsumerDeleted) ||
		errors.Is(err, jetstream.ErrConsumerNotFound) {
		return w.ensureConsumer(ctx)
	}
	return cons, sleep(ctx, time.Second)
}

// ensureConsumer creates or updates the consumer, retrying with a delay
// that grows to 10s, until it succeeds or ctx is done.
func (w *Worker) ensureConsumer(ctx context.Context) (jetstream.Consumer, error) {
	delay := 500 * time.Millisecond
	for {
		cons, err := w.createConsumer(ctx)
		if err == nil {
			w.log.Info("consumer ready", zap.String("consumer", w.cfg.Durable),
				zap.String("stream", broker.InboundStream))
			return cons, nil
		}

		w.log.Warn("create consumer failed, retrying",
			zap.String("consumer", w.cfg.Durable), zap.Duration("retry_in", delay),
			zap.Error(err))
		if err := sleep(ctx, delay); err != nil {
			return nil, err
		}
		delay = min(2*delay, 10*time.Second)
	}
}

func (w *Worker) createConsumer(ctx context.Context) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()

	cons, err := w.js.CreateOrUpdateConsumer(ctx, broker.InboundStream, w.cfg.ConsumerConfig())
	if err != nil {
		return nil, fmt.Errorf("create consumer %s on %s: %w",
			w.cfg.Durable, broker.InboundStream, err)
	}
	return cons, nil
}

// finish waits for the messages in flight, and after ShutdownTimeout
// cancels them, which returns them for redelivery.
func (w *Worker) finish(inFlight *sync.WaitGroup, cancelWork context.CancelFunc) {
	done := make(chan struct{})
	go func() {
		inFlight.Wait()
		close(done)
	}()

	timer := time.NewTimer(w.cfg.ShutdownTimeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		w.log.Warn("shutdown timeout reached, returning messages in flight",
			zap.Duration("shutdown_timeout", w.cfg.ShutdownTimeout))
		cancelWork()
		<-done
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// slots hands out worker slots, so that no more messages are fetched
// than there are idle workers.
type slots chan struct{}

func newSlots(n int) slots {
	s := make(slots, n)
	s.release(n)
	return s
}

// acquire waits for one free slot, then takes every other free one, and
// returns how many it took: 0 when ctx is done.
func (s slots) acquire(ctx context.Context) int {
	if ctx.Err() != nil {
		return 0
	}
	select {
	case <-ctx.Done():
		return 0
	case <-s:
	}

	n := 1
	for {
		select {
		case <-s:
			n++
		default:
			return n
		}
	}
}

func (s slots) release(n int) {
	for range n {
		s <- struct{}{}
	}
}
