// Package openaitest is a local mock of OpenAI's moderation endpoint for
// tests. It checks requests the way the API does (POST /v1/moderations,
// a bearer key, a JSON body with a moderation model and image_url inputs)
// and responds with the API's response and error shapes: the moderation
// object, and {"error": {"message", "type", "param", "code"}} with 400,
// 401, 429 (with Retry-After) and 5xx statuses.
//
// Shapes follow the openai-go v3 SDK types (Moderation,
// ModerationNewResponse, apierror.Error) and OpenAI's error-code guide.
package openaitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/genrelay/genrelay/services/moderation/internal/provider/providertest"
)

// APIKey is the only key the mock accepts.
const APIKey = "sk-test-genrelay-0123456789"

// Server is a running mock. Program it with Enqueue or SetHandler; with
// neither, every valid request gets low scores from the requested model.
type Server struct {
	*providertest.Server
}

// Start runs a mock on 127.0.0.1 until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return &Server{providertest.Start(t, validate, func(r providertest.Request) providertest.Response {
		return Scores(requestedModel(r), nil)
	})}
}

// BaseURL returns the URL to configure as the client's base, with /v1.
func (s *Server) BaseURL() string { return s.URL() + "/v1" }

// Input is the decoded body of a moderation request.
type Input struct {
	Model string `json:"model"`
	Input []struct {
		Type     string `json:"type"`
		ImageURL *struct {
			URL string `json:"url"`
		} `json:"image_url"`
		Text string `json:"text"`
	} `json:"input"`
}

// Decode returns the body of r, or an error when it is not a moderation
// request body.
func Decode(r providertest.Request) (Input, error) {
	var in Input
	err := json.Unmarshal(r.Body, &in)
	return in, err
}

// ImageURLs returns the image URLs in r's body.
func ImageURLs(r providertest.Request) []string {
	in, err := Decode(r)
	if err != nil {
		return nil
	}
	var urls []string
	for _, part := range in.Input {
		if part.ImageURL != nil {
			urls = append(urls, part.ImageURL.URL)
		}
	}
	return urls
}

var knownModels = []string{
	"omni-moderation-latest", "omni-moderation-2024-09-26",
	"text-moderation-latest", "text-moderation-stable",
}

func validate(r providertest.Request) *providertest.Response {
	if r.Method != http.MethodPost || r.Path != "/v1/moderations" {
		rej := Error(http.StatusNotFound, "invalid_request_error", "",
			fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.Path))
		return &rej
	}
	if r.Header.Get("Authorization") != "Bearer "+APIKey {
		rej := InvalidAPIKey()
		return &rej
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		rej := InvalidRequest("", "Invalid Content-Type header, expected application/json.")
		return &rej
	}
	return validateBody(r)
}

func validateBody(r providertest.Request) *providertest.Response {
	in, err := Decode(r)
	if err != nil {
		rej := InvalidRequest("", "We could not parse the JSON body of your request.")
		return &rej
	}
	// NOTE: an unknown model is assumed to get 400 invalid_request_error,
	// because OpenAI's error-code guide does not list this case.
	if !slices.Contains(knownModels, in.Model) {
		rej := InvalidRequest("model",
			fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", in.Model))
		return &rej
	}
	if len(in.Input) == 0 {
		rej := InvalidRequest("input", "'input' is a required property")
		return &rej
	}
	for _, part := range in.Input {
		if part.Type == "image_url" && (part.ImageURL == nil || part.ImageURL.URL == "") {
			rej := InvalidRequest("input", "Missing required parameter: 'input[0].image_url.url'.")
			return &rej
		}
		if part.Type == "image_url" && strings.HasPrefix(in.Model, "text-") {
			rej := InvalidRequest("model", "Model "+in.Model+" does not support image input.")
			return &rej
		}
	}
	return nil
}

func requestedModel(r providertest.Request) string {
	in, _ := Decode(r)
	return in.Model
}

// imageCategories apply to image input; the rest apply to text only.
var imageCategories = []string{
	"self-harm", "self-harm/instructions", "self-harm/intent",
	"sexual", "violence", "violence/graphic",
}

var allCategories = []string{
	"harassment", "harassment/threatening", "hate", "hate/threatening",
	"illicit", "illicit/violent", "self-harm", "self-harm/instructions",
	"self-harm/intent", "sexual", "sexual/minors", "violence",
	"violence/graphic",
}

// Scores returns a 200 moderation response from model in which each
// category listed in scores has that score, and every other category a
// low one (0.0001). A category is flagged at 0.5 or above.
func Scores(model string, scores map[string]float64) providertest.Response {
	result := map[string]any{}
	flags, values, applied := map[string]bool{}, map[string]float64{}, map[string][]string{}
	for _, cat := range allCategories {
		v, ok := scores[cat]
		if !ok {
			v = 0.0001
		}
		values[cat], flags[cat] = v, v >= 0.5
		applied[cat] = []string{}
		if slices.Contains(imageCategories, cat) {
			applied[cat] = []string{"image"}
		}
	}
	result["flagged"] = anyTrue(flags)
	result["categories"] = flags
	result["category_scores"] = values
	result["category_applied_input_types"] = applied

	body, _ := json.Marshal(map[string]any{
		"id": "modr-0123456789abcdef", "model": model,
		"results": []any{result},
	})
	return providertest.JSON(http.StatusOK, string(body))
}

func anyTrue(m map[string]bool) bool {
	for _, v := range m {
		if v {
			return true
		}
	}
	return false
}

// Error returns an error response in OpenAI's shape. An empty code is
// sent as null, as the API does.
func Error(status int, typ, code, msg string) providertest.Response {
	obj := map[string]any{"message": msg, "type": typ, "param": nil, "code": nil}
	if code != "" {
		obj["code"] = code
	}
	body, _ := json.Marshal(map[string]any{"error": obj})
	return providertest.JSON(status, string(body))
}

// InvalidRequest returns a 400 invalid_request_error about param.
func InvalidRequest(param, msg string) providertest.Response {
	obj := map[string]any{
		"message": msg, "type": "invalid_request_error",
		"param": param, "code": "invalid_value",
	}
	if param == "" {
		obj["param"] = nil
	}
	body, _ := json.Marshal(map[string]any{"error": obj})
	return providertest.JSON(http.StatusBadRequest, string(body))
}

// ImageDownloadFailed returns the 400 the API sends when it cannot fetch
// the image URL.
func ImageDownloadFailed(url string) providertest.Response {
	return InvalidRequest("url", "Error while downloading "+url+".")
}

// InvalidAPIKey returns the 401 for a wrong key. Its message contains a
// partly masked key, as the API's does.
func InvalidAPIKey() providertest.Response {
	return Error(http.StatusUnauthorized, "invalid_request_error", "invalid_api_key",
		"Incorrect API key provided: sk-wron**********. You can find your API key at https://platform.openai.com/account/api-keys.")
}

// RateLimited returns a 429 with Retry-After in whole seconds and
// retry-after-ms, as the API sends on request rate limits.
func RateLimited(retryAfter time.Duration) providertest.Response {
	r := Error(http.StatusTooManyRequests, "requests", "rate_limit_exceeded",
		"Rate limit reached for omni-moderation-latest on requests per min (RPM): Limit 1000, Used 1000, Requested 1. Please try again in "+retryAfter.String()+".")
	r.Header.Set("Retry-After", strconv.Itoa(int(retryAfter.Seconds())))
	r.Header.Set("Retry-After-Ms", strconv.FormatInt(retryAfter.Milliseconds(), 10))
	return r
}

// ServerError returns the 500 the API sends when it fails internally.
func ServerError() providertest.Response {
	return Error(http.StatusInternalServerError, "server_error", "",
		"The server had an error while processing your request. Sorry about that!")
}

// Overloaded returns the 503 the API sends under high load.
func Overloaded() providertest.Response {
	return Error(http.StatusServiceUnavailable, "server_error", "",
		"The engine is currently overloaded, please try again later.")
}
