// Command devnats runs a single NATS server with JetStream in-process, for
// local development: `make run` starts it next to ingress and moderation
// so that nothing but Go is needed. Its JetStream store lives under
// GENRELAY_DATA_DIR, so a restart loses nothing. Production deployments
// use a NATS cluster instead (see docker-compose.yml).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/peterbourgon/ff/v3"
)

// config holds the settings, each a flag and a GENRELAY_ variable.
type config struct {
	// NATSURL is the client URL to listen on. Default
	// nats://127.0.0.1:4222. Only the host and port are used.
	NATSURL string
	// DataDir is the root for local state; the JetStream store is
	// DataDir/nats. Default .data.
	DataDir string
	// MonitorPort serves the NATS monitoring endpoints on the same host;
	// 0 turns them off. Default 8222.
	MonitorPort int
	// Debug turns on the server's own debug log.
	Debug bool
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "devnats:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cfg, err := parseConfig(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}

	opts, err := serverOptions(cfg)
	if err != nil {
		return err
	}

	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("configure nats server: %w", err)
	}
	srv.ConfigureLogger()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return fmt.Errorf("nats server not ready on %s after 30s", srv.ClientURL())
	}

	<-ctx.Done()
	srv.Shutdown()
	srv.WaitForShutdown()

	return nil
}

func parseConfig(args []string) (config, error) {
	fs := flag.NewFlagSet("devnats", flag.ContinueOnError)

	var cfg config
	fs.StringVar(&cfg.NATSURL, "nats-url", "nats://127.0.0.1:4222",
		"client `URL` to listen on (host and port are used)")
	fs.StringVar(&cfg.DataDir, "data-dir", ".data",
		"`directory` for local state; the JetStream store is <dir>/nats")
	fs.IntVar(&cfg.MonitorPort, "monitor-port", 8222,
		"monitoring HTTP `port` on the same host (0 = off)")
	fs.BoolVar(&cfg.Debug, "debug", false, "log the server's debug output")

	err := ff.Parse(fs, args, ff.WithEnvVarPrefix("GENRELAY"))
	return cfg, err
}

func serverOptions(cfg config) (*server.Options, error) {
	host, port, err := listenAddr(cfg.NATSURL)
	if err != nil {
		return nil, err
	}

	storeDir, err := filepath.Abs(filepath.Join(cfg.DataDir, "nats"))
	if err != nil {
		return nil, fmt.Errorf("data dir %q: %w", cfg.DataDir, err)
	}

	return &server.Options{
		ServerName: "genrelay-dev",
		Host:       host,
		Port:       port,
		HTTPHost:   host,
		HTTPPort:   cfg.MonitorPort,
		JetStream:  true,
		StoreDir:   storeDir,
		Debug:      cfg.Debug,
		Logtime:    true,
		NoSigs:     true,
		// Room for a callback at the ingress body limit (1 MiB by
		// default) plus headers; the server default is 1 MB.
		MaxPayload: 4 << 20,
	}, nil
}

// listenAddr takes the host and port from a client URL such as
// nats://127.0.0.1:4222, or from a bare host:port.
func listenAddr(raw string) (string, int, error) {
	hostPort := raw
	if u, err := url.Parse(raw); err == nil && u.Host != "" {
		hostPort = u.Host
	}

	host, portText, err := net.SplitHostPort(hostPort)
	if err != nil {
		return "", 0, fmt.Errorf("nats url %q: want nats://host:port: %w", raw, err)
	}

	port, err := strconv.Atoi(portText)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("nats url %q: invalid port %q", raw, portText)
	}
	return host, port, nil
}
