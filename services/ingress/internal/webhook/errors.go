package webhook

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/genrelay/genrelay/services/ingress/internal/publish"
)

// Errors that handlers return. The error handler maps each to a status
// code. Their messages are safe to send and to log, because they contain
// no key and no part of the body other than the event type.
var (
	// ErrSourceNotAllowed is returned, as 403, when the client address is
	// not in the allowlist or cannot be determined.
	ErrSourceNotAllowed = errors.New("source address not allowed")
	// ErrUnauthorized is returned, as 401, when the bearer key is missing
	// or matches no configured key.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUnsupportedMediaType is returned, as 415, when the Content-Type
	// is missing or is not JSON.
	ErrUnsupportedMediaType = errors.New("unsupported media type")
	// ErrBodyTooLarge is returned, as 413, when the body is larger than
	// the limit, whether declared by Content-Length or found on reading.
	ErrBodyTooLarge = errors.New("request body too large")
	// ErrUnreadableBody is returned, as 400, when reading the body fails
	// before its end, for example because the client disconnected.
	ErrUnreadableBody = errors.New("request body could not be read")
	// ErrInvalidCallback is returned, as 400, when the body is not a
	// valid Leonardo callback.
	ErrInvalidCallback = errors.New("invalid callback")
	// ErrNotReady is returned by /readyz, as 503, when callbacks cannot
	// be stored right now.
	ErrNotReady = errors.New("not ready")
)

// errorBody is the JSON body of every error response.
type errorBody struct {
	Error     string `json:"error"`
	RequestID string `json:"request_id"`
}

// statusOf maps errors to status codes. Sentinels not listed here, and
// errors that match none, are server errors.
var statusOf = []struct {
	err    error
	status int
}{
	{ErrSourceNotAllowed, http.StatusForbidden},
	{ErrUnauthorized, http.StatusUnauthorized},
	{ErrUnsupportedMediaType, http.StatusUnsupportedMediaType},
	{ErrBodyTooLarge, http.StatusRequestEntityTooLarge},
	{publish.ErrTooLarge, http.StatusRequestEntityTooLarge},
	{ErrUnreadableBody, http.StatusBadRequest},
	{ErrInvalidCallback, http.StatusBadRequest},
	{ErrNotReady, http.StatusServiceUnavailable},
	{publish.ErrUnavailable, http.StatusServiceUnavailable},
}

// newErrorHandler returns the echo error handler: it writes the status
// and JSON body for err, and sets WWW-Authenticate on 401 and
// Retry-After, in whole seconds, when the event store is unavailable. It
// does not log, because the access log records every request once.
func newErrorHandler(retryAfter time.Duration) echo.HTTPErrorHandler {
	retryAfterSeconds := strconv.Itoa(int(math.Ceil(retryAfter.Seconds())))

	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}

		status, message := classify(err)
		header := c.Response().Header()
		switch {
		case status == http.StatusUnauthorized:
			header.Set(echo.HeaderWWWAuthenticate, "Bearer")
		case errors.Is(err, publish.ErrUnavailable):
			header.Set(echo.HeaderRetryAfter, retryAfterSeconds)
		}

		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(status)
			return
		}
		_ = c.JSON(status, errorBody{Error: message, RequestID: requestID(c)})
	}
}

// classify returns the status code and the message for err. Server
// errors get a generic message, so internal details stay in the log.
func classify(err error) (int, string) {
	var httpErr *echo.HTTPError
	if errors.As(err, &httpErr) {
		return httpErr.Code, fmt.Sprint(httpErr.Message)
	}

	for _, s := range statusOf {
		if errors.Is(err, s.err) {
			return s.status, publicMessage(s.status, err)
		}
	}
	return http.StatusInternalServerError, "internal server error"
}

func publicMessage(status int, err error) string {
	if status == http.StatusServiceUnavailable && errors.Is(err, publish.ErrUnavailable) {
		return "event store unavailable, retry later"
	}
	return err.Error()
}

func requestID(c echo.Context) string {
	return c.Response().Header().Get(echo.HeaderXRequestID)
}
