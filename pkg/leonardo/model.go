package leonardo

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Flag is a yes/no signal from the sender that may also be absent or of
// the wrong type. Policy code treats FlagUnknown as "not known to be
// safe", so a missing flag fails closed.
type Flag int

// Flag values.
const (
	FlagUnknown Flag = iota
	FlagFalse
	FlagTrue
)

// UnmarshalJSON accepts only the JSON booleans; null, strings, numbers and
// other values decode to FlagUnknown without an error.
func (f *Flag) UnmarshalJSON(b []byte) error {
	switch string(bytes.TrimSpace(b)) {
	case "true":
		*f = FlagTrue
	case "false":
		*f = FlagFalse
	default:
		*f = FlagUnknown
	}
	return nil
}

// Bool returns the flag as a pointer: nil when unknown.
func (f Flag) Bool() *bool {
	switch f {
	case FlagTrue:
		v := true
		return &v
	case FlagFalse:
		v := false
		return &v
	default:
		return nil
	}
}

// FlexString is a field that Leonardo sends as a string in some payloads
// and a number in others, such as "seed". A JSON number keeps its exact
// text, null decodes to "", and a boolean to "true" or "false".
type FlexString string

// UnmarshalJSON implements json.Unmarshaler. Objects and arrays are errors.
func (s *FlexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || string(b) == "null" {
		*s = ""
		return nil
	}

	switch b[0] {
	case '"':
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		*s = FlexString(str)
		return nil
	case '{', '[':
		return fmt.Errorf("expected a string or number, got %s", kindOf(b[0]))
	default:
		*s = FlexString(b)
		return nil
	}
}

func kindOf(c byte) string {
	if c == '{' {
		return "an object"
	}
	return "an array"
}

// Callback is a decoded webhook body. Data holds data.object undecoded,
// because its shape depends on Type. Object and APIVersion are FlexString
// so that a type change in these unused fields cannot make every callback
// undecodable.
type Callback struct {
	Type       string     `json:"type"`
	Object     FlexString `json:"object"`
	Timestamp  FlexString `json:"timestamp"`
	APIVersion FlexString `json:"api_version"`
	Data       struct {
		Object json.RawMessage `json:"object"`
	} `json:"data"`
}

// Generation is data.object of image_generation.complete and
// video_generation.complete. Fields the policy does not use are left out;
// the full object travels on in the published event.
type Generation struct {
	ID        FlexString `json:"id"`
	Status    FlexString `json:"status"`
	NSFW      Flag       `json:"nsfw"`
	Flagged   Flag       `json:"flagged"`
	Prompt    FlexString `json:"prompt"`
	ModelID   FlexString `json:"modelId"`
	SDVersion FlexString `json:"sdVersion"`
	Seed      FlexString `json:"seed"`
	CreatedAt FlexString `json:"createdAt"`
	Model     *Model     `json:"model"`
	Images    []Image    `json:"images"`
}

// Model is the generation's model as Leonardo describes it.
type Model struct {
	ID        FlexString `json:"id"`
	Name      FlexString `json:"name"`
	SDVersion FlexString `json:"sdVersion"`
	NSFW      Flag       `json:"nsfw"`
	Flagged   Flag       `json:"flagged"`
}

// Image is one output of a generation. Motion outputs have a null URL and
// the file at MotionMP4URL.
type Image struct {
	ID           FlexString `json:"id"`
	URL          FlexString `json:"url"`
	MotionMP4URL FlexString `json:"motionMP4URL"`
	MotionGIFURL FlexString `json:"motionGIFURL"`
	GenerationID FlexString `json:"generationId"`
	NSFW         Flag       `json:"nsfw"`
}

// Variation is data.object of post_processing.complete: one derived image
// such as an upscale. It carries no NSFW flag of its own, so its verdict
// comes from GeneratedImageID, the image it was made from.
type Variation struct {
	ID               FlexString `json:"id"`
	Status           FlexString `json:"status"`
	URL              FlexString `json:"url"`
	GeneratedImageID FlexString `json:"generatedImageId"`
	TransformType    FlexString `json:"transformType"`
}

// Generation statuses.
const (
	StatusComplete = "COMPLETE"
	StatusFailed   = "FAILED"
)

// Decode parses a callback body. It fails only when the envelope itself is
// malformed; data.object is decoded by Generation or Variation.
func Decode(body []byte) (*Callback, error) {
	var cb Callback
	if err := json.Unmarshal(body, &cb); err != nil {
		return nil, fmt.Errorf("decode callback: %w", err)
	}
	if len(cb.Data.Object) == 0 || string(cb.Data.Object) == "null" {
		return nil, fmt.Errorf("decode callback: data.object is missing")
	}
	return &cb, nil
}

// Generation decodes data.object as a generation.
func (cb *Callback) Generation() (*Generation, error) {
	var g Generation
	if err := json.Unmarshal(cb.Data.Object, &g); err != nil {
		return nil, fmt.Errorf("decode %s data.object as a generation: %w", cb.Type, err)
	}
	return &g, nil
}

// Variation decodes data.object as a post-processing variation.
func (cb *Callback) Variation() (*Variation, error) {
	var v Variation
	if err := json.Unmarshal(cb.Data.Object, &v); err != nil {
		return nil, fmt.Errorf("decode %s data.object as a variation: %w", cb.Type, err)
	}
	return &v, nil
}
