package natsconn_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/genrelay/genrelay/pkg/broker"
	"github.com/genrelay/genrelay/pkg/natsconn"
	"github.com/genrelay/genrelay/pkg/natstest"
)

func TestReadyFollowsServer(t *testing.T) {
	srv := natstest.Start(t)

	reconnected := make(chan struct{}, 1)
	nc, err := natsconn.Connect(srv.URL(), "test", natsconn.Events{
		Reconnected: func(string) { reconnected <- struct{}{} },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	ready := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return natsconn.Ready(ctx, nc, js, broker.InboundStream)
	}

	if err := ready(); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("Ready before the stream exists = %v, want ErrStreamNotFound", err)
	}
	if err := broker.EnsureStreams(context.Background(), js, broker.DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	if err := ready(); err != nil {
		t.Fatalf("Ready with the stream = %v, want nil", err)
	}

	srv.Shutdown()
	if err := ready(); err == nil {
		t.Fatal("Ready with the server down = nil, want an error")
	}

	srv.Restart()
	select {
	case <-reconnected:
	case <-time.After(10 * time.Second):
		t.Fatal("no reconnect within 10s of the server restarting")
	}
	if err := ready(); err != nil {
		t.Fatalf("Ready after restart = %v, want nil", err)
	}
}

func TestConnectStartsWhileServerIsDown(t *testing.T) {
	srv := natstest.Start(t)
	srv.Shutdown()

	nc, err := natsconn.Connect(srv.URL(), "test", natsconn.Events{})
	if err != nil {
		t.Fatalf("Connect with the server down = %v, want a reconnecting connection", err)
	}
	t.Cleanup(nc.Close)

	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for !nc.IsConnected() {
		if time.Now().After(deadline) {
			t.Fatal("not connected within 10s of the server starting")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
