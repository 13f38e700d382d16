package webhook_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/genrelay/genrelay/pkg/broker"
	"github.com/genrelay/genrelay/pkg/leonardo/leonardotest"
	"github.com/genrelay/genrelay/services/ingress/internal/webhook"
)

func TestAuthentication(t *testing.T) {
	a := startApp(t)

	tests := []struct {
		name          string
		authorization string
		wantStatus    int
		wantLabel     string
	}{
		{name: "current key", authorization: "Bearer " + currentKey, wantStatus: 202, wantLabel: "current"},
		{name: "previous key", authorization: "bearer  " + previousKey + " ", wantStatus: 202, wantLabel: "previous"},
		{name: "missing header", authorization: "", wantStatus: 401},
		{name: "wrong key", authorization: "Bearer wrong-key", wantStatus: 401},
		{name: "wrong scheme", authorization: "Basic " + currentKey, wantStatus: 401},
		{name: "empty token", authorization: "Bearer ", wantStatus: 401},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := leonardotest.WithObjectID(leonardotest.ImageSD15, "auth-"+tt.name)
			resp := do(t, a.webhookRequest(t, body, tt.authorization))
			if resp.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.status, tt.wantStatus, resp.body)
			}
			if tt.wantStatus == 202 {
				checkKeyLabel(t, a, resp.accepted(t).StreamSequence, tt.wantLabel)
				return
			}

			if got := resp.header.Get("WWW-Authenticate"); got != "Bearer" {
				t.Errorf("WWW-Authenticate = %q, want Bearer", got)
			}
			message, requestID := resp.errorJSON(t)
			if !strings.HasPrefix(message, "unauthorized") {
				t.Errorf("error = %q, want it to start with unauthorized", message)
			}
			if requestID == "" || requestID != resp.header.Get("X-Request-Id") {
				t.Errorf("request_id = %q, X-Request-Id = %q, want equal and set",
					requestID, resp.header.Get("X-Request-Id"))
			}
		})
	}
}

func checkKeyLabel(t *testing.T, a *app, seq uint64, want string) {
	t.Helper()

	for _, msg := range a.inboundMessages(t) {
		if msg.Sequence == seq {
			if got := msg.Header.Get(broker.HeaderKeyLabel); got != want {
				t.Errorf("key label header = %q, want %q", got, want)
			}
			return
		}
	}
	t.Errorf("no stored message with sequence %d", seq)
}

func TestUnauthenticatedMode(t *testing.T) {
	a := startApp(t, func(o *options) { o.noAuth = true })

	resp := do(t, a.webhookRequest(t, leonardotest.Body(leonardotest.ImageSD15), ""))
	resp.accepted(t)

	msgs := a.inboundMessages(t)
	if len(msgs) != 1 {
		t.Fatalf("stored %d messages, want 1", len(msgs))
	}
	if values := msgs[0].Header.Values(broker.HeaderKeyLabel); len(values) != 0 {
		t.Errorf("key label header = %q, want none", values)
	}
}

func TestSourceAllowlist(t *testing.T) {
	a := startApp(t, func(o *options) {
		o.allowedSources = "leonardo, 2001:db8::/32"
		o.trustedProxies = "10.0.0.0/8"
	})
	body := leonardotest.Body(leonardotest.ImageSD15)

	tests := []struct {
		name       string
		peer       string
		xff        string
		wantStatus int
	}{
		{name: "allowed peer", peer: "35.173.108.170:41000", wantStatus: 202},
		{name: "denied peer", peer: "203.0.113.9:41000", wantStatus: 403},
		{name: "allowed ipv6 peer", peer: "[2001:db8::5]:41000", wantStatus: 202},
		{name: "client behind trusted proxy", peer: "10.1.2.3:5000", xff: "52.73.75.186", wantStatus: 202},
		{name: "denied client behind trusted proxy", peer: "10.1.2.3:5000", xff: "203.0.113.9", wantStatus: 403},
		{
			name:       "spoofed left entry behind trusted proxy",
			peer:       "10.1.2.3:5000",
			xff:        "35.173.108.170, 203.0.113.9",
			wantStatus: 403,
		},
		{
			name:       "spoofed header from untrusted peer",
			peer:       "203.0.113.9:41000",
			xff:        "35.173.108.170",
			wantStatus: 403,
		},
		{name: "proxy itself is not allowed", peer: "10.1.2.3:5000", wantStatus: 403},
		{name: "garbage client entry", peer: "10.1.2.3:5000", xff: "unknown", wantStatus: 403},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, webhook.PathLeonardo, bytes.NewReader(body))
			req.RemoteAddr = tt.peer
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+currentKey)
			if tt.xff != "" {
				req.Header.Set("X-Forwarded-For", tt.xff)
			}

			rec := httptest.NewRecorder()
			a.echo.ServeHTTP(rec, req)

			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if tt.wantStatus == 403 && !strings.Contains(rec.Body.String(), "source address not allowed") {
				t.Errorf("body %s does not name the reason", rec.Body)
			}
		})
	}
}

// countingReader records whether anything read the body.
type countingReader struct {
	r     io.Reader
	reads atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.reads.Add(1)
	return c.r.Read(p)
}

func TestRejectionsDoNotReadBody(t *testing.T) {
	a := startApp(t, func(o *options) { o.allowedSources = "leonardo" })

	tests := []struct {
		name          string
		peer          string
		authorization string
		contentType   string
		wantStatus    int
	}{
		{name: "source not allowed", peer: "203.0.113.9:41000", authorization: "Bearer " + currentKey, contentType: "application/json", wantStatus: 403},
		{name: "wrong key", peer: "35.173.108.170:41000", authorization: "Bearer nope", contentType: "application/json", wantStatus: 401},
		{name: "not json", peer: "35.173.108.170:41000", authorization: "Bearer " + currentKey, contentType: "text/plain", wantStatus: 415},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := &countingReader{r: bytes.NewReader(leonardotest.Body(leonardotest.ImageSD15))}
			req := httptest.NewRequest(http.MethodPost, webhook.PathLeonardo, body)
			req.RemoteAddr = tt.peer
			req.Header.Set("Content-Type", tt.contentType)
			req.Header.Set("Authorization", tt.authorization)

			rec := httptest.NewRecorder()
			a.echo.ServeHTTP(rec, req)

			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if n := body.reads.Load(); n != 0 {
				t.Errorf("body was read %d times, want 0", n)
			}
		})
	}

	if n := a.inboundCount(t); n != 0 {
		t.Errorf("stream holds %d messages, want 0", n)
	}
}

// paddedSample returns the SD 1.5 sample padded with trailing spaces to
// exactly size bytes, which is still valid JSON.
func paddedSample(t *testing.T, size int) []byte {
	t.Helper()

	body := leonardotest.Body(leonardotest.ImageSD15)
	if len(body) > size {
		t.Fatalf("sample is %d bytes, larger than %d", len(body), size)
	}
	return append(body, bytes.Repeat([]byte(" "), size-len(body))...)
}

// onlyReader hides the length of a reader, so that net/http sends the
// body chunked.
type onlyReader struct{ io.Reader }

func TestBodyLimit(t *testing.T) {
	const limit = 16 << 10
	a := startApp(t, func(o *options) { o.maxBodyBytes = limit })

	tests := []struct {
		name       string
		size       int
		chunked    bool
		wantStatus int
	}{
		{name: "declared at limit", size: limit, wantStatus: 202},
		{name: "declared over limit", size: limit + 1, wantStatus: 413},
		{name: "chunked at limit", size: limit, chunked: true, wantStatus: 202},
		{name: "chunked over limit", size: limit + 1, chunked: true, wantStatus: 413},
		{name: "chunked far over limit", size: 4 * limit, chunked: true, wantStatus: 413},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := a.webhookRequest(t, nil, "Bearer "+currentKey)
			body := paddedSample(t, tt.size)
			if tt.chunked {
				req.Body = io.NopCloser(onlyReader{bytes.NewReader(body)})
				req.ContentLength = -1
			} else {
				req.Body = io.NopCloser(bytes.NewReader(body))
				req.ContentLength = int64(len(body))
			}

			resp := do(t, req)
			if resp.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.status, tt.wantStatus, resp.body)
			}
			if tt.wantStatus == 413 {
				message, _ := resp.errorJSON(t)
				if !strings.Contains(message, "request body too large") {
					t.Errorf("error = %q, want it to say the body is too large", message)
				}
			}
		})
	}

	// The two accepted bodies have the same message id, so a truncated
	// body that slipped through would show up as a second message.
	if n := a.inboundCount(t); n != 1 {
		t.Errorf("stream holds %d messages, want 1", n)
	}
}

func TestContentType(t *testing.T) {
	a := startApp(t)
	body := leonardotest.Body(leonardotest.ImageSD15)

	tests := []struct {
		contentType string
		wantStatus  int
	}{
		{contentType: "application/json", wantStatus: 202},
		{contentType: "application/json; charset=utf-8", wantStatus: 202},
		{contentType: "Application/JSON; charset=UTF-8", wantStatus: 202},
		{contentType: "application/vnd.leonardo.webhook+json", wantStatus: 202},
		{contentType: "", wantStatus: 415},
		{contentType: "text/plain", wantStatus: 415},
		{contentType: "application/x-www-form-urlencoded", wantStatus: 415},
		{contentType: "text/json+xml", wantStatus: 415},
		{contentType: "application/+json", wantStatus: 415},
		{contentType: "application/json; charset=utf-16", wantStatus: 415},
		{contentType: "application/json; charset", wantStatus: 415},
	}

	for _, tt := range tests {
		t.Run(tt.contentType, func(t *testing.T) {
			req := a.webhookRequest(t, body, "Bearer "+currentKey)
			req.Header.Set("Content-Type", tt.contentType)
			if tt.contentType == "" {
				req.Header.Del("Content-Type")
			}

			resp := do(t, req)
			if resp.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.status, tt.wantStatus, resp.body)
			}
			if tt.wantStatus == 415 {
				message, _ := resp.errorJSON(t)
				if !strings.HasPrefix(message, "unsupported media type: ") {
					t.Errorf("error = %q, want an unsupported media type message", message)
				}
			}
		})
	}
}

func TestContentEncoding(t *testing.T) {
	a := startApp(t)
	body := leonardotest.Body(leonardotest.ImageSD15)

	tests := []struct {
		encoding   string
		wantStatus int
	}{
		{encoding: "identity", wantStatus: 202},
		{encoding: "gzip", wantStatus: 415},
		{encoding: "br", wantStatus: 415},
	}

	for _, tt := range tests {
		t.Run(tt.encoding, func(t *testing.T) {
			req := a.webhookRequest(t, body, "Bearer "+currentKey)
			req.Header.Set("Content-Encoding", tt.encoding)

			resp := do(t, req)
			if resp.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", resp.status, tt.wantStatus, resp.body)
			}
		})
	}
}

func TestValidationErrors(t *testing.T) {
	a := startApp(t)

	tests := []struct {
		name        string
		body        string
		wantMessage string
	}{
		{name: "empty", body: "", wantMessage: "body is not a JSON object"},
		{name: "not json", body: "type=image", wantMessage: "body is not a JSON object"},
		{name: "array", body: `[{"type":"x"}]`, wantMessage: "body is not a JSON object"},
		{name: "truncated", body: `{"type":"image_generation.complete","data":{`, wantMessage: "body is not a JSON object"},
		{name: "missing type", body: `{"data":{"object":{"id":"g1"}}}`, wantMessage: `field "type" is missing or not a string`},
		{name: "numeric type", body: `{"type":7,"data":{"object":{"id":"g1"}}}`, wantMessage: `field "type" is missing or not a string`},
		{name: "type with wildcard", body: `{"type":"image.>","data":{"object":{"id":"g1"}}}`, wantMessage: "invalid event type"},
		{name: "missing data", body: `{"type":"image_generation.complete"}`, wantMessage: `field "data" is missing`},
		{name: "object not an object", body: `{"type":"image_generation.complete","data":{"object":[]}}`, wantMessage: `field "data.object" is missing or not an object`},
		{name: "empty id", body: `{"type":"image_generation.complete","data":{"object":{"id":""}}}`, wantMessage: `field "data.object.id" is missing`},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := a.post(t, []byte(tt.body))
			if resp.status != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400; body %s", resp.status, resp.body)
			}

			message, _ := resp.errorJSON(t)
			if !strings.HasPrefix(message, "invalid callback: ") {
				t.Errorf("error = %q, want prefix %q", message, "invalid callback: ")
			}
			if !strings.Contains(message, tt.wantMessage) {
				t.Errorf("error = %q, want it to contain %q", message, tt.wantMessage)
			}
		})
	}

	if n := a.inboundCount(t); n != 0 {
		t.Errorf("stream holds %d messages, want 0", n)
	}
}

func TestUnknownEventTypeIsStored(t *testing.T) {
	a := startApp(t)
	body := []byte(`{"type":"image_generation.started","data":{"object":{"id":"g-77"}}}`)

	got := a.post(t, body).accepted(t)
	if want := "leonardo:image_generation.started:g-77"; got.MessageID != want {
		t.Errorf("message_id = %q, want %q", got.MessageID, want)
	}

	msgs := a.inboundMessages(t)
	if len(msgs) != 1 {
		t.Fatalf("stored %d messages, want 1", len(msgs))
	}
	if want := "genrelay.inbound.leonardo.image_generation.started"; msgs[0].Subject != want {
		t.Errorf("subject = %q, want %q", msgs[0].Subject, want)
	}
}

func TestBearerKeyCopiedIntoBodyIsRedacted(t *testing.T) {
	a := startApp(t)
	body := []byte(`{"type":"image_generation.complete","data":{"object":{` +
		`"id":"g-1","note":"` + previousKey + `",` +
		`"apiKey":{"key":"acct-key-55d1","webhookCallbackApiKey":"` + currentKey + `"}}}}`)

	a.post(t, body).accepted(t)

	msgs := a.inboundMessages(t)
	if len(msgs) != 1 {
		t.Fatalf("stored %d messages, want 1", len(msgs))
	}
	for _, secret := range []string{currentKey, previousKey, "acct-key-55d1"} {
		if bytes.Contains(msgs[0].Data, []byte(secret)) {
			t.Errorf("stored message contains secret %q", secret)
		}
	}
	if !bytes.Contains(msgs[0].Data, []byte(`"note":"REDACTED"`)) {
		t.Errorf("stored message %s lacks the redacted note", msgs[0].Data)
	}
}

func TestTrailingSlashIsServedWithoutRedirect(t *testing.T) {
	a := startApp(t)

	req := a.webhookRequest(t, leonardotest.Body(leonardotest.ImageSD15), "Bearer "+currentKey)
	req.URL.Path = webhook.PathLeonardo + "/"

	resp := do(t, req)
	resp.accepted(t)
}

func TestRequestID(t *testing.T) {
	a := startApp(t)

	tests := []struct {
		name     string
		incoming string
		wantSame bool
	}{
		{name: "none", incoming: ""},
		{name: "valid", incoming: "trace-7f3a.b_c:1", wantSame: true},
		{name: "too long", incoming: strings.Repeat("a", 65)},
		{name: "with space", incoming: "a b"},
		{name: "not ascii", incoming: "ü-id"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, a.url+"/missing", nil)
			if tt.incoming != "" {
				req.Header.Set("X-Request-Id", tt.incoming)
			}

			resp := do(t, req)
			got := resp.header.Get("X-Request-Id")
			if tt.wantSame && got != tt.incoming {
				t.Errorf("X-Request-Id = %q, want %q", got, tt.incoming)
			}
			if !tt.wantSame && (got == "" || got == tt.incoming) {
				t.Errorf("X-Request-Id = %q, want a generated id", got)
			}
			if _, bodyID := resp.errorJSON(t); bodyID != got {
				t.Errorf("request_id = %q, want %q", bodyID, got)
			}
		})
	}
}

func TestRoutingErrorsAreJSON(t *testing.T) {
	a := startApp(t)

	tests := []struct {
		method     string
		path       string
		wantStatus int
	}{
		{method: http.MethodGet, path: "/nowhere", wantStatus: 404},
		{method: http.MethodGet, path: webhook.PathLeonardo, wantStatus: 405},
		{method: http.MethodPost, path: "/healthz", wantStatus: 405},
	}

	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, a.url+tt.path, nil)
			resp := do(t, req)
			if resp.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d", resp.status, tt.wantStatus)
			}
			if message, _ := resp.errorJSON(t); message == "" {
				t.Error("error message is empty")
			}
		})
	}
}

func TestPanicBecomes500(t *testing.T) {
	a := startApp(t)
	a.echo.GET("/panic", func(echo.Context) error { panic("handler bug") })

	resp := a.get(t, "/panic")
	if resp.status != http.StatusInternalServerError {
		t.Fatalf("status = %d, want 500", resp.status)
	}
	if message, _ := resp.errorJSON(t); message != "internal server error" {
		t.Errorf("error = %q, want %q", message, "internal server error")
	}

	entries := a.logs.FilterField(zap.String("route", "/panic")).All()
	if len(entries) != 1 {
		t.Fatalf("access log lines for /panic = %d, want 1", len(entries))
	}
	fields := entries[0].ContextMap()
	if !strings.Contains(fields["error"].(string), "handler bug") {
		t.Errorf("error field = %v, want the panic value", fields["error"])
	}
	if stack, _ := fields["stack"].(string); !strings.Contains(stack, "goroutine") {
		t.Errorf("stack field = %q, want a stack trace", stack)
	}

	// The server survives the panic.
	if resp := a.get(t, "/healthz"); resp.status != http.StatusOK {
		t.Errorf("healthz after panic = %d, want 200", resp.status)
	}
}

func TestAccessLog(t *testing.T) {
	a := startApp(t)
	body := leonardotest.Body(leonardotest.ImageNSFW)

	got := a.post(t, body).accepted(t)
	do(t, a.webhookRequest(t, body, "Bearer wrong-key-a91f"))

	entries := a.logs.FilterMessage("http request").All()
	if len(entries) != 2 {
		t.Fatalf("access log lines = %d, want 2", len(entries))
	}

	ok := entries[0].ContextMap()
	want := map[string]any{
		"request_id": got.RequestID,
		"status":     int64(202),
		"key_label":  "current",
		"event_type": "image_generation.complete",
		"object_id":  "6513270e-269e-4d37-b2a7-4de452e6b438",
		"message_id": "leonardo:image_generation.complete:6513270e-269e-4d37-b2a7-4de452e6b438",
		"duplicate":  false,
		"stored":     true,
		"client_ip":  "127.0.0.1",
	}
	for key, value := range want {
		if ok[key] != value {
			t.Errorf("field %s = %#v, want %#v", key, ok[key], value)
		}
	}
	if _, found := ok["latency"]; !found {
		t.Error("field latency is missing")
	}

	rejected := entries[1].ContextMap()
	if rejected["status"] != int64(401) || rejected["key_label"] != "" {
		t.Errorf("rejected line status = %v, key_label = %v, want 401 and empty",
			rejected["status"], rejected["key_label"])
	}

	lines := logText(a.logs)
	for _, secret := range append([]string{currentKey, "wrong-key-a91f"},
		leonardotest.Secrets(leonardotest.ImageNSFW)...) {
		if strings.Contains(lines, secret) {
			t.Errorf("log contains secret %q", secret)
		}
	}
}
