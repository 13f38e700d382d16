// Command printclean is an example genrelay subscriber: it receives clean
// results through a durable consumer and prints one line per generation,
// followed by one line per image URL.
//
// Settings come from flags or GENRELAY_ variables: GENRELAY_NATS_URL and
// GENRELAY_SUBSCRIBER_DURABLE (the consumer name; processes that share it
// share the events).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/peterbourgon/ff/v3"

	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/pkg/natsconn"
	"github.com/genrelay/genrelay/pkg/subscriber"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "printclean:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("printclean", flag.ContinueOnError)
	natsURL := fs.String("nats-url", nats.DefaultURL, "NATS server `URLs`, comma separated")
	durable := fs.String("subscriber-durable", "printclean", "durable consumer `name`")

	err := ff.Parse(fs, args, ff.WithEnvVarPrefix("GENRELAY"))
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}

	nc, err := natsconn.Connect(*natsURL, "genrelay-printclean", natsconn.Events{
		Error: func(err error) { fmt.Fprintln(stderr, "printclean: nats:", err) },
	})
	if err != nil {
		return err
	}
	defer nc.Drain()

	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}

	cfg := subscriber.Config{
		Durable: *durable,
		OnError: func(err error) { fmt.Fprintln(stderr, "printclean:", err) },
	}
	return runSubscriber(ctx, js, cfg, stdout)
}

// runSubscriber retries setting up the consumer until the results stream
// exists, because moderation may start after this example.
func runSubscriber(ctx context.Context, js jetstream.JetStream, cfg subscriber.Config, stdout io.Writer) error {
	for {
		err := subscriber.Run(ctx, js, cfg, func(_ context.Context, event *genrelayv1.Event) error {
			printEvent(stdout, event)
			return nil
		})
		if err == nil || ctx.Err() != nil {
			return nil
		}

		cfg.OnError(fmt.Errorf("%w; retrying in 2s", err))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(2 * time.Second):
		}
	}
}

func printEvent(w io.Writer, event *genrelayv1.Event) {
	fmt.Fprintf(w, "clean type=%s object_id=%s images=%d removed=%d id=%s\n",
		event.GetType(), event.GetObjectId(), len(event.GetImages()),
		event.GetRemovedCount(), event.GetId())

	for _, img := range event.GetImages() {
		url := img.GetUrl()
		if url == "" {
			url = img.GetMotionMp4Url()
		}
		fmt.Fprintf(w, "  image_id=%s url=%s\n", img.GetId(), url)
	}
}
