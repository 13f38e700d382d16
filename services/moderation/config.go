package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/genrelay/genrelay/pkg/broker"
	"github.com/genrelay/genrelay/services/moderation/internal/policy"
	"github.com/genrelay/genrelay/services/moderation/internal/screening"
	"github.com/genrelay/genrelay/services/moderation/internal/worker"
)

// envPrefix turns flag nats-url into environment variable
// GENRELAY_NATS_URL.
const envPrefix = "GENRELAY"

// errInvalidConfig is returned by parseConfig for a setting out of range.
var errInvalidConfig = errors.New("invalid configuration")

// config is every setting of the service, parsed once from flags and
// environment variables.
type config struct {
	// NATSURL is the NATS server URL, or a comma-separated list for a
	// cluster. Default nats://127.0.0.1:4222.
	NATSURL string
	// HTTPAddr is the host:port of the /healthz and /readyz server.
	// Default 127.0.0.1:8081.
	HTTPAddr string
	// TLSCertFile and TLSKeyFile, both or neither, serve the health
	// endpoints over HTTPS. Default empty: plain HTTP.
	TLSCertFile string
	TLSKeyFile  string
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string
	// LogFormat is json or console. Default json.
	LogFormat string
	// Worker configures the consumer and the worker pool. Its fields
	// document their defaults.
	Worker worker.Config
	// Broker sizes the streams and the verdict bucket, with the same
	// flags as ingress.
	Broker broker.Config
	// Policy selects the action of each moderation rule.
	Policy policy.Config
	// Screening configures the third-party moderation providers. Default
	// none: only the generator's flags decide.
	Screening screening.Config
	// Healthcheck runs the readiness probe instead of the service. Set
	// only from the command line. Default false.
	Healthcheck bool
}

// tlsEnabled reports whether the health server uses TLS.
func (c config) tlsEnabled() bool {
	return c.TLSCertFile != ""
}

// parseConfig parses args and GENRELAY_ environment variables. It returns
// flag.ErrHelp after printing the usage for -h or --help.
func parseConfig(args []string, output io.Writer) (config, error) {
	cfg := config{
		Worker:    worker.DefaultConfig(),
		Broker:    broker.DefaultConfig(),
		Policy:    policy.DefaultConfig(),
		Screening: screening.DefaultConfig(),
	}
	fs := newFlagSet(&cfg, output)

	// The probe flag must come from the command line: a GENRELAY_HEALTHCHECK
	// left in a container's environment would turn the service into a probe.
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	probe := cfg.Healthcheck

	if err := ff.Parse(fs, args, ff.WithEnvVarPrefix(envPrefix)); err != nil {
		return cfg, err
	}
	cfg.Healthcheck = probe

	return cfg, cfg.validate()
}

func newFlagSet(cfg *config, output io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("moderation", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() { printUsage(fs, output) }

	fs.StringVar(&cfg.NATSURL, "nats-url", "nats://127.0.0.1:4222",
		"NATS server URL, or a comma-separated list of URLs for a cluster")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:8081",
		"host:port of the /healthz and /readyz HTTP server")
	fs.StringVar(&cfg.TLSCertFile, "tls-cert-file", "",
		"PEM certificate file for HTTPS on the health server; set with tls-key-file")
	fs.StringVar(&cfg.TLSKeyFile, "tls-key-file", "",
		"PEM private key file for HTTPS on the health server; set with tls-cert-file")
	fs.StringVar(&cfg.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&cfg.LogFormat, "log-format", "json", "log format: json or console")
	fs.BoolVar(&cfg.Healthcheck, "healthcheck", false,
		"probe this service's /readyz, print one line and exit 0 when ready, 1 otherwise (command line only)")

	registerWorkerFlags(fs, &cfg.Worker)
	registerPolicyFlags(fs, &cfg.Policy)
	cfg.Broker.RegisterFlags(fs)
	cfg.Screening.RegisterFlags(fs)
	return fs
}

func registerWorkerFlags(fs *flag.FlagSet, w *worker.Config) {
	fs.StringVar(&w.Durable, "consumer-name", w.Durable,
		"durable consumer name; replicas with the same name share the work")
	fs.DurationVar(&w.AckWait, "ack-wait", w.AckWait,
		"shortest time the server waits for an ack or progress signal before redelivering (duration)")
	fs.IntVar(&w.MaxDeliver, "max-deliver", w.MaxDeliver,
		"deliveries of one message before it goes to the dead-letter subject (count)")
	fs.Var((*durationList)(&w.Backoff), "retry-backoff",
		"comma-separated delays before each redelivery after a failure; the last repeats (durations)")
	fs.IntVar(&w.MaxInFlight, "max-in-flight", w.MaxInFlight,
		"messages delivered and not yet acknowledged, across all replicas (count)")
	fs.IntVar(&w.Workers, "workers", w.Workers, "messages processed at once by this replica (count)")
	fs.DurationVar(&w.PublishTimeout, "publish-timeout", w.PublishTimeout,
		"timeout of each event publish and acknowledgement (duration)")
	fs.DurationVar(&w.ShutdownTimeout, "shutdown-timeout", w.ShutdownTimeout,
		"wait for messages in flight at shutdown before returning them for redelivery (duration)")
}

func registerPolicyFlags(fs *flag.FlagSet, p *policy.Config) {
	fs.Var(&p.FlaggedGeneration, "flagged-generation-action",
		"where images of a generation flagged nsfw or flagged go: rejected or review")
	fs.Var(&p.NSFWImage, "nsfw-image-action", "where an image flagged nsfw goes: rejected or review")
	fs.Var(&p.FlaggedModel, "flagged-model-action",
		"where images from a model flagged nsfw or flagged go: rejected or review")
	fs.Var(&p.UnknownFlag, "unknown-flag-action",
		"where images go when a flag or status is missing or not as documented: rejected or review")
	fs.Var(&p.UnknownSource, "unknown-source-action",
		"where a post-processing result goes when its source image has no verdict: rejected or review")
}

// printUsage lists every flag with its environment variable and default.
func printUsage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprintln(w, "Usage: moderation [flags]")
	fmt.Fprintln(w, "\nModerates Leonardo.Ai callbacks from the GENRELAY_INBOUND stream and")
	fmt.Fprintln(w, "publishes the outcomes to GENRELAY_RESULTS. Each flag can also be set")
	fmt.Fprintln(w, "by its environment variable; a flag on the command line wins.")
	fmt.Fprintln(w)
	fs.VisitAll(func(f *flag.Flag) {
		env := envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if f.Name == "healthcheck" {
			env = "none"
		}
		def := f.DefValue
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(w, "  -%s\n    \t%s\n    \tdefault %s; env %s\n", f.Name, f.Usage, def, env)
	})
}

func (c config) validate() error {
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return fmt.Errorf("%w: set both tls-cert-file and tls-key-file, or neither", errInvalidConfig)
	}
	if _, err := zapcore.ParseLevel(c.LogLevel); err != nil {
		return fmt.Errorf("%w: log-level %q: use debug, info, warn or error", errInvalidConfig, c.LogLevel)
	}
	if c.LogFormat != "json" && c.LogFormat != "console" {
		return fmt.Errorf("%w: log-format %q: use json or console", errInvalidConfig, c.LogFormat)
	}
	if err := c.Broker.Validate(); err != nil {
		return err
	}
	if err := c.Policy.Validate(); err != nil {
		return fmt.Errorf("%w: %w", errInvalidConfig, err)
	}
	if err := c.Screening.Validate(); err != nil {
		return err
	}
	return c.Worker.Validate()
}

// fields returns the settings for the start-up log with secrets masked:
// the password or token of each NATS URL, and provider credentials.
func (c config) fields() []zap.Field {
	return []zap.Field{
		zap.String("nats_url", maskURLs(c.NATSURL)),
		zap.String("http_addr", c.HTTPAddr),
		zap.Bool("tls", c.tlsEnabled()),
		zap.String("log_level", c.LogLevel),
		zap.String("consumer_name", c.Worker.Durable),
		zap.Duration("ack_wait", c.Worker.AckWait),
		zap.Int("max_deliver", c.Worker.MaxDeliver),
		zap.String("retry_backoff", durationList(c.Worker.Backoff).String()),
		zap.Int("max_in_flight", c.Worker.MaxInFlight),
		zap.Int("workers", c.Worker.Workers),
		zap.Duration("publish_timeout", c.Worker.PublishTimeout),
		zap.Duration("shutdown_timeout", c.Worker.ShutdownTimeout),
		zap.String("flagged_generation_action", string(c.Policy.FlaggedGeneration)),
		zap.String("nsfw_image_action", string(c.Policy.NSFWImage)),
		zap.String("flagged_model_action", string(c.Policy.FlaggedModel)),
		zap.String("unknown_flag_action", string(c.Policy.UnknownFlag)),
		zap.String("unknown_source_action", string(c.Policy.UnknownSource)),
		zap.Int("stream_replicas", c.Broker.Replicas),
		zap.Duration("duplicate_window", c.Broker.DuplicateWindow),
		zap.Duration("verdict_ttl", c.Broker.VerdictTTL),
		zap.Any("screening", c.Screening.Redacted()),
	}
}

// maskURLs replaces the password, or a token given as the user, of each
// URL in a comma-separated list. An unparsable entry is masked whole.
func maskURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, part := range parts {
		u, err := url.Parse(strings.TrimSpace(part))
		switch {
		case err != nil:
			parts[i] = "REDACTED"
		case u.User == nil:
		default:
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), "REDACTED")
			} else {
				u.User = url.User("REDACTED")
			}
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// durationList is a flag.Value for a comma-separated list of durations.
// Set replaces the whole list, so parsing twice gives the same result.
type durationList []time.Duration

func (l *durationList) Set(s string) error {
	var out []time.Duration
	for _, part := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil {
			return fmt.Errorf("duration %q: %w", part, err)
		}
		out = append(out, d)
	}
	*l = out
	return nil
}

func (l durationList) String() string {
	parts := make([]string, len(l))
	for i, d := range l {
		parts[i] = d.String()
	}
	return strings.Join(parts, ",")
}
