// Package visiontest is a local mock of Google Cloud Vision's
// images:annotate method for tests. It checks requests as the API does
// (POST /v1/images:annotate, an API key in the X-Goog-Api-Key header or
// the key query parameter, or a bearer token, and a JSON body with
// requests, an image source and features) and responds with the API's shapes: a
// BatchAnnotateImagesResponse with a safeSearchAnnotation, per-image
// errors inside a 200 response, and google.rpc.Status errors
// ({"error": {"code", "message", "status", "details"}}) for invalid
// arguments, bad keys, quota (429) and server failures.
//
// Shapes follow the Vision REST reference (BatchAnnotateImagesResponse,
// AnnotateImageResponse, SafeSearchAnnotation, Likelihood) and Google's
// API error model (google.rpc.Status and its HTTP mapping).
package visiontest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/genrelay/genrelay/services/moderation/internal/provider/providertest"
)

// APIKey is the only key, and Token the only bearer token, that the mock
// accepts.
const (
	APIKey = "AIzaSyTest-genrelay-0123456789"
	Token  = "ya29.test-genrelay"
)

// Server is a running mock. Without Enqueue or SetHandler it returns
// VERY_UNLIKELY for all five likelihoods on every valid request.
type Server struct {
	*providertest.Server
}

// Start runs a mock on 127.0.0.1 until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return &Server{providertest.Start(t, validate, func(providertest.Request) providertest.Response {
		return SafeSearch(map[string]string{})
	})}
}

// Body is the decoded body of an annotate request.
type Body struct {
	Requests []struct {
		Image struct {
			Content string `json:"content"`
			Source  *struct {
				ImageURI string `json:"imageUri"`
			} `json:"source"`
		} `json:"image"`
		Features []struct {
			Type string `json:"type"`
		} `json:"features"`
	} `json:"requests"`
}

// ImageURI returns the first image URI of a recorded request.
func ImageURI(r providertest.Request) string {
	var b Body
	if json.Unmarshal(r.Body, &b) != nil || len(b.Requests) == 0 ||
		b.Requests[0].Image.Source == nil {
		return ""
	}
	return b.Requests[0].Image.Source.ImageURI
}

func validate(r providertest.Request) *providertest.Response {
	var rej providertest.Response
	switch {
	case r.Method != http.MethodPost || r.Path != "/v1/images:annotate":
		rej = Status(http.StatusNotFound, "NOT_FOUND", "Method not found.", "")
	default:
		if auth := checkAuth(r); auth != nil {
			return auth
		}
		return checkBody(r)
	}
	return &rej
}

func checkAuth(r providertest.Request) *providertest.Response {
	q, _ := url.ParseQuery(r.Query)
	key := r.Header.Get("X-Goog-Api-Key")
	if key == "" {
		key = q.Get("key")
	}
	bearer := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")

	var rej providertest.Response
	switch {
	case key == APIKey || bearer == Token:
		return nil
	case key != "":
		rej = InvalidAPIKey()
	case bearer != "":
		rej = Status(http.StatusUnauthorized, "UNAUTHENTICATED",
			"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.", "")
	default:
		rej = Status(http.StatusForbidden, "PERMISSION_DENIED",
			"The request is missing a valid API key.", "")
	}
	return &rej
}

func checkBody(r providertest.Request) *providertest.Response {
	var rej providertest.Response
	var b Body
	switch {
	case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"):
		rej = InvalidArgument("Invalid JSON payload received. Unexpected content type.")
	case json.Unmarshal(r.Body, &b) != nil:
		rej = InvalidArgument("Invalid JSON payload received.")
	case len(b.Requests) == 0:
		rej = InvalidArgument("No requests specified.")
	case len(b.Requests[0].Features) == 0:
		rej = InvalidArgument("No feature specified.")
	case b.Requests[0].Image.Source == nil && b.Requests[0].Image.Content == "":
		rej = InvalidArgument("Request must specify image and features.")
	case b.Requests[0].Features[0].Type != "SAFE_SEARCH_DETECTION":
		rej = InvalidArgument("Invalid value at 'requests[0].features[0].type'")
	default:
		return nil
	}
	return &rej
}

// SafeSearch returns a 200 whose single response carries the given
// likelihoods (fields adult, spoof, medical, violence, racy). Fields not
// given are VERY_UNLIKELY; a field set to "" is left out, which is how
// the API sends UNKNOWN.
func SafeSearch(likelihoods map[string]string) providertest.Response {
	ann := map[string]string{}
	for _, f := range []string{"adult", "spoof", "medical", "violence", "racy"} {
		v, ok := likelihoods[f]
		switch {
		case !ok:
			ann[f] = "VERY_UNLIKELY"
		case v != "":
			ann[f] = v
		}
	}
	body, _ := json.Marshal(map[string]any{
		"responses": []any{map[string]any{"safeSearchAnnotation": ann}},
	})
	return providertest.JSON(http.StatusOK, string(body))
}

// ImageError returns a 200 whose single response is a per-image error
// with the numeric google.rpc.Code, as Vision reports an image it cannot
// read or fetch.
func ImageError(code int, msg string) providertest.Response {
	body, _ := json.Marshal(map[string]any{
		"responses": []any{map[string]any{
			"error": map[string]any{"code": code, "message": msg},
		}},
	})
	return providertest.JSON(http.StatusOK, string(body))
}

// Status returns a google.rpc.Status error response. A non-empty reason
// adds an ErrorInfo detail.
func Status(httpStatus int, status, msg, reason string) providertest.Response {
	obj := map[string]any{"code": httpStatus, "message": msg, "status": status}
	if reason != "" {
		obj["details"] = []any{map[string]any{
			"@type":  "type.googleapis.com/google.rpc.ErrorInfo",
			"reason": reason, "domain": "googleapis.com",
		}}
	}
	body, _ := json.Marshal(map[string]any{"error": obj})
	return providertest.JSON(httpStatus, string(body))
}

// InvalidArgument returns a 400 INVALID_ARGUMENT.
func InvalidArgument(msg string) providertest.Response {
	return Status(http.StatusBadRequest, "INVALID_ARGUMENT", msg, "")
}

// InvalidAPIKey returns the 400 INVALID_ARGUMENT with reason
// API_KEY_INVALID that Google sends for a wrong key.
func InvalidAPIKey() providertest.Response {
	return Status(http.StatusBadRequest, "INVALID_ARGUMENT",
		"API key not valid. Please pass a valid API key.", "API_KEY_INVALID")
}

// QuotaExceeded returns a 429 RESOURCE_EXHAUSTED; a positive retryAfter
// adds a Retry-After header in whole seconds.
func QuotaExceeded(retryAfter time.Duration) providertest.Response {
	r := Status(http.StatusTooManyRequests, "RESOURCE_EXHAUSTED",
		"Quota exceeded for quota metric 'Requests' and limit 'Requests per minute'.", "RATE_LIMIT_EXCEEDED")
	if retryAfter > 0 {
		r.Header.Set("Retry-After", strconv.Itoa(int(retryAfter.Seconds())))
	}
	return r
}

// Internal returns a 500 INTERNAL.
func Internal() providertest.Response {
	return Status(http.StatusInternalServerError, "INTERNAL",
		"Internal error encountered.", "")
}

// Unavailable returns a 503 UNAVAILABLE.
func Unavailable() providertest.Response {
	return Status(http.StatusServiceUnavailable, "UNAVAILABLE",
		"The service is currently unavailable.", "")
}
