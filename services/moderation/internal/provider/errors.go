package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Error kinds. Every error that a Provider, Guard or RetryPolicy returns
// matches exactly one of them with errors.Is, except that ErrRateLimited
// and ErrTimeout also match ErrRetryable.
var (
	// ErrRetryable is a failure that may pass on a later attempt: a 5xx
	// status, a dropped connection, a timeout, or a half-open circuit
	// breaker that has no trial call left.
	ErrRetryable = errors.New("temporary provider failure")
	// ErrRateLimited is a 429 or the provider's throttling error. Use
	// errors.As with *Error to read RetryAfter.
	ErrRateLimited = errors.New("provider rate limit exceeded")
	// ErrTimeout is a call that did not finish within the per-provider
	// timeout, or that waited that long for a free concurrency slot.
	ErrTimeout = errors.New("provider call timed out")
	// ErrInvalidInput is an image or request that the provider rejects
	// and will reject again: unsupported format, too large, unreachable
	// URL. It is never retried.
	ErrInvalidInput = errors.New("provider rejected the image")
	// ErrAuth is a rejected credential: a missing, wrong or revoked key,
	// or a key without permission. It is never retried.
	ErrAuth = errors.New("provider authentication failed")
	// ErrBadResponse is a response that could not be read: malformed
	// JSON, a missing score field or a score outside 0-1. It is never
	// retried because the same request gets the same response.
	ErrBadResponse = errors.New("provider response could not be read")
	// ErrCircuitOpen is returned without calling the provider while its
	// circuit breaker is open after repeated failures.
	ErrCircuitOpen = errors.New("provider circuit breaker is open")
)

// Error describes one failed provider call. It carries the provider's
// status and error code, never a credential.
type Error struct {
	// Provider is the provider's name, for example "vision".
	Provider string
	// Kind is one of the sentinel errors above.
	Kind error
	// StatusCode is the HTTP status, or 0 when no response arrived.
	StatusCode int
	// Code is the provider's error code, for example "invalid_api_key",
	// "ThrottlingException" or "INVALID_ARGUMENT".
	Code string
	// Message is the provider's error message. It is left empty for
	// authentication errors, whose messages may echo part of the key.
	Message string
	// RetryAfter is the wait the provider asked for on a rate limit, or 0.
	RetryAfter time.Duration
	// Err is the underlying error, if any.
	Err error
}

// Error formats the provider, kind, status, code and message.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Provider)
	b.WriteString(": ")
	b.WriteString(e.Kind.Error())
	if e.StatusCode != 0 {
		b.WriteString(" (status " + strconv.Itoa(e.StatusCode) + ")")
	}
	if e.Code != "" {
		b.WriteString(": " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RetryAfter > 0 {
		b.WriteString(", retry after " + e.RetryAfter.String())
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Is matches the error's kind, and ErrRetryable for rate limits and
// timeouts.
func (e *Error) Is(target error) bool {
	if target == e.Kind {
		return true
	}
	return target == ErrRetryable &&
		(e.Kind == ErrRateLimited || e.Kind == ErrTimeout)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether err is worth another attempt.
func Retryable(err error) bool {
	return errors.Is(err, ErrRetryable)
}

// KindForStatus maps an HTTP status to an error kind, for providers whose
// error bodies carry no finer code. 429 is a rate limit, and 408 and 5xx
// are temporary. 401 and 403 are authentication errors. 400, 404, 413,
// 415 and 422 are invalid input. Anything else is a bad response.
func KindForStatus(status int) error {
	switch {
	case status == http.StatusTooManyRequests:
		return ErrRateLimited
	case status == http.StatusRequestTimeout || status >= 500:
		return ErrRetryable
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return ErrAuth
	case status == http.StatusBadRequest, status == http.StatusNotFound,
		status == http.StatusRequestEntityTooLarge,
		status == http.StatusUnsupportedMediaType,
		status == http.StatusUnprocessableEntity:
		return ErrInvalidInput
	default:
		return ErrBadResponse
	}
}

// ParseRetryAfter returns the wait that a rate-limited response requests: the
// retry-after-ms header (milliseconds, sent by OpenAI), else Retry-After
// as delay-seconds or an HTTP date (RFC 9110, section 10.2.3). It returns
// 0 when neither is present, valid and positive.
func ParseRetryAfter(h http.Header, now time.Time) time.Duration {
	if ms, err := strconv.ParseFloat(h.Get("Retry-After-Ms"), 64); err == nil && ms > 0 {
		return time.Duration(ms * float64(time.Millisecond))
	}

	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		return max(time.Duration(secs)*time.Second, 0)
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0)
	}
	return 0
}

// NewError returns an *Error of the given kind, with the status and
// Retry-After taken from resp when it is not nil.
func NewError(name string, kind error, resp *http.Response, code, msg string) *Error {
	e := &Error{Provider: name, Kind: kind, Code: code, Message: msg}
	if kind == ErrAuth {
		e.Message = ""
	}
	if resp != nil {
		e.StatusCode = resp.StatusCode
		if kind == ErrRateLimited {
			e.RetryAfter = ParseRetryAfter(resp.Header, time.Now())
		}
	}
	return e
}

// TransportError wraps an error from the HTTP client, which has no
// response: a timeout of ctx becomes ErrTimeout, a cancellation keeps
// context.Canceled visible, and anything else is retryable.
func TransportError(name string, err error) *Error {
	kind := ErrRetryable
	if isDeadline(err) {
		kind = ErrTimeout
	}
	return &Error{Provider: name, Kind: kind, Err: scrubURL(err)}
}

// Send performs req with client and reads at most limit bytes of the
// response body, which it closes. A failure to send or to read comes back
// as a TransportError of the named provider; any status is the caller's
// to judge.
func Send(client *http.Client, req *http.Request, name string, limit int64) (*http.Response, []byte, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, TransportError(name, err)
	}
	defer resp.Body.Close()

	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, nil, TransportError(name, err)
	}
	return resp, body, nil
}

func isDeadline(err error) bool {
	var timeout interface{ Timeout() bool }
	return errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &timeout) && timeout.Timeout())
}

// Errorf returns an *Error of kind ErrBadResponse for a response body
// that could not be read.
func Errorf(name string, status int, format string, args ...any) *Error {
	return &Error{
		Provider: name, Kind: ErrBadResponse, StatusCode: status,
		Err: fmt.Errorf(format, args...),
	}
}

// scrubURL drops the query string from a *url.Error, because some APIs
// take credentials as query parameters and transport errors are logged.
func scrubURL(err error) error {
	var uerr *url.Error
	if !errors.As(err, &uerr) {
		return err
	}

	u, perr := url.Parse(uerr.URL)
	if perr != nil {
		return &url.Error{Op: uerr.Op, URL: "(unparsable URL)", Err: uerr.Err}
	}
	u.RawQuery = ""
	u.User = nil
	return &url.Error{Op: uerr.Op, URL: u.String(), Err: uerr.Err}
}
