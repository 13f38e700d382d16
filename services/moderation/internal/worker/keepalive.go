package worker

import (
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// minProgressGap limits how often a progress callback from the pipeline
// reaches the server.
const minProgressGap = time.Second

// keepAlive sends progress signals for a message being processed, every
// half ack wait and when the pipeline reports progress, so that a long
// step does not let the ack wait expire while the connection is up.
type keepAlive struct {
	msg  jetstream.Msg
	done chan struct{}
	once sync.Once

	mu   sync.Mutex
	last time.Time
}

func startKeepAlive(msg jetstream.Msg, ackWait time.Duration) *keepAlive {
	k := &keepAlive{msg: msg, done: make(chan struct{}), last: time.Now()}
	go k.loop(ackWait / 2)
	return k
}

func (k *keepAlive) loop(interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()

	for {
		select {
		case <-k.done:
			return
		case <-ticker.C:
			k.signal()
		}
	}
}

// touch signals progress unless a signal went out less than
// minProgressGap ago.
func (k *keepAlive) touch() {
	k.mu.Lock()
	recent := time.Since(k.last) < minProgressGap
	k.mu.Unlock()

	if !recent {
		k.signal()
	}
}

// signal sends a progress acknowledgement. An error is not reported: the
// next one, or the redelivery that follows a lost connection, covers it.
func (k *keepAlive) signal() {
	k.mu.Lock()
	k.last = time.Now()
	k.mu.Unlock()

	_ = k.msg.InProgress()
}

func (k *keepAlive) stop() {
	k.once.Do(func() { close(k.done) })
}
