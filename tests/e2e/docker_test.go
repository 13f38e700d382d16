package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// logTailLines is how many lines of each container's log a failed test
// prints.
const logTailLines = 150

// startNodes starts the named containers at once. A NATS node cannot
// become healthy alone, so the cluster's nodes must start together.
func (s *stack) startNodes(ctx context.Context, names ...string) error {
	return s.eachNode(names, func(n *node) error {
		_, err := s.docker.ContainerStart(ctx, n.id(), client.ContainerStartOptions{})
		if err != nil {
			return fmt.Errorf("start %s: %w", n.name, err)
		}
		return nil
	})
}

// stopNodes stops the named containers at once with SIGTERM, and SIGKILL
// after timeout.
func (s *stack) stopNodes(ctx context.Context, timeout time.Duration, names ...string) error {
	seconds := int(timeout.Seconds())
	return s.eachNode(names, func(n *node) error {
		_, err := s.docker.ContainerStop(ctx, n.id(), client.ContainerStopOptions{Timeout: &seconds})
		if err != nil {
			return fmt.Errorf("stop %s: %w", n.name, err)
		}
		return nil
	})
}

// killNode sends SIGKILL to a container: no shutdown code runs.
func (s *stack) killNode(ctx context.Context, name string) error {
	_, err := s.docker.ContainerKill(ctx, s.nodes[name].id(),
		client.ContainerKillOptions{Signal: "KILL"})
	if err != nil {
		return fmt.Errorf("kill %s: %w", name, err)
	}
	return nil
}

// disconnectNode cuts a container off the stack's network. Its published
// ports stop accepting connections too.
func (s *stack) disconnectNode(ctx context.Context, name string) error {
	_, err := s.docker.NetworkDisconnect(ctx, s.network.ID,
		client.NetworkDisconnectOptions{Container: s.nodes[name].id()})
	if err != nil {
		return fmt.Errorf("disconnect %s: %w", name, err)
	}
	return nil
}

// connectNode attaches a container to the stack's network again under its
// name, so the other containers resolve it.
func (s *stack) connectNode(ctx context.Context, name string) error {
	_, err := s.docker.NetworkConnect(ctx, s.network.ID, client.NetworkConnectOptions{
		Container:      s.nodes[name].id(),
		EndpointConfig: &network.EndpointSettings{Aliases: []string{name}},
	})
	if err != nil {
		return fmt.Errorf("connect %s: %w", name, err)
	}
	return nil
}

func (s *stack) inspect(ctx context.Context, name string) (container.InspectResponse, error) {
	res, err := s.docker.ContainerInspect(ctx, s.nodes[name].id(), client.ContainerInspectOptions{})
	if err != nil {
		return container.InspectResponse{}, fmt.Errorf("inspect %s: %w", name, err)
	}
	return res.Container, nil
}

// eachNode runs fn for the named nodes concurrently and returns the
// first error.
func (s *stack) eachNode(names []string, fn func(*node) error) error {
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() { errs[i] = fn(s.nodes[name]) })
	}
	wg.Wait()

	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// waitDockerHealthy waits until Docker's health check (the images'
// natsprobe and -healthcheck probes) reports each named container
// healthy.
func (s *stack) waitDockerHealthy(ctx context.Context, timeout time.Duration, names ...string) error {
	return poll(ctx, timeout, time.Second, func() (bool, string) {
		var pending []string
		for _, name := range names {
			info, err := s.inspect(ctx, name)
			switch {
			case err != nil:
				pending = append(pending, err.Error())
			case info.State.Health == nil:
				pending = append(pending, name+": no health check")
			case info.State.Health.Status != container.Healthy:
				pending = append(pending, fmt.Sprintf("%s: %s", name, info.State.Health.Status))
			}
		}
		return len(pending) == 0, strings.Join(pending, "; ")
	})
}

// waitHealthy waits until every NATS node reports /healthz ok, ingress
// and both moderation replicas report ready, the subscriber runs, and the
// tests' own NATS connection is up. Every case starts and ends with it.
func (s *stack) waitHealthy(t *testing.T) {
	t.Helper()

	err := poll(context.Background(), 3*time.Minute, 500*time.Millisecond, s.healthy)
	if err != nil {
		t.Fatalf("stack not healthy: %v", err)
	}
}

func (s *stack) healthy() (bool, string) {
	var pending []string
	for _, name := range natsNodes {
		pending = appendUnready(pending, name,
			"http://"+s.nodes[name].hostAddr(natsMonitorPort)+"/healthz")
	}
	pending = appendUnready(pending, ingress, s.ingressURL("/readyz"))
	for _, name := range []string{moderation1, moderation2} {
		pending = appendUnready(pending, name,
			"http://"+s.nodes[name].hostAddr(moderationPort)+"/readyz")
	}

	info, err := s.inspect(context.Background(), printclean)
	if err != nil || !info.State.Running {
		pending = append(pending, printclean+": not running")
	}
	if !s.nc.IsConnected() {
		pending = append(pending, "test nats connection: "+s.nc.Status().String())
	}
	return len(pending) == 0, strings.Join(pending, "; ")
}

func appendUnready(pending []string, name, url string) []string {
	status, err := httpStatus(url)
	switch {
	case err != nil:
		return append(pending, fmt.Sprintf("%s: %v", name, err))
	case status != http.StatusOK:
		return append(pending, fmt.Sprintf("%s: %d", name, status))
	}
	return pending
}

func (s *stack) ingressURL(path string) string {
	return "http://" + s.nodes[ingress].hostAddr(ingressPort) + path
}

var probeClient = &http.Client{Timeout: 3 * time.Second}

// httpStatus returns the status code of a GET of url.
func httpStatus(url string) (int, error) {
	resp, err := probeClient.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// poll calls check every interval until it returns true, and returns an
// error with check's last detail when timeout passes first.
func poll(ctx context.Context, timeout, interval time.Duration, check func() (bool, string)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	for {
		ok, detail := check()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out after %s: %s", timeout, detail)
		case <-time.After(interval):
		}
	}
}

// logs returns a container's stdout and stderr since it was created,
// across restarts.
func (s *stack) logs(ctx context.Context, name string) (string, error) {
	rc, err := s.nodes[name].container.Logs(ctx)
	if err != nil {
		return "", fmt.Errorf("logs of %s: %w", name, err)
	}
	defer rc.Close()

	b, err := io.ReadAll(rc)
	if err != nil {
		return "", fmt.Errorf("read logs of %s: %w", name, err)
	}
	return string(b), nil
}

// printLogs prints the end of every container's log, for a failed test.
func (s *stack) printLogs(t *testing.T) {
	t.Helper()

	names := make([]string, 0, len(s.nodes))
	for name := range s.nodes {
		names = append(names, name)
	}
	slices.Sort(names)

	for _, name := range names {
		out, err := s.logs(context.Background(), name)
		if err != nil {
			t.Logf("%v", err)
			continue
		}
		t.Logf("==== %s: last %d log lines ====\n%s", name, logTailLines, tail(out, logTailLines))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
