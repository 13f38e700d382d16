package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/genrelay/genrelay/pkg/broker"
	"github.com/genrelay/genrelay/services/ingress/internal/auth"
	"github.com/genrelay/genrelay/services/ingress/internal/sourceip"
)

// envPrefix turns flag nats-url into environment variable
// GENRELAY_NATS_URL.
const envPrefix = "GENRELAY"

// redacted replaces credentials in the logged settings.
const redacted = "REDACTED"

// Config is the ingress configuration, parsed once in run from flags and
// GENRELAY_ environment variables; a flag wins over its variable.
type Config struct {
	// NATSURL is the NATS server URL, or a comma-separated list of the
	// URLs of a cluster. Default nats://127.0.0.1:4222.
	NATSURL string
	// HTTPAddr is the host:port the HTTP server listens on. Default
	// 127.0.0.1:8080.
	HTTPAddr string
	// Keys are the accepted webhook bearer keys. Default none, which is
	// an error unless AllowUnauthenticated is set.
	Keys []auth.Key
	// AllowUnauthenticated lets ingress start without keys and accept
	// every callback. It has no effect when keys are set. Default false.
	AllowUnauthenticated bool
	// AllowedSources are the client addresses allowed to post callbacks.
	// Default none, which allows any address.
	AllowedSources []netip.Prefix
	// TrustedProxies are the peers whose X-Forwarded-For is read. Default
	// none, which makes the TCP peer the client.
	TrustedProxies []netip.Prefix
	// MaxBodyBytes is the maximum request body size, in bytes. Default
	// 1 MiB.
	MaxBodyBytes int64
	// TLSCertFile and TLSKeyFile are PEM files; set both to serve HTTPS,
	// or neither for plain HTTP. Default empty.
	TLSCertFile string
	TLSKeyFile  string
	// PublishTimeout bounds the wait for JetStream's acknowledgement.
	// Default 5s.
	PublishTimeout time.Duration
	// RetryAfter is sent in Retry-After, in whole seconds, with 503
	// responses. Default 5s.
	RetryAfter time.Duration
	// ShutdownTimeout bounds the wait for requests in flight at shutdown,
	// and then the wait for the NATS drain. Default 20s.
	ShutdownTimeout time.Duration
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout are
	// the HTTP server's timeouts. Defaults 5s, 30s, 30s and 120s.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	// LogLevel is the minimum level logged. Default info.
	LogLevel zapcore.Level
	// LogFormat is json or console. Default json.
	LogFormat string
	// Broker sizes the streams; see broker.Config for its defaults.
	Broker broker.Config
	// Healthcheck makes the process probe a running ingress's /readyz
	// and exit instead of serving. Default false.
	Healthcheck bool
}

// rawSettings holds the text of the settings that parseConfig checks
// after flag parsing, so that a flag error can never echo a webhook key.
type rawSettings struct {
	keys           string
	allowedSources string
	trustedProxies string
	logLevel       string
}

func defaultConfig() Config {
	return Config{
		NATSURL:           "nats://127.0.0.1:4222",
		HTTPAddr:          "127.0.0.1:8080",
		MaxBodyBytes:      1 << 20,
		PublishTimeout:    5 * time.Second,
		RetryAfter:        5 * time.Second,
		ShutdownTimeout:   20 * time.Second,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		LogFormat:         "json",
		Broker:            broker.DefaultConfig(),
	}
}

// parseConfig parses args and the environment. It writes the help text
// to stdout and returns errHelp for -h and --help.
func parseConfig(args []string, stdout io.Writer) (Config, error) {
	cfg := defaultConfig()
	raw := rawSettings{logLevel: "info"}
	fs := newFlagSet(&cfg, &raw)

	// The probe flag must come from the command line: a
	// GENRELAY_HEALTHCHECK left in the environment would turn the service
	// into a probe.
	err := fs.Parse(args)
	probe := cfg.Healthcheck
	if err == nil {
		err = ff.Parse(fs, args, ff.WithEnvVarPrefix(envPrefix))
	}
	cfg.Healthcheck = probe
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stdout, fs)
		return Config{}, errHelp
	}
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}

	// The probe reads only the address and the TLS setting, so it works
	// whatever else the shared environment holds.
	if cfg.Healthcheck {
		return cfg, nil
	}

	if err := cfg.apply(raw); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if err := cfg.validate(); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return cfg, nil
}

func newFlagSet(cfg *Config, raw *rawSettings) *flag.FlagSet {
	fs := flag.NewFlagSet("ingress", flag.ContinueOnError)
	fs.SetOutput(io.Discard)

	fs.StringVar(&cfg.NATSURL, "nats-url", cfg.NATSURL,
		"NATS server URL, or a comma-separated list of the URLs of a cluster")
	fs.StringVar(&cfg.HTTPAddr, "http-addr", cfg.HTTPAddr,
		"host:port to listen on for HTTP (0.0.0.0:8080 in a container)")
	fs.StringVar(&raw.keys, "webhook-keys", "",
		"webhook bearer keys as comma-separated label:key pairs; "+
			"labels name keys in logs")
	fs.BoolVar(&cfg.AllowUnauthenticated, "allow-unauthenticated", false,
		"start without webhook keys and accept every callback unauthenticated")
	fs.StringVar(&raw.allowedSources, "allowed-sources", "",
		"comma-separated client CIDRs or IPs allowed to post callbacks; "+
			"\"leonardo\" adds Leonardo.Ai's documented addresses (empty = any)")
	fs.StringVar(&raw.trustedProxies, "trusted-proxies", "",
		"comma-separated CIDRs or IPs of proxies whose X-Forwarded-For is read "+
			"(empty = none)")
	fs.Int64Var(&cfg.MaxBodyBytes, "max-body-bytes", cfg.MaxBodyBytes,
		"maximum request body size in bytes; larger bodies get 413")
	fs.StringVar(&cfg.TLSCertFile, "tls-cert-file", "",
		"PEM certificate file for HTTPS; set with tls-key-file (empty = plain HTTP)")
	fs.StringVar(&cfg.TLSKeyFile, "tls-key-file", "",
		"PEM private key file for HTTPS; set with tls-cert-file (empty = plain HTTP)")
	registerTimeouts(fs, cfg)
	fs.StringVar(&raw.logLevel, "log-level", raw.logLevel,
		"minimum log level: debug, info, warn or error")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat,
		"log format: json or console")
	cfg.Broker.RegisterFlags(fs)
	fs.BoolVar(&cfg.Healthcheck, "healthcheck", false,
		"probe /readyz of the ingress at http-addr and exit 0 when ready, 1 otherwise")
	return fs
}

func registerTimeouts(fs *flag.FlagSet, cfg *Config) {
	fs.DurationVar(&cfg.PublishTimeout, "publish-timeout", cfg.PublishTimeout,
		"maximum wait for JetStream to acknowledge a callback (duration)")
	fs.DurationVar(&cfg.RetryAfter, "retry-after", cfg.RetryAfter,
		"Retry-After sent with 503 responses (duration, rounded up to seconds)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", cfg.ShutdownTimeout,
		"maximum wait for requests in flight at shutdown, "+
			"then for the NATS drain (duration)")
	fs.DurationVar(&cfg.ReadHeaderTimeout, "read-header-timeout", cfg.ReadHeaderTimeout,
		"maximum time to read request headers (duration)")
	fs.DurationVar(&cfg.ReadTimeout, "read-timeout", cfg.ReadTimeout,
		"maximum time to read a whole request, body included (duration)")
	fs.DurationVar(&cfg.WriteTimeout, "write-timeout", cfg.WriteTimeout,
		"maximum time from the end of the request headers "+
			"to the end of the response (duration)")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", cfg.IdleTimeout,
		"maximum time a keep-alive connection waits for the next request (duration)")
}

// apply parses the raw settings into cfg.
func (c *Config) apply(raw rawSettings) error {
	keys, err := auth.ParseKeys(raw.keys)
	if err != nil {
		return fmt.Errorf("webhook-keys: %w", err)
	}
	c.Keys = keys

	if c.AllowedSources, err = sourceip.ParseAllowlist(raw.allowedSources); err != nil {
		return fmt.Errorf("allowed-sources: %w", err)
	}
	if c.TrustedProxies, err = sourceip.ParsePrefixes(raw.trustedProxies); err != nil {
		return fmt.Errorf("trusted-proxies: %w", err)
	}
	if c.LogLevel, err = parseLogLevel(raw.logLevel); err != nil {
		return fmt.Errorf("log-level: %w", err)
	}
	return nil
}

func parseLogLevel(s string) (zapcore.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return zapcore.DebugLevel, nil
	case "info":
		return zapcore.InfoLevel, nil
	case "warn":
		return zapcore.WarnLevel, nil
	case "error":
		return zapcore.ErrorLevel, nil
	default:
		return 0, fmt.Errorf("%q is not debug, info, warn or error", s)
	}
}

// validate checks the settings that apply does not parse.
func (c *Config) validate() error {
	if err := c.validateServer(); err != nil {
		return err
	}
	if len(c.Keys) == 0 && !c.AllowUnauthenticated {
		return errors.New("no webhook keys: set GENRELAY_WEBHOOK_KEYS to " +
			"label:key pairs, or GENRELAY_ALLOW_UNAUTHENTICATED=true " +
			"to accept unauthenticated callbacks")
	}
	if strings.TrimSpace(c.NATSURL) == "" {
		return errors.New("nats-url is empty: set GENRELAY_NATS_URL")
	}
	if c.LogFormat != "json" && c.LogFormat != "console" {
		return fmt.Errorf("log-format %q is not json or console", c.LogFormat)
	}
	if c.MaxBodyBytes <= 0 {
		return fmt.Errorf("max-body-bytes %d must be positive", c.MaxBodyBytes)
	}
	if err := c.validateTimeouts(); err != nil {
		return err
	}
	return c.Broker.Validate()
}

func (c *Config) validateServer() error {
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return fmt.Errorf("http-addr %q is not host:port: %w", c.HTTPAddr, err)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("tls-cert-file and tls-key-file must be set together")
	}
	return nil
}

func (c *Config) validateTimeouts() error {
	for _, d := range []struct {
		name  string
		value time.Duration
	}{
		{"publish-timeout", c.PublishTimeout},
		{"retry-after", c.RetryAfter},
		{"shutdown-timeout", c.ShutdownTimeout},
		{"read-header-timeout", c.ReadHeaderTimeout},
		{"read-timeout", c.ReadTimeout},
		{"write-timeout", c.WriteTimeout},
		{"idle-timeout", c.IdleTimeout},
	} {
		if d.value <= 0 {
			return fmt.Errorf("%s %s must be positive", d.name, d.value)
		}
	}

	if c.WriteTimeout <= c.PublishTimeout {
		return fmt.Errorf("write-timeout %s must exceed publish-timeout %s, "+
			"or no 202 could be written after a slow acknowledgement",
			c.WriteTimeout, c.PublishTimeout)
	}
	return nil
}

// TLS reports whether the server uses HTTPS.
func (c *Config) TLS() bool {
	return c.TLSCertFile != ""
}

// LogFields returns the settings for the start-up log line: key labels
// but no keys, and NATS URLs without credentials.
func (c *Config) LogFields() []zap.Field {
	labels := make([]string, len(c.Keys))
	for i, k := range c.Keys {
		labels[i] = k.Label
	}

	return []zap.Field{
		zap.String("nats_url", redactURLs(c.NATSURL)),
		zap.String("http_addr", c.HTTPAddr),
		zap.Strings("webhook_key_labels", labels),
		zap.Bool("allow_unauthenticated", c.AllowUnauthenticated),
		zap.Strings("allowed_sources", prefixStrings(c.AllowedSources)),
		zap.Strings("trusted_proxies", prefixStrings(c.TrustedProxies)),
		zap.Int64("max_body_bytes", c.MaxBodyBytes),
		zap.Bool("tls", c.TLS()),
		zap.String("tls_cert_file", c.TLSCertFile),
		zap.Duration("publish_timeout", c.PublishTimeout),
		zap.Duration("retry_after", c.RetryAfter),
		zap.Duration("shutdown_timeout", c.ShutdownTimeout),
		zap.Duration("read_header_timeout", c.ReadHeaderTimeout),
		zap.Duration("read_timeout", c.ReadTimeout),
		zap.Duration("write_timeout", c.WriteTimeout),
		zap.Duration("idle_timeout", c.IdleTimeout),
		zap.Stringer("log_level", c.LogLevel),
		zap.String("log_format", c.LogFormat),
		brokerField(c.Broker),
	}
}

func brokerField(b broker.Config) zap.Field {
	return zap.Dict("broker",
		zap.Int("stream_replicas", b.Replicas),
		zap.Duration("duplicate_window", b.DuplicateWindow),
		zap.Duration("inbound_max_age", b.InboundMaxAge),
		zap.Int64("inbound_max_bytes", b.InboundMaxBytes),
		zap.Int64("inbound_max_msgs", b.InboundMaxMsgs),
		zap.Duration("results_max_age", b.ResultsMaxAge),
		zap.Int64("results_max_bytes", b.ResultsMaxBytes),
		zap.Duration("verdict_ttl", b.VerdictTTL),
	)
}

func prefixStrings(prefixes []netip.Prefix) []string {
	out := make([]string, len(prefixes))
	for i, p := range prefixes {
		out[i] = p.String()
	}
	return out
}

// redactURLs replaces the user information of each comma-separated URL:
// a password becomes REDACTED, and so does a user without a password,
// because NATS reads that as a token.
func redactURLs(list string) string {
	urls := strings.Split(list, ",")
	for i, u := range urls {
		urls[i] = redactURL(strings.TrimSpace(u))
	}
	return strings.Join(urls, ",")
}

func redactURL(u string) string {
	scheme, rest, found := strings.Cut(u, "://")
	if !found {
		scheme, rest = "", u
	}

	userinfo, hostPart, found := strings.Cut(rest, "@")
	if !found {
		return u
	}
	if user, _, hasPassword := strings.Cut(userinfo, ":"); hasPassword {
		userinfo = user + ":" + redacted
	} else {
		userinfo = redacted
	}

	if scheme != "" {
		scheme += "://"
	}
	return scheme + userinfo + "@" + hostPart
}

// printUsage writes the help text: every flag with its environment
// variable, default and unit.
func printUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: ingress [flags]\n\n"+
		"ingress receives Leonardo.Ai webhook callbacks and stores them in NATS\n"+
		"JetStream. Each flag can also be set by the environment variable shown;\n"+
		"a flag on the command line wins.\n\nFlags:\n")

	fs.VisitAll(func(f *flag.Flag) {
		typeName, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  -%s\n", strings.TrimSpace(f.Name+" "+typeName))
		fmt.Fprintf(w, "        %s\n", usage)
		env := envName(f.Name)
		if f.Name == "healthcheck" {
			env = "none (command line only)"
		}
		fmt.Fprintf(w, "        env %s, default %s\n", env, defaultText(f))
	})
}

// envName mirrors ff's mapping of a flag name to its variable.
func envName(flagName string) string {
	name := strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToUpper(flagName))
	return envPrefix + "_" + name
}

func defaultText(f *flag.Flag) string {
	if f.DefValue == "" {
		return "none"
	}
	return f.DefValue
}
