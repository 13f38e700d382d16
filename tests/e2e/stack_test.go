package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
)

// imageTag is the tag that the tests build and run, kept apart from the
// dev tag that `make up` uses.
const imageTag = "e2e"

// Container names inside the stack's network, which are also the NATS
// server names.
const (
	nats1       = "nats-1"
	nats2       = "nats-2"
	nats3       = "nats-3"
	ingress     = "ingress"
	moderation1 = "moderation-1"
	moderation2 = "moderation-2"
	printclean  = "printclean"
)

// Container ports that the stack publishes on 127.0.0.1.
const (
	natsClientPort  = "4222/tcp"
	natsMonitorPort = "8222/tcp"
	ingressPort     = "8080/tcp"
	moderationPort  = "8081/tcp"
)

// Labels that mark the stack's containers and network, so that a later
// run can remove what a killed run left behind.
const (
	labelRun = "org.genrelay.e2e.run"
	labelPID = "org.genrelay.e2e.pid"
)

// natsNodes lists the NATS containers.
var natsNodes = []string{nats1, nats2, nats3}

// natsURLs is the services' GENRELAY_NATS_URL inside the network.
const natsURLs = "nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222"

// moderationAckWait is shorter than the 30s default, so that callbacks
// held by a killed moderation replica are redelivered sooner.
const moderationAckWait = "10s"

// stack is a running genrelay deployment, built like docker-compose.yml.
type stack struct {
	runID      string
	docker     *testcontainers.DockerClient
	network    *testcontainers.DockerNetwork
	nodes      map[string]*node
	webhookKey string
	nc         *nats.Conn
	js         jetstream.JetStream
}

// node is one container of the stack.
type node struct {
	name      string
	container testcontainers.Container
	// hostPorts maps a container port such as "4222/tcp" to its fixed
	// port on 127.0.0.1. Fixed ports survive container restarts.
	hostPorts map[string]string
}

func (n *node) id() string { return n.container.GetContainerID() }

// hostAddr returns 127.0.0.1:<host port> for a container port.
func (n *node) hostAddr(port string) string {
	return net.JoinHostPort("127.0.0.1", n.hostPorts[port])
}

// startStack starts the NATS cluster, then the services, and waits until
// Docker reports every health check healthy.
func startStack(ctx context.Context) (*stack, error) {
	docker, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}

	s := &stack{
		runID:      randomHex(4),
		docker:     docker,
		nodes:      map[string]*node{},
		webhookKey: randomHex(24),
	}
	removeLeftovers(ctx, docker)

	if err := s.start(ctx); err != nil {
		s.terminate()
		return nil, err
	}
	return s, nil
}

func (s *stack) start(ctx context.Context) error {
	var err error
	s.network, err = tcnetwork.New(ctx, tcnetwork.WithLabels(s.labels()))
	if err != nil {
		return fmt.Errorf("create network: %w", err)
	}

	// NATS first: each node waits for the others, so start all three.
	if err := s.createAndStart(ctx, s.natsRequests()); err != nil {
		return err
	}
	if err := s.createAndStart(ctx, s.serviceRequests()); err != nil {
		return err
	}

	all := []string{nats1, nats2, nats3, ingress, moderation1, moderation2}
	if err := s.waitDockerHealthy(ctx, 3*time.Minute, all...); err != nil {
		return err
	}
	return s.connect()
}

func (s *stack) labels() map[string]string {
	return map[string]string{labelRun: s.runID, labelPID: strconv.Itoa(os.Getpid())}
}

// request describes one container of the stack.
type request struct {
	name  string
	image string
	env   map[string]string
	ports []string
}

func (s *stack) natsRequests() []request {
	reqs := make([]request, 0, len(natsNodes))
	for _, name := range natsNodes {
		reqs = append(reqs, request{
			name:  name,
			image: "genrelay/nats",
			env:   map[string]string{"NATS_SERVER_NAME": name},
			ports: []string{natsClientPort, natsMonitorPort},
		})
	}
	return reqs
}

func (s *stack) serviceRequests() []request {
	common := func(extra map[string]string) map[string]string {
		env := map[string]string{
			"GENRELAY_NATS_URL":        natsURLs,
			"GENRELAY_STREAM_REPLICAS": "3",
			"GENRELAY_LOG_FORMAT":      "json",
		}
		for k, v := range extra {
			env[k] = v
		}
		return env
	}
	moderationEnv := common(map[string]string{
		"GENRELAY_ACK_WAIT":                  moderationAckWait,
		"GENRELAY_MODERATION_CACHE_REPLICAS": "3",
	})

	return []request{
		{name: ingress, image: "genrelay/ingress", ports: []string{ingressPort},
			env: common(map[string]string{
				"GENRELAY_WEBHOOK_KEYS": "e2e:" + s.webhookKey,
			})},
		{name: moderation1, image: "genrelay/moderation",
			ports: []string{moderationPort}, env: moderationEnv},
		{name: moderation2, image: "genrelay/moderation",
			ports: []string{moderationPort}, env: moderationEnv},
		{name: printclean, image: "genrelay/printclean", env: map[string]string{
			"GENRELAY_NATS_URL":           natsURLs,
			"GENRELAY_SUBSCRIBER_DURABLE": "printclean-e2e",
		}},
	}
}

// createAndStart creates the containers, then starts them all at once.
func (s *stack) createAndStart(ctx context.Context, reqs []request) error {
	for _, r := range reqs {
		n, err := s.create(ctx, r)
		if err != nil {
			return err
		}
		s.nodes[r.name] = n
	}

	names := make([]string, 0, len(reqs))
	for _, r := range reqs {
		names = append(names, r.name)
	}
	return s.startNodes(ctx, names...)
}

func (s *stack) create(ctx context.Context, r request) (*node, error) {
	n := &node{name: r.name, hostPorts: map[string]string{}}
	bindings := network.PortMap{}
	for _, p := range r.ports {
		hostPort, err := freePort()
		if err != nil {
			return nil, err
		}
		n.hostPorts[p] = hostPort
		bindings[network.MustParsePort(p)] = []network.PortBinding{{
			HostIP:   netip.MustParseAddr("127.0.0.1"),
			HostPort: hostPort,
		}}
	}

	ctr, err := testcontainers.GenericContainer(ctx,
		testcontainers.GenericContainerRequest{ContainerRequest: testcontainers.ContainerRequest{
			Image:          r.image + ":" + imageTag,
			Name:           "genrelay-e2e-" + s.runID + "-" + r.name,
			Env:            r.env,
			Labels:         s.labels(),
			ExposedPorts:   r.ports,
			Networks:       []string{s.network.Name},
			NetworkAliases: map[string][]string{s.network.Name: {r.name}},
			HostConfigModifier: func(hc *container.HostConfig) {
				hc.PortBindings = bindings
			},
		}})
	if err != nil {
		return nil, fmt.Errorf("create container %s: %w", r.name, err)
	}
	n.container = ctr
	return n, nil
}

// connect opens the tests' own NATS connection through the published
// client ports. It ignores the servers that the cluster announces, so it
// never dials a container address, and it pings often, so that it leaves
// a partitioned node within seconds.
func (s *stack) connect() error {
	urls := make([]string, 0, len(natsNodes))
	for _, name := range natsNodes {
		urls = append(urls, "nats://"+s.nodes[name].hostAddr(natsClientPort))
	}

	nc, err := nats.Connect(strings.Join(urls, ","),
		nats.Name("genrelay-e2e"),
		nats.IgnoreDiscoveredServers(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.PingInterval(2*time.Second),
		nats.MaxPingsOutstanding(2),
	)
	if err != nil {
		return fmt.Errorf("connect to nats at %v: %w", urls, err)
	}

	s.nc = nc
	s.js, err = jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream context: %w", err)
	}
	return nil
}

// terminate removes every container and the network, logging failures
// because it runs after the tests.
func (s *stack) terminate() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	if s.nc != nil {
		s.nc.Close()
	}

	var wg sync.WaitGroup
	for _, n := range s.nodes {
		wg.Go(func() {
			err := n.container.Terminate(ctx, testcontainers.StopTimeout(5*time.Second))
			if err != nil {
				fmt.Fprintf(os.Stderr, "e2e: remove container %s: %v\n", n.name, err)
			}
		})
	}
	wg.Wait()

	if s.network != nil {
		if err := s.network.Remove(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: remove network: %v\n", err)
		}
	}
	s.docker.Close()
}

// removeLeftovers removes containers and networks that an earlier run
// left behind when it was killed before its teardown: those whose
// process no longer exists.
func removeLeftovers(ctx context.Context, docker *testcontainers.DockerClient) {
	filter := make(client.Filters).Add("label", labelPID)

	ctrs, err := docker.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filter})
	if err == nil {
		for _, c := range ctrs.Items {
			if !processAlive(c.Labels[labelPID]) {
				_, _ = docker.ContainerRemove(ctx, c.ID,
					client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
			}
		}
	}

	nets, err := docker.NetworkList(ctx, client.NetworkListOptions{Filters: filter})
	if err == nil {
		for _, n := range nets.Items {
			if !processAlive(n.Labels[labelPID]) {
				_, _ = docker.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{})
			}
		}
	}
}

func processAlive(pid string) bool {
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 0 {
		return false
	}
	return !errors.Is(syscall.Kill(n, 0), syscall.ESRCH)
}

// freePort returns a port that was free on 127.0.0.1 a moment ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()

	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
