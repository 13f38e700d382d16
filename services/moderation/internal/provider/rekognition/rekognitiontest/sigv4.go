package rekognitiontest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/genrelay/genrelay/services/moderation/internal/provider/providertest"
)

// Errors of signature verification, each mapped to the AWS error code the
// service sends.
var (
	errMissingAuth      = errors.New("MissingAuthenticationTokenException")
	errIncompleteSig    = errors.New("IncompleteSignatureException")
	errUnknownAccessKey = errors.New("UnrecognizedClientException")
	errBadSignature     = errors.New("InvalidSignatureException")
)

// sigV4 is the parsed Authorization header of an AWS Signature Version 4
// request: "AWS4-HMAC-SHA256 Credential=<key id>/<date>/<region>/<service>/
// aws4_request, SignedHeaders=<h1;h2>, Signature=<hex>".
type sigV4 struct {
	accessKeyID, date, region, service string
	signedHeaders                      []string
	signature                          string
}

func parseSigV4(auth string) (sigV4, error) {
	const algo = "AWS4-HMAC-SHA256 "
	if auth == "" {
		return sigV4{}, errMissingAuth
	}
	if !strings.HasPrefix(auth, algo) {
		return sigV4{}, errIncompleteSig
	}

	fields := map[string]string{}
	for _, part := range strings.Split(strings.TrimPrefix(auth, algo), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok {
			fields[k] = v
		}
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[4] != "aws4_request" ||
		fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return sigV4{}, errIncompleteSig
	}
	return sigV4{
		accessKeyID: scope[0], date: scope[1], region: scope[2], service: scope[3],
		signedHeaders: strings.Split(fields["SignedHeaders"], ";"),
		signature:     fields["Signature"],
	}, nil
}

// verifySigV4 recomputes the signature of r with secret, following the
// Signature Version 4 steps: canonical request, string to sign, derived
// signing key, HMAC-SHA256.
func verifySigV4(r providertest.Request, sig sigV4, secret string, now time.Time) error {
	amzDate := r.Header.Get("X-Amz-Date")
	signedAt, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil || !strings.HasPrefix(amzDate, sig.date) {
		return fmt.Errorf("%w: missing or inconsistent X-Amz-Date", errIncompleteSig)
	}
	if d := now.Sub(signedAt); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("%w: Signature expired", errBadSignature)
	}

	scope := strings.Join([]string{sig.date, sig.region, sig.service, "aws4_request"}, "/")
	toSign := strings.Join([]string{
		"AWS4-HMAC-SHA256", amzDate, scope, hexSHA256([]byte(canonicalRequest(r, sig))),
	}, "\n")

	key := hmacSHA256([]byte("AWS4"+secret), sig.date)
	for _, part := range []string{sig.region, sig.service, "aws4_request"} {
		key = hmacSHA256(key, part)
	}
	want := hex.EncodeToString(hmacSHA256(key, toSign))
	if !hmac.Equal([]byte(want), []byte(sig.signature)) {
		return errBadSignature
	}
	return nil
}

func canonicalRequest(r providertest.Request, sig sigV4) string {
	var headers strings.Builder
	for _, name := range sig.signedHeaders {
		headers.WriteString(name + ":" + headerValue(r, name) + "\n")
	}

	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		payload = hexSHA256(r.Body)
	}
	path := r.Path
	if path == "" {
		path = "/"
	}
	return strings.Join([]string{
		r.Method, path, canonicalQuery(r.Query), headers.String(),
		strings.Join(sig.signedHeaders, ";"), payload,
	}, "\n")
}

// headerValue returns the canonical value of a signed header: values
// trimmed, inner runs of spaces collapsed, several values joined by
// commas. Host and Content-Length live outside http.Header on the server.
func headerValue(r providertest.Request, name string) string {
	switch name {
	case "host":
		return r.Host
	case "content-length":
		if v := r.Header.Get("Content-Length"); v != "" {
			return v
		}
		return strconv.Itoa(len(r.Body))
	}
	values := r.Header.Values(name)
	for i, v := range values {
		values[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(values, ",")
}

func canonicalQuery(q string) string {
	if q == "" {
		return ""
	}
	parts := strings.Split(q, "&")
	sort.Strings(parts)
	return strings.Join(parts, "&")
}

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}
