package leonardo

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Redacted replaces every secret value that Redact removes.
const Redacted = "REDACTED"

// secretFields are the members of an "apiKey" object that hold secrets:
// the account's API key and the webhook key that Leonardo also sends as
// the bearer token.
var secretFields = []string{"key", "webhookCallbackApiKey"}

// Redact returns body with the secrets replaced by Redacted: in every
// object named "apiKey", at any depth, the fields "key" and
// "webhookCallbackApiKey"; and any string value equal to one of
// extraSecrets, which lets a caller remove its own bearer keys wherever the
// sender copied them. Numbers keep their exact text. Object members come
// out in sorted order, which JSON consumers must not depend on anyway.
func Redact(body []byte, extraSecrets ...string) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()

	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("redact: %w", err)
	}

	secrets := make(map[string]bool, len(extraSecrets))
	for _, s := range extraSecrets {
		if s != "" {
			secrets[s] = true
		}
	}
	doc = redactValue(doc, secrets)

	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("redact: %w", err)
	}

	return bytes.TrimRight(out.Bytes(), "\n"), nil
}

func redactValue(v any, secrets map[string]bool) any {
	switch v := v.(type) {
	case map[string]any:
		for name, member := range v {
			v[name] = redactValue(member, secrets)
		}
		if apiKey, ok := v["apiKey"].(map[string]any); ok {
			redactAPIKey(apiKey)
		}
		return v
	case []any:
		for i, item := range v {
			v[i] = redactValue(item, secrets)
		}
		return v
	case string:
		if secrets[v] {
			return Redacted
		}
		return v
	default:
		return v
	}
}

// redactAPIKey replaces the secret fields that are present, whatever their
// type, and leaves null values alone so a reader can tell "no key" apart.
func redactAPIKey(apiKey map[string]any) {
	for _, name := range secretFields {
		if value, ok := apiKey[name]; ok && value != nil {
			apiKey[name] = Redacted
		}
	}
}
