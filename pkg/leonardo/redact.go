package leonardo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Redacted replaces every secret value that Redact removes.
const Redacted = "REDACTED"

// secretFields are the members of an "apiKey" object that hold secrets:
// the account's API key and the webhook key that Leonardo also sends as
// the bearer token.
var secretFields = []string{"key", "webhookCallbackApiKey"}

// Redact returns body with the secrets replaced by Redacted: in every
// object named "apiKey", at any depth, the fields "key" and
// "webhookCallbackApiKey"; and every occurrence of one of extraSecrets in
// a string value or a member name, which lets a caller remove its own
// bearer keys wherever the sender copied them, URLs included. Numbers keep
// their exact text. Object members come out in sorted order, which JSON
// consumers must not depend on anyway.
func Redact(body []byte, extraSecrets ...string) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()

	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("redact: %w", err)
	}

	var pairs []string
	for _, secret := range extraSecrets {
		if secret != "" {
			pairs = append(pairs, secret, Redacted)
		}
	}
	doc = redactValue(doc, strings.NewReplacer(pairs...))

	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("redact: %w", err)
	}

	return bytes.TrimRight(out.Bytes(), "\n"), nil
}

func redactValue(v any, secrets *strings.Replacer) any {
	switch v := v.(type) {
	case map[string]any:
		return redactObject(v, secrets)
	case []any:
		for i, item := range v {
			v[i] = redactValue(item, secrets)
		}
		return v
	case string:
		return secrets.Replace(v)
	default:
		return v
	}
}

func redactObject(object map[string]any, secrets *strings.Replacer) map[string]any {
	out := make(map[string]any, len(object))
	for name, member := range object {
		out[secrets.Replace(name)] = redactValue(member, secrets)
	}
	if apiKey, ok := out["apiKey"].(map[string]any); ok {
		redactAPIKey(apiKey)
	}
	return out
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
