package leonardo_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/genrelay/genrelay/pkg/leonardo"
	"github.com/genrelay/genrelay/pkg/leonardo/leonardotest"
)

// decode parses JSON with numbers kept as json.Number, the way Redact
// reads them, so that documents compare exactly.
func decode(t *testing.T, data []byte) any {
	t.Helper()

	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("decode %.80s: %v", data, err)
	}
	return doc
}

func TestRedactSamples(t *testing.T) {
	for _, name := range leonardotest.Names() {
		t.Run(name, func(t *testing.T) {
			body := leonardotest.Body(name)

			out, err := leonardo.Redact(body)
			if err != nil {
				t.Fatalf("Redact: %v", err)
			}

			// Apart from the two secrets, the document is unchanged.
			want := decode(t, body)
			apiKey := want.(map[string]any)["data"].(map[string]any)["object"].(map[string]any)["apiKey"].(map[string]any)
			apiKey["key"] = leonardo.Redacted
			apiKey["webhookCallbackApiKey"] = leonardo.Redacted
			if got := decode(t, out); !reflect.DeepEqual(got, want) {
				t.Errorf("redacted document differs beyond the apiKey secrets:\n%s", out)
			}

			// The guide's sample masks its key with the value of its ids.
			if name == leonardotest.ImageComplete {
				return
			}
			for _, secret := range leonardotest.Secrets(name) {
				if bytes.Contains(out, []byte(secret)) {
					t.Errorf("output contains secret %q", secret)
				}
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		extra  []string
		want   string
		absent []string
	}{
		{
			name: "top-level apiKey",
			body: `{"apiKey":{"id":"k1","key":"s1","webhookCallbackApiKey":"w1","name":"prod"}}`,
			want: `{"apiKey":{"id":"k1","key":"REDACTED","name":"prod","webhookCallbackApiKey":"REDACTED"}}`,
		},
		{
			name: "nested in arrays and objects",
			body: `{"a":[{"b":{"apiKey":{"key":"s1"}}},{"apiKey":{"webhookCallbackApiKey":"w1"}}]}`,
			want: `{"a":[{"b":{"apiKey":{"key":"REDACTED"}}},{"apiKey":{"webhookCallbackApiKey":"REDACTED"}}]}`,
		},
		{
			name: "apiKey inside apiKey",
			body: `{"apiKey":{"key":"s1","apiKey":{"key":"s2"}}}`,
			want: `{"apiKey":{"apiKey":{"key":"REDACTED"},"key":"REDACTED"}}`,
		},
		{
			name: "secret of any type",
			body: `{"apiKey":{"key":12345,"webhookCallbackApiKey":{"v":"w1"}}}`,
			want: `{"apiKey":{"key":"REDACTED","webhookCallbackApiKey":"REDACTED"}}`,
		},
		{
			name: "null secrets stay null",
			body: `{"apiKey":{"key":null,"webhookCallbackApiKey":null}}`,
			want: `{"apiKey":{"key":null,"webhookCallbackApiKey":null}}`,
		},
		{
			name: "key outside apiKey is kept",
			body: `{"key":"public","settings":{"key":"v"}}`,
			want: `{"key":"public","settings":{"key":"v"}}`,
		},
		{
			name: "apiKey that is not an object",
			body: `{"apiKey":"k-id-1"}`,
			want: `{"apiKey":"k-id-1"}`,
		},
		{
			name:   "extra secrets anywhere",
			body:   `{"prompt":"bearer-1","list":["x","bearer-2"],"deep":{"v":"bearer-1"}}`,
			extra:  []string{"bearer-1", "bearer-2"},
			want:   `{"deep":{"v":"REDACTED"},"list":["x","REDACTED"],"prompt":"REDACTED"}`,
			absent: []string{"bearer-1", "bearer-2"},
		},
		{
			name:   "extra secret inside strings and names",
			body:   `{"url":"https://x.test/?key=bearer-1&a=b","bearer-1":1}`,
			extra:  []string{"bearer-1"},
			want:   `{"REDACTED":1,"url":"https://x.test/?key=REDACTED&a=b"}`,
			absent: []string{"bearer-1"},
		},
		{
			name:  "empty extra secret is ignored",
			body:  `{"a":"","b":"x"}`,
			extra: []string{""},
			want:  `{"a":"","b":"x"}`,
		},
		{
			name: "numbers keep their text",
			body: `{"timestamp":1742379925356,"big":12345678901234567890,"f":0.1000,"e":1e400,"n":-0}`,
			want: `{"big":12345678901234567890,"e":1e400,"f":0.1000,"n":-0,"timestamp":1742379925356}`,
		},
		{
			name: "html and unicode are not escaped",
			body: `{"prompt":"<cat> & \"dog\" é 🐱"}`,
			want: `{"prompt":"<cat> & \"dog\" é 🐱"}`,
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := leonardo.Redact([]byte(tt.body), tt.extra...)
			if err != nil {
				t.Fatalf("Redact: %v", err)
			}
			if string(out) != tt.want {
				t.Errorf("Redact() = %s\nwant       %s", out, tt.want)
			}
			for _, secret := range tt.absent {
				if strings.Contains(string(out), secret) {
					t.Errorf("output contains %q", secret)
				}
			}
		})
	}
}

func TestRedactNumberPrecisionInSample(t *testing.T) {
	out, err := leonardo.Redact(leonardotest.Body(leonardotest.ImageNSFW))
	if err != nil {
		t.Fatalf("Redact: %v", err)
	}

	if !bytes.Contains(out, []byte(`"timestamp":1742379925356`)) {
		t.Errorf("timestamp lost its exact text:\n%s", out)
	}
}

func TestRedactInvalidJSON(t *testing.T) {
	for _, body := range []string{"", "{", `{"a":}`} {
		if _, err := leonardo.Redact([]byte(body)); err == nil {
			t.Errorf("Redact(%q) = nil error, want one", body)
		}
	}
}

// TestRedactShortExtraSecret checks that an extra secret occurring inside
// the names "apiKey", "key" or "webhookCallbackApiKey" cannot stop those
// fields from being redacted.
func TestRedactShortExtraSecret(t *testing.T) {
	body := `{"data":{"object":{"apiKey":{"key":"k-123","webhookCallbackApiKey":"w-456"}}}}`

	for _, extra := range []string{"a", "allbackApiKey"} {
		got, err := leonardo.Redact([]byte(body), extra)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{"k-123", "w-456"} {
			if strings.Contains(string(got), secret) {
				t.Errorf("Redact(extra %q) = %s, still contains %q", extra, got, secret)
			}
		}
	}
}

func TestRedactShortSecretOnlyWhole(t *testing.T) {
	body := `{"prompt":"a cat","note":"abcd","url":"https://x.test/?k=abcd"}`

	got, err := leonardo.Redact([]byte(body), "abcd")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"note":"REDACTED","prompt":"a cat","url":"https://x.test/?k=abcd"}`
	if string(got) != want {
		t.Errorf("Redact() = %s, want %s", got, want)
	}
}
