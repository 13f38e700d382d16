package vision

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"

	"github.com/genrelay/genrelay/services/moderation/internal/provider"
)

// status is google.rpc.Status as Google's JSON APIs send it, both as the
// top-level "error" of a failed call and as the per-image "error" inside
// a 200 response (where code is the numeric google.rpc.Code).
type status struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
	Details []struct {
		Type   string `json:"@type"`
		Reason string `json:"reason"`
	} `json:"details"`
}

// google.rpc.Code values that a per-image error can carry.
const (
	codeInvalidArgument   = 3
	codeDeadlineExceeded  = 4
	codePermissionDenied  = 7
	codeResourceExhausted = 8
	codeInternal          = 13
	codeUnavailable       = 14
	codeUnauthenticated   = 16
)

// statusError maps a non-200 response. Google sends an invalid API key as
// 400 INVALID_ARGUMENT with reason API_KEY_INVALID, so the reason decides
// before the status does.
func statusError(resp *http.Response, body []byte) error {
	var env struct {
		Error status `json:"error"`
	}
	_ = json.Unmarshal(body, &env)

	kind := provider.KindForStatus(resp.StatusCode)
	if env.Error.hasReason("API_KEY_INVALID", "API_KEY_SERVICE_BLOCKED") {
		kind = provider.ErrAuth
	}
	code := env.Error.Status
	if code == "" {
		code = http.StatusText(resp.StatusCode)
	}
	return provider.NewError(Name, kind, resp, code, env.Error.Message)
}

func (s status) hasReason(reasons ...string) bool {
	for _, d := range s.Details {
		for _, r := range reasons {
			if d.Reason == r {
				return true
			}
		}
	}
	return false
}

// imageError maps the per-image error inside a 200 response.
//
// NOTE: Vision's reference documents the error field as google.rpc.Status
// but lists no codes for it. Mapping codes 4 and 7 for unreachable URLs
// rests on the messages quoted below, not on a documented list. Vision uses
// it for images it cannot read or fetch: "Bad image data." is
// INVALID_ARGUMENT, an unreachable URL is DEADLINE_EXCEEDED or
// PERMISSION_DENIED ("We're not allowed to access the URL on your
// behalf").
func imageError(s status) error {
	var kind error
	switch s.Code {
	case codeDeadlineExceeded, codeInternal, codeUnavailable:
		kind = provider.ErrRetryable
	case codeResourceExhausted:
		kind = provider.ErrRateLimited
	case codeUnauthenticated:
		kind = provider.ErrAuth
	case codeInvalidArgument, codePermissionDenied:
		kind = provider.ErrInvalidInput
	default:
		kind = provider.ErrBadResponse
	}
	return &provider.Error{
		Provider: Name, Kind: kind, StatusCode: http.StatusOK,
		Code: fmt.Sprintf("image error %d", s.Code), Message: s.Message,
	}
}

type annotateResponse struct {
	Responses []struct {
		// SafeSearch is decoded loosely because the annotation may also
		// carry numeric fields besides the five likelihood labels.
		SafeSearch map[string]any `json:"safeSearchAnnotation"`
		Error      *status        `json:"error"`
	} `json:"responses"`
}

func parseAnnotation(body []byte) (*provider.Result, error) {
	var resp annotateResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, provider.Errorf(Name, http.StatusOK, "decode response: %w", err)
	}
	if len(resp.Responses) != 1 {
		return nil, provider.Errorf(Name, http.StatusOK,
			"expected 1 response, got %d", len(resp.Responses))
	}

	one := resp.Responses[0]
	if one.Error != nil && one.Error.Code != 0 {
		return nil, imageError(*one.Error)
	}
	if one.SafeSearch == nil {
		return nil, provider.Errorf(Name, http.StatusOK, "response has no safeSearchAnnotation")
	}
	return safeSearchResult(one.SafeSearch), nil
}

// safeSearchResult scores the five likelihood fields. A field that is
// absent is UNKNOWN, because protobuf JSON leaves out enum fields that
// hold their zero value, which for Likelihood is UNKNOWN.
func safeSearchResult(ann map[string]any) *provider.Result {
	res := &provider.Result{Scores: map[string]float64{}}
	for field, category := range safeSearchCategories {
		label, ok := ann[field].(string)
		if !ok {
			label = "UNKNOWN"
		}
		res.Scores[category] = LikelihoodScore(label)
		res.Labels = append(res.Labels, field+":"+label)
	}
	sort.Strings(res.Labels)
	return res
}
