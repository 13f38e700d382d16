package leonardo

import (
	"strings"
	"testing"

	"github.com/genrelay/genrelay/pkg/leonardo/leonardotest"
)

// generationBody returns a callback whose data.object is object.
func generationBody(object string) []byte {
	return []byte(`{"type":"image_generation.complete","object":"generation",` +
		`"timestamp":1742379925356,"api_version":"v1","data":{"object":` + object + `}}`)
}

func decodeGeneration(t *testing.T, object string) (*Generation, error) {
	t.Helper()

	cb, err := Decode(generationBody(object))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return cb.Generation()
}

func TestGenerationSeed(t *testing.T) {
	tests := []struct {
		name, seed, expected string
	}{
		{"string", `"905778432"`, "905778432"},
		{"number", `905778432`, "905778432"},
		{"number beyond float64 precision", `12345678901234567890`, "12345678901234567890"},
		{"null", `null`, ""},
		{"boolean", `true`, "true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := decodeGeneration(t, `{"id":"g","seed":`+tt.seed+`}`)
			if err != nil {
				t.Fatalf("Generation: %v", err)
			}
			if string(g.Seed) != tt.expected {
				t.Errorf("seed = %q, expected %q", g.Seed, tt.expected)
			}
		})
	}
}

func TestGenerationFlags(t *testing.T) {
	tests := []struct {
		name     string
		member   string
		expected Flag
	}{
		{"true", `"nsfw":true,`, FlagTrue},
		{"false", `"nsfw":false,`, FlagFalse},
		{"string true", `"nsfw":"true",`, FlagUnknown},
		{"string false", `"nsfw":"false",`, FlagUnknown},
		{"number one", `"nsfw":1,`, FlagUnknown},
		{"number zero", `"nsfw":0,`, FlagUnknown},
		{"null", `"nsfw":null,`, FlagUnknown},
		{"object", `"nsfw":{"value":true},`, FlagUnknown},
		{"missing", ``, FlagUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			object := `{` + tt.member + `"id":"g","images":[{` + tt.member + `"id":"i"}],` +
				`"model":{` + tt.member + `"id":"m"}}`
			g, err := decodeGeneration(t, object)
			if err != nil {
				t.Fatalf("Generation: %v", err)
			}

			if g.NSFW != tt.expected {
				t.Errorf("generation nsfw = %v, expected %v", g.NSFW, tt.expected)
			}
			if g.Images[0].NSFW != tt.expected {
				t.Errorf("image nsfw = %v, expected %v", g.Images[0].NSFW, tt.expected)
			}
			if g.Model.NSFW != tt.expected {
				t.Errorf("model nsfw = %v, expected %v", g.Model.NSFW, tt.expected)
			}
		})
	}
}

func TestFlagBool(t *testing.T) {
	if FlagUnknown.Bool() != nil {
		t.Error("FlagUnknown.Bool() is not nil")
	}
	if b := FlagTrue.Bool(); b == nil || !*b {
		t.Errorf("FlagTrue.Bool() = %v, expected true", b)
	}
	if b := FlagFalse.Bool(); b == nil || *b {
		t.Errorf("FlagFalse.Bool() = %v, expected false", b)
	}
}

func TestGenerationNullsAndUnknowns(t *testing.T) {
	object := `{"id":"g","status":"COMPLETE","prompt":null,"sdVersion":"SDXL_FUTURE_9",` +
		`"modelId":null,"model":null,"createdAt":null,"brandNewField":{"nested":[1,2]},` +
		`"images":[{"id":"i","url":null,"motionMP4URL":"https://cdn.leonardo.ai/m.mp4",` +
		`"motionGIFURL":null,"generationId":null,"nsfw":false,"anotherNewField":7}]}`

	g, err := decodeGeneration(t, object)
	if err != nil {
		t.Fatalf("Generation: %v", err)
	}

	checks := []struct {
		name, got, expected string
	}{
		{"sdVersion", string(g.SDVersion), "SDXL_FUTURE_9"},
		{"prompt", string(g.Prompt), ""},
		{"modelId", string(g.ModelID), ""},
		{"image url", string(g.Images[0].URL), ""},
		{"motion mp4", string(g.Images[0].MotionMP4URL), "https://cdn.leonardo.ai/m.mp4"},
		{"motion gif", string(g.Images[0].MotionGIFURL), ""},
	}
	for _, c := range checks {
		if c.got != c.expected {
			t.Errorf("%s = %q, expected %q", c.name, c.got, c.expected)
		}
	}
	if g.Model != nil {
		t.Errorf("model = %+v, expected nil for null", g.Model)
	}
	if g.Images[0].NSFW != FlagFalse {
		t.Errorf("image nsfw = %v, expected FlagFalse", g.Images[0].NSFW)
	}
}

func TestGenerationRejectsWrongShapes(t *testing.T) {
	tests := []struct {
		name, object, mention string
	}{
		{"images as string", `{"id":"g","images":"not a list"}`, "images"},
		{"images as object", `{"id":"g","images":{"id":"i"}}`, "images"},
		{"images as number", `{"id":"g","images":3}`, "images"},
		{"image as string", `{"id":"g","images":["i"]}`, "images"},
		{"seed as object", `{"id":"g","seed":{"value":1}}`, "expected a string or number"},
		{"id as array", `{"id":["g"]}`, "expected a string or number"},
		{"model as string", `{"id":"g","model":"m"}`, "model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeGeneration(t, tt.object)
			if err == nil {
				t.Fatal("Generation: no error")
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q does not mention %q", err, tt.mention)
			}
		})
	}
}

func TestGenerationImagesMissingOrNull(t *testing.T) {
	for _, object := range []string{`{"id":"g"}`, `{"id":"g","images":null}`, `{"id":"g","images":[]}`} {
		g, err := decodeGeneration(t, object)
		if err != nil {
			t.Errorf("Generation(%s): %v", object, err)
			continue
		}
		if len(g.Images) != 0 {
			t.Errorf("Generation(%s) has %d images, expected none", object, len(g.Images))
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"not json", `not json`},
		{"array", `[1,2]`},
		{"data missing", `{"type":"image_generation.complete"}`},
		{"object null", `{"type":"image_generation.complete","data":{"object":null}}`},
		{"type not string", `{"type":7,"data":{"object":{"id":"g"}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode([]byte(tt.body)); err == nil {
				t.Error("Decode: no error")
			}
		})
	}
}

func TestDecodeEnvelopeFieldTypes(t *testing.T) {
	body := `{"type":"image_generation.complete","object":5,"timestamp":"1742379925356",` +
		`"api_version":2,"data":{"object":{"id":"g"}}}`

	cb, err := Decode([]byte(body))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if cb.Object != "5" || cb.APIVersion != "2" || cb.Timestamp != "1742379925356" {
		t.Errorf("object, api_version, timestamp = %q, %q, %q",
			cb.Object, cb.APIVersion, cb.Timestamp)
	}
}

func TestDecodeSamples(t *testing.T) {
	for _, name := range leonardotest.Names() {
		t.Run(name, func(t *testing.T) {
			cb, err := Decode(leonardotest.Body(name))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}

			if cb.Type == TypePostProcessingComplete {
				v, err := cb.Variation()
				if err != nil {
					t.Fatalf("Variation: %v", err)
				}
				if v.GeneratedImageID == "" || v.URL == "" || v.Status != StatusComplete {
					t.Errorf("variation = %+v: source, url or status missing", v)
				}
				return
			}

			g, err := cb.Generation()
			if err != nil {
				t.Fatalf("Generation: %v", err)
			}
			if g.ID == "" || g.NSFW == FlagUnknown || g.Flagged == FlagUnknown {
				t.Errorf("generation %q: nsfw %v, flagged %v; expected booleans", g.ID, g.NSFW, g.Flagged)
			}
			for _, img := range g.Images {
				if img.NSFW == FlagUnknown {
					t.Errorf("image %s nsfw flag not decoded", img.ID)
				}
			}
		})
	}
}
