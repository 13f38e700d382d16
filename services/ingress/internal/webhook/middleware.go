package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/genrelay/genrelay/services/ingress/internal/sourceip"
)

// maxRequestIDLength bounds an X-Request-Id taken from the request.
const maxRequestIDLength = 64

// requestInfoKey is the echo context key of the *requestInfo.
const requestInfoKey = "genrelay.request_info"

// requestInfo collects what the handler learnt about a callback, for the
// access log line.
type requestInfo struct {
	KeyLabel  string
	EventType string
	ObjectID  string
	MessageID string
	Stored    bool
	Duplicate bool
}

func requestInfoFrom(c echo.Context) *requestInfo {
	if info, ok := c.Get(requestInfoKey).(*requestInfo); ok {
		return info
	}

	// Only reached when the access log middleware is not installed.
	info := &requestInfo{}
	c.Set(requestInfoKey, info)
	return info
}

// dropInvalidRequestID removes an incoming X-Request-Id that is empty,
// longer than maxRequestIDLength or not printable ASCII without spaces,
// so that echo's RequestID middleware generates one instead.
func dropInvalidRequestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		header := c.Request().Header
		if !isValidRequestID(header.Get(echo.HeaderXRequestID)) {
			header.Del(echo.HeaderXRequestID)
		}
		return next(c)
	}
}

func isValidRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '!' || id[i] > '~' {
			return false
		}
	}
	return true
}

// panicError is a recovered panic, kept with its stack for the log.
type panicError struct {
	value error
	stack []byte
}

func (e *panicError) Error() string {
	return fmt.Sprintf("panic: %v", e.value)
}

func (e *panicError) Unwrap() error {
	return e.value
}

// accessLog writes one line per request after the error handler has
// written the response. Probes log at debug level when they succeed, so
// that a probe every few seconds does not flood the log, and at warn when
// they fail. Other requests log client errors at warn and server errors
// at error, with the stack of a recovered panic.
func accessLog(log *zap.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			info := &requestInfo{}
			c.Set(requestInfoKey, info)

			err := next(c)
			if err != nil {
				c.Error(err)
			}

			status := c.Response().Status
			if ce := log.Check(logLevel(c.Path(), status), "http request"); ce != nil {
				ce.Write(accessFields(c, info, err, time.Since(start))...)
			}
			return nil
		}
	}
}

func logLevel(route string, status int) zapcore.Level {
	probe := route == pathHealthz || route == pathReadyz
	serverError := status >= http.StatusInternalServerError
	switch {
	case probe && status == http.StatusOK:
		return zapcore.DebugLevel
	case probe, status >= http.StatusBadRequest && !serverError:
		return zapcore.WarnLevel
	case serverError:
		return zapcore.ErrorLevel
	default:
		return zapcore.InfoLevel
	}
}

// accessFields never includes the body or the Authorization header.
func accessFields(
	c echo.Context,
	info *requestInfo,
	err error,
	latency time.Duration,
) []zap.Field {
	r := c.Request()
	fields := []zap.Field{
		zap.String("request_id", requestID(c)),
		zap.String("method", r.Method),
		zap.String("route", c.Path()),
		zap.String("path", r.URL.Path),
		zap.Int("status", c.Response().Status),
		zap.Duration("latency", latency),
		zap.String("client_ip", c.RealIP()),
		zap.Int64("content_length", r.ContentLength),
	}

	if isWebhookRoute(c.Path()) {
		fields = append(fields,
			zap.String("key_label", info.KeyLabel),
			zap.String("event_type", info.EventType),
			zap.String("object_id", info.ObjectID),
			zap.String("message_id", info.MessageID),
			zap.Bool("stored", info.Stored),
			zap.Bool("duplicate", info.Duplicate),
		)
	}

	if err != nil {
		fields = append(fields, zap.Error(err))
		var p *panicError
		if errors.As(err, &p) {
			fields = append(fields, zap.ByteString("stack", p.stack))
		}
	}
	return fields
}

// sourceGuard rejects, before the body is read, requests whose client
// address is not in the allowlist.
func sourceGuard(
	resolver *sourceip.Resolver,
	allowlist *sourceip.Allowlist,
) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			addr, err := resolver.ClientAddr(c.Request())
			if err != nil {
				return fmt.Errorf("%w: %w", ErrSourceNotAllowed, err)
			}
			if !allowlist.Allows(addr) {
				return fmt.Errorf("%w: %s", ErrSourceNotAllowed, addr)
			}
			return next(c)
		}
	}
}

// ipExtractor makes echo's RealIP return the address that sourceGuard
// checks, or "" when it cannot be determined.
func ipExtractor(resolver *sourceip.Resolver) echo.IPExtractor {
	return func(r *http.Request) string {
		addr, err := resolver.ClientAddr(r)
		if err != nil {
			return ""
		}
		return addr.String()
	}
}
