// Package natstest runs a real NATS server with JetStream inside the test
// process, for integration tests of genrelay and of its subscribers.
package natstest

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server is an in-process NATS server that keeps its address and its
// JetStream store across Restart, like a real server restarted in place.
type Server struct {
	t    testing.TB
	opts server.Options
	srv  *server.Server
}

// Start runs a JetStream-enabled server on a free loopback port with its
// store in a temporary directory, and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()

	s := &Server{t: t, opts: server.Options{
		ServerName: "natstest",
		Host:       "127.0.0.1",
		Port:       freePort(t),
		JetStream:  true,
		StoreDir:   t.TempDir(),
		NoLog:      true,
		NoSigs:     true,
		// Room for a callback at the ingress body limit (1 MiB by
		// default) plus headers; the server default is 1 MB.
		MaxPayload: 4 << 20,
	}}
	s.start()
	t.Cleanup(s.Shutdown)

	return s
}

// URL returns the client URL, which stays the same across restarts.
func (s *Server) URL() string {
	return "nats://" + net.JoinHostPort(s.opts.Host, strconv.Itoa(s.opts.Port))
}

// Shutdown stops the server and waits until it is down. It is safe to call
// more than once.
func (s *Server) Shutdown() {
	if s.srv == nil {
		return
	}
	s.srv.Shutdown()
	s.srv.WaitForShutdown()
	s.srv = nil
}

// Restart starts the server again on the same port and store, after
// Shutdown or in place of a running instance.
func (s *Server) Restart() {
	s.t.Helper()
	s.Shutdown()
	s.start()
}

// Connect returns a client connection and JetStream context that the test
// closes at cleanup.
func (s *Server) Connect(t testing.TB) (*nats.Conn, jetstream.JetStream) {
	t.Helper()

	nc, err := nats.Connect(s.URL())
	if err != nil {
		t.Fatalf("connect to %s: %v", s.URL(), err)
	}
	t.Cleanup(nc.Close)

	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream context: %v", err)
	}
	return nc, js
}

func (s *Server) start() {
	s.t.Helper()

	opts := s.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		s.t.Fatalf("new nats server: %v", err)
	}
	go srv.Start()

	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		s.t.Fatalf("nats server on %s not ready after 10s", s.URL())
	}
	s.srv = srv
}

func freePort(t testing.TB) int {
	t.Helper()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()

	return l.Addr().(*net.TCPAddr).Port
}
