package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/genrelay/genrelay/pkg/broker"
	"github.com/genrelay/genrelay/pkg/leonardo"
	"github.com/genrelay/genrelay/services/ingress/internal/auth"
	"github.com/genrelay/genrelay/services/ingress/internal/publish"
)

// Publisher stores a callback and returns JetStream's acknowledgement.
// It returns publish.ErrUnavailable or publish.ErrTooLarge when the
// callback could not be stored.
type Publisher interface {
	Publish(ctx context.Context, m publish.Message) (publish.Ack, error)
}

// ReadinessChecker returns nil when callbacks can be stored, or the
// reason they cannot.
type ReadinessChecker interface {
	Check(ctx context.Context) error
}

// acceptedBody is the JSON body of a 202 response.
type acceptedBody struct {
	Status         string `json:"status"`
	MessageID      string `json:"message_id"`
	Duplicate      bool   `json:"duplicate"`
	StreamSequence uint64 `json:"stream_sequence"`
	RequestID      string `json:"request_id"`
}

// statusBody is the JSON body of a successful probe.
type statusBody struct {
	Status string `json:"status"`
}

// handler serves the webhook and the probes.
type handler struct {
	keyring      *auth.Keyring
	secrets      []string
	maxBodyBytes int64
	publisher    Publisher
	readiness    ReadinessChecker
}

// receive authenticates, reads, validates, redacts and stores one
// callback, and returns 202 once JetStream has acknowledged it.
func (h *handler) receive(c echo.Context) error {
	receivedAt := time.Now()
	info := requestInfoFrom(c)

	label, err := h.authenticate(c.Request())
	if err != nil {
		return err
	}
	info.KeyLabel = label

	body, err := h.readBody(c)
	if err != nil {
		return err
	}

	envelope, err := leonardo.Validate(body)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidCallback, err)
	}
	info.EventType = envelope.Type
	info.ObjectID = envelope.ObjectID
	info.MessageID = envelope.MessageID()

	redacted, err := leonardo.Redact(body, h.secrets...)
	if err != nil {
		return fmt.Errorf("redact callback %s: %w", info.MessageID, err)
	}

	ack, err := h.publisher.Publish(c.Request().Context(), publish.Message{
		Subject:    broker.InboundSubject(leonardo.Source, envelope.Type),
		MsgID:      info.MessageID,
		KeyLabel:   label,
		RequestID:  requestID(c),
		ReceivedAt: receivedAt,
		Body:       redacted,
	})
	if err != nil {
		return err
	}
	info.Stored = true
	info.Duplicate = ack.Duplicate

	return c.JSON(http.StatusAccepted, acceptedBody{
		Status:         "accepted",
		MessageID:      info.MessageID,
		Duplicate:      ack.Duplicate,
		StreamSequence: ack.Sequence,
		RequestID:      requestID(c),
	})
}

// authenticate returns the label of the request's bearer key, or "" when
// authentication is off.
func (h *handler) authenticate(r *http.Request) (string, error) {
	if h.keyring == nil {
		return "", nil
	}

	label, err := h.keyring.Authenticate(r.Header.Get(echo.HeaderAuthorization))
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	return label, nil
}

// readBody checks the Content-Type and reads at most maxBodyBytes. A body
// that is declared or found to be larger fails as a whole, so a
// truncated body is never stored.
func (h *handler) readBody(c echo.Context) ([]byte, error) {
	r := c.Request()
	if err := checkContentType(r.Header.Get(echo.HeaderContentType)); err != nil {
		return nil, err
	}
	if err := checkContentEncoding(r.Header.Values(echo.HeaderContentEncoding)); err != nil {
		return nil, err
	}
	if r.ContentLength > h.maxBodyBytes {
		return nil, fmt.Errorf("%w: Content-Length %d exceeds the limit of %d bytes",
			ErrBodyTooLarge, r.ContentLength, h.maxBodyBytes)
	}

	// MaxBytesReader also makes net/http close the connection after the
	// response, instead of reading the rest of an oversized body.
	reader := http.MaxBytesReader(c.Response().Writer, r.Body, h.maxBodyBytes)
	body, err := io.ReadAll(reader)

	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, fmt.Errorf("%w: body exceeds the limit of %d bytes",
			ErrBodyTooLarge, h.maxBodyBytes)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrUnreadableBody, err)
	}
	return body, nil
}

// checkContentType accepts application/json and application/*+json, with
// parameters, as long as any charset is UTF-8 as RFC 8259 requires.
func checkContentType(value string) error {
	if strings.TrimSpace(value) == "" {
		return fmt.Errorf("%w: Content-Type is missing, use application/json",
			ErrUnsupportedMediaType)
	}

	mediaType, params, err := mime.ParseMediaType(value)
	if err != nil {
		return fmt.Errorf("%w: Content-Type is malformed, use application/json",
			ErrUnsupportedMediaType)
	}
	if !isJSON(mediaType) {
		return fmt.Errorf("%w: Content-Type %q is not JSON, use application/json",
			ErrUnsupportedMediaType, mediaType)
	}

	charset, ok := params["charset"]
	if ok && !strings.EqualFold(charset, "utf-8") && !strings.EqualFold(charset, "utf8") {
		return fmt.Errorf("%w: charset %q is not supported, use utf-8",
			ErrUnsupportedMediaType, charset)
	}
	return nil
}

// checkContentEncoding rejects compressed bodies: Leonardo sends plain
// JSON, and ingress stores the body exactly as it validated it.
func checkContentEncoding(values []string) error {
	for _, v := range values {
		if enc := strings.TrimSpace(v); enc != "" && !strings.EqualFold(enc, "identity") {
			return fmt.Errorf("%w: Content-Encoding %q is not supported, send the body uncompressed",
				ErrUnsupportedMediaType, enc)
		}
	}
	return nil
}

func isJSON(mediaType string) bool {
	if mediaType == echo.MIMEApplicationJSON {
		return true
	}

	subtype, found := strings.CutPrefix(mediaType, "application/")
	return found && strings.HasSuffix(subtype, "+json") && len(subtype) > len("+json")
}

// healthz reports that the process is alive.
func (h *handler) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, statusBody{Status: "ok"})
}

// readyz reports whether callbacks can be stored right now.
func (h *handler) readyz(c echo.Context) error {
	if err := h.readiness.Check(c.Request().Context()); err != nil {
		return fmt.Errorf("%w: %w", ErrNotReady, err)
	}
	return c.JSON(http.StatusOK, statusBody{Status: "ready"})
}
