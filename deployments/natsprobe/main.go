// Command natsprobe is the container health check of the genrelay NATS
// image. That image is built FROM scratch and has no shell or curl, so
// this static binary GETs the server's monitoring endpoint and exits 0
// when the response is 200 and 1 otherwise, printing one line either way.
//
// The default URL is the server's /healthz, which responds 503 until the
// server has joined a JetStream cluster with a meta leader and its streams
// have caught up, so a node that cannot reach a quorum reports unhealthy.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// errUnhealthy is returned when the endpoint responds with a status
// other than 200.
var errUnhealthy = errors.New("unhealthy")

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stdout, "natsprobe:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("natsprobe", flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:8222/healthz",
		"monitoring `URL` to GET; 200 means healthy")
	timeout := fs.Duration("timeout", 3*time.Second,
		"time limit of the request (duration)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	if err := probe(ctx, *url); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "natsprobe: healthy:", *url)
	return nil
}

// probe GETs url and returns nil when the response is 200.
func probe(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("build request for %s: %w", url, err)
	}

	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()

	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s responded %d: %s",
			errUnhealthy, url, resp.StatusCode, body)
	}
	return nil
}
