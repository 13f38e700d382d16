// Package rekognitiontest is a local mock of Amazon Rekognition's
// DetectModerationLabels for tests. Like the service, it accepts POST /
// with Content-Type application/x-amz-json-1.1 and X-Amz-Target
// RekognitionService.DetectModerationLabels. It verifies the AWS
// Signature Version 4 Authorization header against its one key pair and
// region. It checks that the body carries base64 image bytes of at most
// 5 MiB that start with JPEG or PNG magic bytes.
//
// It responds as the service does: {"ModerationLabels": [...],
// "ModerationModelVersion": "7.0"}, and errors with the X-Amzn-ErrorType
// header and a {"__type", "Code", "Logref", "Message"} body, among them
// ThrottlingException, ProvisionedThroughputExceededException,
// InvalidImageFormatException, ImageTooLargeException and the
// authentication errors. Status codes and messages follow the Amazon
// Rekognition Developer Guide's "Error handling" page and the AWS common
// errors list.
package rekognitiontest

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/genrelay/genrelay/services/moderation/internal/provider/providertest"
)

// The only credentials and region the mock accepts.
const (
	AccessKeyID     = "AKIAGENRELAYTEST0001"
	SecretAccessKey = "genrelay/test/secret/0123456789abcdefghij"
	Region          = "eu-west-1"
	Target          = "RekognitionService.DetectModerationLabels"
	maxImageBytes   = 5 << 20
)

// Server is a running mock. Without Enqueue or SetHandler it returns no
// labels for every valid request.
type Server struct {
	*providertest.Server
}

// Start runs a mock on 127.0.0.1 until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return &Server{providertest.Start(t, validate, func(providertest.Request) providertest.Response {
		return Labels("7.0")
	})}
}

// Label is one moderation label in a response. An empty Parent makes it a
// top-level label.
type Label struct {
	Name       string
	Parent     string
	Confidence float64
	Level      int
}

// Body is the decoded body of a DetectModerationLabels request.
type Body struct {
	Image struct {
		Bytes []byte `json:"Bytes"`
	} `json:"Image"`
	MinConfidence *float64 `json:"MinConfidence"`
}

// Decode returns the body of a recorded request.
func Decode(r providertest.Request) (Body, error) {
	var b Body
	err := json.Unmarshal(r.Body, &b)
	return b, err
}

func validate(r providertest.Request) *providertest.Response {
	if rej := checkProtocol(r); rej != nil {
		return rej
	}
	if rej := checkSignature(r); rej != nil {
		return rej
	}
	return checkBody(r)
}

func checkProtocol(r providertest.Request) *providertest.Response {
	var rej providertest.Response
	switch {
	case r.Method != http.MethodPost || r.Path != "/":
		rej = Error(http.StatusNotFound, "UnknownOperationException", "")
	case r.Header.Get("X-Amz-Target") != Target:
		rej = Error(http.StatusBadRequest, "UnknownOperationException", "")
	case r.Header.Get("Content-Type") != "application/x-amz-json-1.1":
		rej = Error(http.StatusBadRequest, "SerializationException", "")
	default:
		return nil
	}
	return &rej
}

func checkSignature(r providertest.Request) *providertest.Response {
	sig, err := parseSigV4(r.Header.Get("Authorization"))
	if err == nil && sig.accessKeyID != AccessKeyID {
		err = errUnknownAccessKey
	}
	if err == nil && (sig.region != Region || sig.service != "rekognition") {
		err = errBadSignature
	}
	if err == nil {
		err = verifySigV4(r, sig, SecretAccessKey, time.Now().UTC())
	}

	var rej providertest.Response
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errMissingAuth):
		rej = Error(http.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token")
	// NOTE: MissingAuthenticationToken's 403 comes from the AWS common
	// errors list. The 400 of UnrecognizedClientException and
	// InvalidSignatureException is assumed from other AWS JSON services,
	// because Rekognition's reference does not list them.
	case errors.Is(err, errUnknownAccessKey):
		rej = Error(http.StatusBadRequest, "UnrecognizedClientException",
			"The security token included in the request is invalid.")
	case errors.Is(err, errIncompleteSig):
		rej = Error(http.StatusBadRequest, "IncompleteSignatureException", err.Error())
	default:
		rej = Error(http.StatusBadRequest, "InvalidSignatureException",
			"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
	}
	return &rej
}

func checkBody(r providertest.Request) *providertest.Response {
	var rej providertest.Response
	b, err := Decode(r)
	switch {
	case err != nil || b.Image.Bytes == nil:
		rej = InvalidParameter()
	case len(b.Image.Bytes) > maxImageBytes:
		rej = ImageTooLarge()
	case !isJPEG(b.Image.Bytes) && !isPNG(b.Image.Bytes):
		rej = InvalidImageFormat()
	case b.MinConfidence != nil && (*b.MinConfidence < 0 || *b.MinConfidence > 100):
		rej = InvalidParameter()
	default:
		return nil
	}
	return &rej
}

func isJPEG(b []byte) bool { return bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF}) }

func isPNG(b []byte) bool {
	return bytes.HasPrefix(b, []byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'})
}

// Labels returns a 200 with the given labels and model version.
func Labels(version string, labels ...Label) providertest.Response {
	out := []map[string]any{}
	for _, l := range labels {
		level := l.Level
		if level == 0 {
			level = 1
			if l.Parent != "" {
				level = 2
			}
		}
		out = append(out, map[string]any{
			"Confidence": l.Confidence, "Name": l.Name,
			"ParentName": l.Parent, "TaxonomyLevel": level,
		})
	}
	body, _ := json.Marshal(map[string]any{
		"ModerationLabels": out, "ModerationModelVersion": version,
	})
	r := providertest.JSON(http.StatusOK, string(body))
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amzn-RequestId", "03507c9b-7e84-11e9-9ad1-854a4567eb71")
	return r
}

// Error returns an AWS JSON 1.1 error response with the given status and
// code, and the service's message for that code when msg is empty.
func Error(status int, code, msg string) providertest.Response {
	if msg == "" {
		msg = messages[code]
	}
	body, _ := json.Marshal(map[string]string{
		"__type": code, "Code": code,
		"Logref": "5022229e-7e48-11e9-9ad1-854a4567eb71", "Message": msg,
	})
	r := providertest.JSON(status, string(body))
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amzn-ErrorType", code)
	r.Header.Set("X-Amzn-RequestId", "03507c9b-7e84-11e9-9ad1-854a4567eb71")
	return r
}

var messages = map[string]string{
	"ThrottlingException":                    "Slow down; sudden increase in rate of requests.",
	"ProvisionedThroughputExceededException": "Provisioned Rate exceeded.",
	"InternalServerError":                    "Internal server error",
	"InvalidImageFormatException":            "Request has invalid image format.",
	"ImageTooLargeException":                 "Image size is too large.",
	"InvalidParameterException":              "Request has invalid parameters.",
	"UnknownOperationException":              "Unknown operation",
	"SerializationException":                 "Unable to parse request body",
}

// Throttling returns a 400 ThrottlingException ("Slow down").
func Throttling() providertest.Response {
	return Error(http.StatusBadRequest, "ThrottlingException", "")
}

// ServiceThrottling returns the 500 ThrottlingException ("Service
// Unavailable") the service sends when it is temporarily unable to
// process requests.
func ServiceThrottling() providertest.Response {
	return Error(http.StatusInternalServerError, "ThrottlingException", "Service Unavailable")
}

// ProvisionedThroughputExceeded returns the 400 for an account over its
// request rate.
func ProvisionedThroughputExceeded() providertest.Response {
	return Error(http.StatusBadRequest, "ProvisionedThroughputExceededException", "")
}

// InternalServerError returns a 500 InternalServerError.
func InternalServerError() providertest.Response {
	return Error(http.StatusInternalServerError, "InternalServerError", "")
}

// InvalidImageFormat returns the 400 for bytes that are not JPEG or PNG.
func InvalidImageFormat() providertest.Response {
	return Error(http.StatusBadRequest, "InvalidImageFormatException", "")
}

// ImageTooLarge returns the 400 for an image over the size limit.
func ImageTooLarge() providertest.Response {
	return Error(http.StatusBadRequest, "ImageTooLargeException", "")
}

// InvalidParameter returns the 400 for a malformed request.
func InvalidParameter() providertest.Response {
	return Error(http.StatusBadRequest, "InvalidParameterException", "")
}

// AccessDenied returns the 400 for credentials without permission to
// call DetectModerationLabels.
func AccessDenied() providertest.Response {
	return Error(http.StatusBadRequest, "AccessDeniedException",
		"User: arn:aws:iam::123456789012:user/genrelay is not authorized to perform: rekognition:DetectModerationLabels")
}

// HasAuthorization reports whether a recorded request carried a SigV4
// Authorization header.
func HasAuthorization(r providertest.Request) bool {
	return strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=")
}
