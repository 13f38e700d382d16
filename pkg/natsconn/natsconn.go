// Package natsconn connects genrelay services to NATS with the reconnect
// behaviour they rely on, and checks readiness: connected, and the
// streams the service uses are reachable.
package natsconn

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Readiness errors.
var (
	// ErrNotConnected is returned by Ready while the connection is down.
	ErrNotConnected = errors.New("not connected to NATS")
	// ErrNoLeader is returned by Ready when a clustered stream has no
	// leader, as while a quorum of its servers is down. A follower still
	// responds to info requests then, but nothing can be stored.
	ErrNoLeader = errors.New("stream has no leader")
)

// Events receives connection state changes, so that the caller can log
// them; the package itself does not log. Nil fields are ignored.
type Events struct {
	Disconnected func(err error)
	Reconnected  func(url string)
	Error        func(err error)
}

// Connect dials url and keeps reconnecting for as long as the connection
// is open, starting even when the server is not up yet: callers see
// publish errors in the meantime, not a dead connection.
func Connect(url, name string, events Events) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.Timeout(5 * time.Second),
		// Notice a server cut off by a partition within about 15s rather
		// than the client default of several minutes, so the connection
		// moves to a server that can reach the cluster.
		nats.PingInterval(5 * time.Second),
		nats.MaxPingsOutstanding(3),
		// No reconnect buffer: a publish while disconnected fails at once,
		// so ingress can respond 503 instead of holding the request.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if events.Disconnected != nil {
				events.Disconnected(err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			if events.Reconnected != nil {
				events.Reconnected(nc.ConnectedUrlRedacted())
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if events.Error != nil {
				events.Error(err)
			}
		}),
	}

	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	return nc, nil
}

// Ready returns nil when nc is connected and every named stream responds to
// an info request within ctx's deadline and, in a cluster, has a leader.
func Ready(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, streams ...string) error {
	if !nc.IsConnected() {
		return ErrNotConnected
	}

	for _, name := range streams {
		stream, err := js.Stream(ctx, name)
		if err != nil {
			return fmt.Errorf("stream %s: %w", name, err)
		}
		if cluster := stream.CachedInfo().Cluster; cluster != nil && cluster.Leader == "" {
			return fmt.Errorf("stream %s: %w", name, ErrNoLeader)
		}
	}
	return nil
}
