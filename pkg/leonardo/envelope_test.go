package leonardo_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/genrelay/genrelay/pkg/leonardo"
	"github.com/genrelay/genrelay/pkg/leonardo/leonardotest"
)

func TestValidateSamples(t *testing.T) {
	tests := []struct {
		name     string
		wantType string
		wantID   string
	}{
		{leonardotest.ImageComplete, leonardo.TypeImageGenerationComplete, "XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX"},
		{leonardotest.ImageNSFW, leonardo.TypeImageGenerationComplete, "6513270e-269e-4d37-b2a7-4de452e6b438"},
		{leonardotest.VideoComplete, leonardo.TypeVideoGenerationComplete, "c7a2ea20-b2f1-4c94-ae05-319acb5c7427"},
		{leonardotest.PostProcessingComplete, leonardo.TypePostProcessingComplete, "ca02135e-92b1-43f2-8ede-0d7ac3baea9e"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := leonardo.Validate(leonardotest.Body(tt.name))
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if env.Type != tt.wantType {
				t.Errorf("Type = %q, want %q", env.Type, tt.wantType)
			}
			if env.ObjectID != tt.wantID {
				t.Errorf("ObjectID = %q, want %q", env.ObjectID, tt.wantID)
			}
		})
	}
}

// callback returns a minimal body with the given type and data members,
// each already JSON.
func callback(typ, data string) string {
	return `{"type":` + typ + `,"data":` + data + `}`
}

func TestValidateAccepts(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantType string
		wantID   string
	}{
		{name: "minimal", body: callback(`"image_generation.complete"`, `{"object":{"id":"g1"}}`),
			wantType: "image_generation.complete", wantID: "g1"},
		{name: "surrounding whitespace", body: "\n\t " + callback(`"a.b"`, `{"object":{"id":"g1"}}`) + " \n",
			wantType: "a.b", wantID: "g1"},
		{name: "unknown type", body: callback(`"image_generation.started"`, `{"object":{"id":"g1"}}`),
			wantType: "image_generation.started", wantID: "g1"},
		{name: "single word type", body: callback(`"ping"`, `{"object":{"id":"g1"}}`),
			wantType: "ping", wantID: "g1"},
		{name: "dashes and underscores", body: callback(`"post-processing.v2_complete"`, `{"object":{"id":"g1"}}`),
			wantType: "post-processing.v2_complete", wantID: "g1"},
		{name: "extra members", body: `{"type":"a","object":"generation","timestamp":1,"data":{"object":{"id":"g1","x":[1]},"y":null}}`,
			wantType: "a", wantID: "g1"},
		{name: "type at length limit", body: callback(`"`+strings.Repeat("t", leonardo.MaxTypeLength)+`"`, `{"object":{"id":"g1"}}`),
			wantType: strings.Repeat("t", leonardo.MaxTypeLength), wantID: "g1"},
		{name: "id at length limit", body: callback(`"a"`, `{"object":{"id":"`+strings.Repeat("i", leonardo.MaxObjectIDLength)+`"}}`),
			wantType: "a", wantID: strings.Repeat("i", leonardo.MaxObjectIDLength)},
		{name: "id with unicode", body: callback(`"a"`, `{"object":{"id":"gén-ü"}}`),
			wantType: "a", wantID: "gén-ü"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := leonardo.Validate([]byte(tt.body))
			if err != nil {
				t.Fatalf("Validate(%s): %v", tt.body, err)
			}
			if env.Type != tt.wantType {
				t.Errorf("Type = %q, want %q", env.Type, tt.wantType)
			}
			if env.ObjectID != tt.wantID {
				t.Errorf("ObjectID = %q, want %q", env.ObjectID, tt.wantID)
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	object := `{"object":{"id":"g1"}}`
	tests := []struct {
		name        string
		body        string
		wantErr     error
		wantMessage string
	}{
		{name: "empty", body: "", wantErr: leonardo.ErrInvalidJSON},
		{name: "whitespace", body: " \n ", wantErr: leonardo.ErrInvalidJSON},
		{name: "null", body: "null", wantErr: leonardo.ErrInvalidJSON},
		{name: "array", body: `[` + callback(`"a"`, object) + `]`, wantErr: leonardo.ErrInvalidJSON},
		{name: "string", body: `"image_generation.complete"`, wantErr: leonardo.ErrInvalidJSON},
		{name: "truncated", body: `{"type":"a","data":{"object":{"id":"g1"}`, wantErr: leonardo.ErrInvalidJSON},
		{name: "trailing data", body: callback(`"a"`, object) + ` x`, wantErr: leonardo.ErrInvalidJSON},
		{name: "two objects", body: callback(`"a"`, object) + callback(`"b"`, object), wantErr: leonardo.ErrInvalidJSON},
		{name: "missing type", body: `{"data":` + object + `}`, wantErr: leonardo.ErrInvalidType,
			wantMessage: `field "type" is missing or not a string`},
		{name: "null type", body: callback(`null`, object), wantErr: leonardo.ErrInvalidType},
		{name: "numeric type", body: callback(`1`, object), wantErr: leonardo.ErrInvalidType},
		{name: "object type", body: callback(`{"a":1}`, object), wantErr: leonardo.ErrInvalidType},
		{name: "empty type", body: callback(`""`, object), wantErr: leonardo.ErrInvalidType},
		{name: "type with space", body: callback(`"image generation"`, object), wantErr: leonardo.ErrInvalidType,
			wantMessage: `"image generation" must be dot-separated words`},
		{name: "type with star", body: callback(`"image.*"`, object), wantErr: leonardo.ErrInvalidType},
		{name: "type with gt", body: callback(`"image.>"`, object), wantErr: leonardo.ErrInvalidType},
		{name: "leading dot", body: callback(`".image"`, object), wantErr: leonardo.ErrInvalidType},
		{name: "trailing dot", body: callback(`"image."`, object), wantErr: leonardo.ErrInvalidType},
		{name: "double dot", body: callback(`"image..complete"`, object), wantErr: leonardo.ErrInvalidType},
		{name: "type too long", body: callback(`"`+strings.Repeat("t", leonardo.MaxTypeLength+1)+`"`, object),
			wantErr: leonardo.ErrInvalidType, wantMessage: "at most 128 bytes"},
		{name: "missing data", body: `{"type":"a"}`, wantErr: leonardo.ErrInvalidObject,
			wantMessage: `field "data" is missing or not an object`},
		{name: "null data", body: callback(`"a"`, `null`), wantErr: leonardo.ErrInvalidObject},
		{name: "array data", body: callback(`"a"`, `[]`), wantErr: leonardo.ErrInvalidObject,
			wantMessage: `field "data" is missing or not an object`},
		{name: "missing object", body: callback(`"a"`, `{}`), wantErr: leonardo.ErrInvalidObject,
			wantMessage: `field "data.object" is missing or not an object`},
		{name: "null object", body: callback(`"a"`, `{"object":null}`), wantErr: leonardo.ErrInvalidObject},
		{name: "string object", body: callback(`"a"`, `{"object":"g1"}`), wantErr: leonardo.ErrInvalidObject},
		{name: "array object", body: callback(`"a"`, `{"object":[{"id":"g1"}]}`), wantErr: leonardo.ErrInvalidObject},
		{name: "missing id", body: callback(`"a"`, `{"object":{}}`), wantErr: leonardo.ErrInvalidObject,
			wantMessage: `field "data.object.id" is missing or not a non-empty string`},
		{name: "numeric id", body: callback(`"a"`, `{"object":{"id":42}}`), wantErr: leonardo.ErrInvalidObject},
		{name: "null id", body: callback(`"a"`, `{"object":{"id":null}}`), wantErr: leonardo.ErrInvalidObject},
		{name: "empty id", body: callback(`"a"`, `{"object":{"id":""}}`), wantErr: leonardo.ErrInvalidObject},
		{name: "id too long", body: callback(`"a"`, `{"object":{"id":"`+strings.Repeat("i", leonardo.MaxObjectIDLength+1)+`"}}`),
			wantErr: leonardo.ErrInvalidObject, wantMessage: "longer than 256 bytes"},
		{name: "id with trailing space", body: callback(`"a"`, `{"object":{"id":"g1 "}}`),
			wantErr: leonardo.ErrInvalidObject, wantMessage: "leading or trailing space"},
		{name: "id of spaces", body: callback(`"a"`, `{"object":{"id":"  "}}`),
			wantErr: leonardo.ErrInvalidObject, wantMessage: "leading or trailing space"},
		{name: "id with line break", body: callback(`"a"`, `{"object":{"id":"g1\r\nX: y"}}`),
			wantErr: leonardo.ErrInvalidObject, wantMessage: "control character"},
		{name: "id with nul", body: callback(`"a"`, `{"object":{"id":"g\u00001"}}`),
			wantErr: leonardo.ErrInvalidObject, wantMessage: "control character"},
		{name: "id not utf-8", body: callback(`"a"`, "{\"object\":{\"id\":\"g\xff1\"}}"),
			wantErr: leonardo.ErrInvalidJSON, wantMessage: "not valid UTF-8"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := leonardo.Validate([]byte(tt.body))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Validate(%.60s) error = %v, want %v", tt.body, err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMessage) {
				t.Errorf("error %q does not contain %q", err, tt.wantMessage)
			}
		})
	}
}

func TestValidateShortensLongTypeInMessage(t *testing.T) {
	long := strings.Repeat("x", 200) + " y"

	_, err := leonardo.Validate([]byte(callback(`"`+long+`"`, `{"object":{"id":"g1"}}`)))
	if !errors.Is(err, leonardo.ErrInvalidType) {
		t.Fatalf("Validate error = %v, want ErrInvalidType", err)
	}
	if strings.Contains(err.Error(), long) {
		t.Errorf("error repeats the whole type: %q", err)
	}
	if !strings.Contains(err.Error(), strings.Repeat("x", 40)+"...") {
		t.Errorf("error %q lacks the first 40 bytes followed by ...", err)
	}
}

func TestMessageID(t *testing.T) {
	env := leonardo.Envelope{Type: "post_processing.complete", ObjectID: "v-9"}

	if got, want := env.MessageID(), "leonardo:post_processing.complete:v-9"; got != want {
		t.Errorf("MessageID() = %q, want %q", got, want)
	}
}
