package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/genrelay/genrelay/pkg/broker"
	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/pkg/leonardo/leonardotest"
)

// Shape of the load in every fault case: 400 distinct callbacks at 30 per
// second from 4 workers, about 13s without faults. The fault starts after
// the first 100 responses.
const (
	faultLoadCount   = 400
	faultLoadRate    = 30
	faultLoadWorkers = 4
)

// injector breaks the stack and heals it again, while callbacks arrive.
// It returns once the fault is healed, not once the stack has recovered.
type injector func(ctx context.Context, s *stack, logf func(string, ...any)) error

func TestFaultInboundLeaderKilled(t *testing.T) {
	runFaultCase(t, "leader-killed", func(ctx context.Context, s *stack, logf func(string, ...any)) error {
		leader, err := s.streamLeader(ctx, broker.InboundStream)
		if err != nil {
			return err
		}
		logf("killing %s, the leader of %s", leader, broker.InboundStream)
		if err := s.killNode(ctx, leader); err != nil {
			return err
		}
		sleep(ctx, 8*time.Second)
		logf("starting %s again", leader)
		return s.startNodes(ctx, leader)
	})
}

func TestFaultClusterRestart(t *testing.T) {
	runFaultCase(t, "cluster-restart", func(ctx context.Context, s *stack, logf func(string, ...any)) error {
		logf("stopping all NATS nodes")
		if err := s.stopNodes(ctx, 30*time.Second, natsNodes...); err != nil {
			return err
		}
		sleep(ctx, 3*time.Second)
		logf("starting all NATS nodes again")
		return s.startNodes(ctx, natsNodes...)
	})
}

func TestFaultModerationKilled(t *testing.T) {
	runFaultCase(t, "moderation-killed", func(ctx context.Context, s *stack, logf func(string, ...any)) error {
		// Kill while deliveries await an ack, so some are mid-batch.
		pending := s.waitAckPending(ctx, 5*time.Second)
		logf("killing %s with SIGKILL, %d deliveries awaiting ack", moderation1, pending)
		if err := s.killNode(ctx, moderation1); err != nil {
			return err
		}
		sleep(ctx, 5*time.Second)
		logf("starting %s again", moderation1)
		return s.startNodes(ctx, moderation1)
	})
}

func TestFaultIngressRestart(t *testing.T) {
	runFaultCase(t, "ingress-restart", func(ctx context.Context, s *stack, logf func(string, ...any)) error {
		logf("stopping %s", ingress)
		if err := s.stopNodes(ctx, 20*time.Second, ingress); err != nil {
			return err
		}
		logf("starting %s again", ingress)
		return s.startNodes(ctx, ingress)
	})
}

func TestFaultNATSPartition(t *testing.T) {
	runFaultCase(t, "partition", func(ctx context.Context, s *stack, logf func(string, ...any)) error {
		leader, err := s.streamLeader(ctx, broker.InboundStream)
		if err != nil {
			return err
		}
		logf("disconnecting %s, the leader of %s, from the network. Its clients: %v",
			leader, broker.InboundStream, s.clientNames(leader))
		if err := s.disconnectNode(ctx, leader); err != nil {
			return err
		}
		sleep(ctx, 10*time.Second)
		logf("connecting %s again", leader)
		return s.connectNode(ctx, leader)
	})
}

// runFaultCase sends a sustained load of distinct callbacks, injects the
// fault after a quarter of them, resends every callback that was not
// accepted, and checks that each callback appears exactly once on the
// output subjects.
func runFaultCase(t *testing.T, name string, inject injector) {
	s := requireStack(t)
	t.Cleanup(func() { s.heal(t) })
	s.waitHealthy(t)

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	t.Cleanup(cancel)

	l := newLoad(loadConfig{
		prefix:  fmt.Sprintf("e2e-%s-%s", s.runID, name),
		fixture: leonardotest.ImageSD15,
		count:   faultLoadCount,
		rate:    faultLoadRate,
		workers: faultLoadWorkers,
	})

	reached := make(chan struct{})
	injected := make(chan error, 1)
	go func() {
		<-reached
		injected <- inject(ctx, s, t.Logf)
	}()

	started := time.Now()
	l.run(ctx, s, reached)
	if err := <-injected; err != nil {
		t.Fatalf("inject fault: %v", err)
	}
	t.Logf("load sent in %s", time.Since(started).Round(time.Second))

	s.waitHealthy(t)
	l.resendRejected(ctx, s, 2*time.Minute)
	results := s.waitOutputs(t, l.cfg.prefix, l.ids(), 3*time.Minute)
	l.account(t, results, genrelayv1.Outcome_OUTCOME_CLEAN)
	t.Logf("case took %s", time.Since(started).Round(time.Second))
}

// streamLeader returns the name of the NATS node that leads stream.
func (s *stack) streamLeader(ctx context.Context, stream string) (string, error) {
	st, err := s.js.Stream(ctx, stream)
	if err != nil {
		return "", fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return "", fmt.Errorf("info of %s: %w", stream, err)
	}
	if info.Cluster == nil || s.nodes[info.Cluster.Leader] == nil {
		return "", fmt.Errorf("stream %s has no known leader: %+v", stream, info.Cluster)
	}
	return info.Cluster.Leader, nil
}

// clientNames returns the names of the clients connected to a NATS node,
// from its monitoring endpoint, or the error in their place.
func (s *stack) clientNames(node string) []string {
	url := "http://" + s.nodes[node].hostAddr(natsMonitorPort) + "/connz"
	resp, err := probeClient.Get(url)
	if err != nil {
		return []string{err.Error()}
	}
	defer resp.Body.Close()

	var connz struct {
		Connections []struct {
			Name string `json:"name"`
		} `json:"connections"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&connz); err != nil {
		return []string{fmt.Sprintf("decode %s: %v", url, err)}
	}

	names := make([]string, 0, len(connz.Connections))
	for _, c := range connz.Connections {
		names = append(names, c.Name)
	}
	return names
}

// waitAckPending waits up to timeout for a consumer of the inbound stream
// to hold deliveries that await an ack, and returns how many it saw.
func (s *stack) waitAckPending(ctx context.Context, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if n := s.ackPending(ctx); n > 0 {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0
}

func (s *stack) ackPending(ctx context.Context) int {
	st, err := s.js.Stream(ctx, broker.InboundStream)
	if err != nil {
		return 0
	}
	total := 0
	lister := st.ListConsumers(ctx)
	for info := range lister.Info() {
		total += info.NumAckPending
	}
	return total
}

// heal starts every container and reconnects any that a failed case left
// cut off, so that the next case finds the whole stack.
func (s *stack) heal(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	for name := range s.nodes {
		info, err := s.inspect(ctx, name)
		if err != nil {
			t.Logf("heal: %v", err)
			continue
		}
		if info.NetworkSettings == nil || info.NetworkSettings.Networks[s.network.Name] == nil {
			if err := s.connectNode(ctx, name); err != nil {
				t.Logf("heal: %v", err)
			}
		}
		if !info.State.Running {
			if err := s.startNodes(ctx, name); err != nil {
				t.Logf("heal: %v", err)
			}
		}
	}
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
