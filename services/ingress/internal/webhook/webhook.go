// Package webhook is the HTTP side of ingress: the Leonardo.Ai webhook
// endpoint, the health probes, and the middleware and error handler that
// turn every failure into a JSON response and one access log line.
package webhook

import (
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"go.uber.org/zap"

	"github.com/genrelay/genrelay/services/ingress/internal/auth"
	"github.com/genrelay/genrelay/services/ingress/internal/sourceip"
)

// Routes.
const (
	// PathLeonardo receives Leonardo.Ai callbacks. The same path with a
	// trailing slash works too, without a redirect.
	PathLeonardo = "/v1/webhooks/leonardo"
	pathHealthz  = "/healthz"
	pathReadyz   = "/readyz"
)

// Config holds what the webhook server needs. Publisher, Readiness,
// Resolver and Logger are required.
type Config struct {
	// Keyring holds the accepted bearer keys. Nil turns authentication
	// off; an empty keyring rejects every callback.
	Keyring *auth.Keyring
	// Allowlist holds the allowed client addresses. Nil allows any.
	Allowlist *sourceip.Allowlist
	// Resolver finds the client address, behind trusted proxies.
	Resolver *sourceip.Resolver
	// MaxBodyBytes is the maximum body size, in bytes.
	MaxBodyBytes int64
	// RetryAfter is sent in Retry-After, rounded up to whole seconds,
	// when the event store is unavailable.
	RetryAfter time.Duration
	// Publisher stores callbacks.
	Publisher Publisher
	// Readiness backs /readyz.
	Readiness ReadinessChecker
	// Logger receives one access log line per request.
	Logger *zap.Logger
}

// New returns the HTTP handler of ingress, built on echo.
func New(cfg Config) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Logger.SetOutput(io.Discard)
	e.IPExtractor = ipExtractor(cfg.Resolver)
	e.HTTPErrorHandler = newErrorHandler(cfg.RetryAfter)

	// The request id comes first, so that the access log and error bodies
	// include it. The access log wraps Recover, so it logs a panic as 500.
	e.Use(
		dropInvalidRequestID,
		middleware.RequestID(),
		accessLog(cfg.Logger),
		middleware.RecoverWithConfig(middleware.RecoverConfig{
			LogErrorFunc: func(_ echo.Context, err error, stack []byte) error {
				return &panicError{value: err, stack: stack}
			},
			DisableErrorHandler: true,
			DisableStackAll:     true,
		}),
	)

	h := &handler{
		keyring:      cfg.Keyring,
		maxBodyBytes: cfg.MaxBodyBytes,
		publisher:    cfg.Publisher,
		readiness:    cfg.Readiness,
	}
	if cfg.Keyring != nil {
		h.secrets = cfg.Keyring.Secrets()
	}

	var guards []echo.MiddlewareFunc
	if cfg.Allowlist != nil {
		guards = append(guards, sourceGuard(cfg.Resolver, cfg.Allowlist))
	}
	e.POST(PathLeonardo, h.receive, guards...)
	e.POST(PathLeonardo+"/", h.receive, guards...)
	e.Match([]string{http.MethodGet, http.MethodHead}, pathHealthz, h.healthz)
	e.Match([]string{http.MethodGet, http.MethodHead}, pathReadyz, h.readyz)

	return e
}

func isWebhookRoute(route string) bool {
	return strings.TrimSuffix(route, "/") == PathLeonardo
}
