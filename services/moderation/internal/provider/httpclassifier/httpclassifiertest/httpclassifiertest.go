// Package httpclassifiertest is a local mock of a self-hosted image
// classifier for tests: it accepts POST /classify with a JSON body
// {"url": "..."} and, when a token is set, "Authorization: Bearer
// <token>", and returns {"scores": {"nsfw": <score>}} or a JSON error
// {"error": "..."} with the status a typical classifier service sends
// (400, 401, 429 with Retry-After, 5xx).
package httpclassifiertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/genrelay/genrelay/services/moderation/internal/provider/providertest"
)

// Path is the endpoint the mock serves, and ScoreField the dotted path
// of the score in its responses.
const (
	Path       = "/classify"
	ScoreField = "scores.nsfw"
)

// Server is a running mock. Without Enqueue or SetHandler it returns a
// score of 0.01 for every valid request.
type Server struct {
	*providertest.Server
}

// Start runs a mock on 127.0.0.1 until the test ends. A non-empty token
// makes the mock require it as a bearer token.
func Start(t testing.TB, token string) *Server {
	t.Helper()
	validate := func(r providertest.Request) *providertest.Response {
		return check(r, token)
	}
	return &Server{providertest.Start(t, validate, func(providertest.Request) providertest.Response {
		return Score(0.01)
	})}
}

// Endpoint returns the URL to configure as the classifier URL.
func (s *Server) Endpoint() string { return s.URL() + Path }

// ImageURL returns the "url" field of a recorded request.
func ImageURL(r providertest.Request) string {
	var body map[string]string
	_ = json.Unmarshal(r.Body, &body)
	return body["url"]
}

func check(r providertest.Request, token string) *providertest.Response {
	var rej providertest.Response
	switch {
	case r.Method != http.MethodPost || r.Path != Path:
		rej = Error(http.StatusNotFound, "not found")
	case token != "" && r.Header.Get("Authorization") != "Bearer "+token:
		rej = Error(http.StatusUnauthorized, "invalid or missing bearer token")
	case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"):
		rej = Error(http.StatusUnsupportedMediaType, "content type must be application/json")
	case !strings.HasPrefix(ImageURL(r), "https://"):
		rej = Error(http.StatusBadRequest, "body must be {\"url\": \"https://...\"}")
	default:
		return nil
	}
	return &rej
}

// Score returns a 200 with the given score at ScoreField.
func Score(v float64) providertest.Response {
	return providertest.JSON(http.StatusOK,
		fmt.Sprintf(`{"scores": {"nsfw": %g, "sfw": %g}, "model": "nsfw-detector-1"}`, v, 1-v))
}

// Error returns a JSON error with the given status.
func Error(status int, msg string) providertest.Response {
	body, _ := json.Marshal(map[string]string{"error": msg})
	return providertest.JSON(status, string(body))
}

// RateLimited returns a 429 with Retry-After in whole seconds.
func RateLimited(retryAfter time.Duration) providertest.Response {
	r := Error(http.StatusTooManyRequests, "too many requests")
	r.Header.Set("Retry-After", strconv.Itoa(int(retryAfter.Seconds())))
	return r
}

// ServerError returns a 500.
func ServerError() providertest.Response {
	return Error(http.StatusInternalServerError, "model failed to load")
}

// Unavailable returns a 503, as a proxy in front of the classifier sends.
func Unavailable() providertest.Response {
	return Error(http.StatusServiceUnavailable, "upstream unavailable")
}
