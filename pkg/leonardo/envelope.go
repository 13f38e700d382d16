package leonardo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Source is the name genrelay uses for Leonardo.Ai in subjects and events.
const Source = "leonardo"

// Event types that Leonardo sends. Only TypeImageGenerationComplete is
// documented; the others have been seen in practice.
const (
	TypeImageGenerationComplete = "image_generation.complete"
	TypeVideoGenerationComplete = "video_generation.complete"
	TypePostProcessingComplete  = "post_processing.complete"
)

// Limits on envelope fields, in bytes. Both values end up in subjects and
// message ids, so they are kept short.
const (
	MaxTypeLength     = 128
	MaxObjectIDLength = 256
)

// Validation errors. Validate wraps one of these with the detail, so
// callers can test the class with errors.Is and show the message as is.
var (
	// ErrInvalidJSON is returned when the body is not a JSON object.
	ErrInvalidJSON = errors.New("body is not a JSON object")
	// ErrInvalidType is returned when "type" is missing, not a string, or
	// not usable as a NATS subject suffix.
	ErrInvalidType = errors.New("invalid event type")
	// ErrInvalidObject is returned when "data.object" is missing or is not
	// an object with a non-empty string "id".
	ErrInvalidObject = errors.New("invalid data.object")
)

// typePattern is the set of event types that can become subject tokens:
// dot-separated words of letters, digits, '_' and '-'.
var typePattern = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// Envelope is the part of a callback that every event type shares.
type Envelope struct {
	// Type is the event type, for example "image_generation.complete".
	Type string
	// ObjectID is data.object.id: the generation id, or the variation id
	// of a post-processing result.
	ObjectID string
}

// MessageID returns the JetStream message id for the callback, so that a
// repeated callback is stored once within the stream's duplicate window.
func (e Envelope) MessageID() string {
	return Source + ":" + e.Type + ":" + e.ObjectID
}

// envelopeJSON mirrors Envelope with raw values, so that a field of the
// wrong JSON type yields a precise error instead of a decode failure.
type envelopeJSON struct {
	Type json.RawMessage `json:"type"`
	Data json.RawMessage `json:"data"`
}

// Validate checks that body is a JSON object with a string "type" and an
// object "data.object" with a string "id", and returns those values.
// Unknown event types are valid so that new Leonardo events are stored.
func Validate(body []byte) (Envelope, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Envelope{}, ErrInvalidJSON
	}

	// RFC 8259 requires UTF-8, and encoding/json would otherwise replace
	// invalid bytes silently, changing what is stored.
	if !utf8.Valid(trimmed) {
		return Envelope{}, fmt.Errorf("%w: body is not valid UTF-8", ErrInvalidJSON)
	}

	var raw envelopeJSON
	if err := json.Unmarshal(trimmed, &raw); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrInvalidJSON, err)
	}

	typ, err := validateType(raw.Type)
	if err != nil {
		return Envelope{}, err
	}

	var data struct {
		Object json.RawMessage `json:"object"`
	}
	if len(raw.Data) == 0 || raw.Data[0] != '{' || json.Unmarshal(raw.Data, &data) != nil {
		return Envelope{}, fmt.Errorf("%w: field \"data\" is missing or not an object", ErrInvalidObject)
	}
	id, err := validateObject(data.Object)
	if err != nil {
		return Envelope{}, err
	}

	return Envelope{Type: typ, ObjectID: id}, nil
}

func validateType(raw json.RawMessage) (string, error) {
	var typ string
	if len(raw) == 0 || json.Unmarshal(raw, &typ) != nil {
		return "", fmt.Errorf("%w: field \"type\" is missing or not a string", ErrInvalidType)
	}

	if len(typ) > MaxTypeLength || !typePattern.MatchString(typ) {
		return "", fmt.Errorf(
			"%w: %q must be dot-separated words of letters, digits, '_' or '-', at most %d bytes",
			ErrInvalidType, truncate(typ, 40), MaxTypeLength)
	}

	return typ, nil
}

func validateObject(raw json.RawMessage) (string, error) {
	var object map[string]json.RawMessage
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &object) != nil {
		return "", fmt.Errorf("%w: field \"data.object\" is missing or not an object", ErrInvalidObject)
	}

	var id string
	if err := json.Unmarshal(object["id"], &id); err != nil || id == "" {
		return "", fmt.Errorf("%w: field \"data.object.id\" is missing or not a non-empty string", ErrInvalidObject)
	}
	if strings.TrimSpace(id) != id || strings.IndexFunc(id, unicode.IsControl) >= 0 {
		return "", fmt.Errorf("%w: field \"data.object.id\" has leading or trailing space or a control character",
			ErrInvalidObject)
	}
	if len(id) > MaxObjectIDLength {
		return "", fmt.Errorf("%w: field \"data.object.id\" is longer than %d bytes", ErrInvalidObject, MaxObjectIDLength)
	}

	return id, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
