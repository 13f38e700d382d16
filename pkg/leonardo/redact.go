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

// MinSubstringSecretLength is the shortest extra secret that Redact
// replaces inside longer strings. A shorter one, such as the four-letter
// webhook key of Leonardo's own sample, is replaced only where it is a
// whole string, because replacing every occurrence would mangle the body.
const MinSubstringSecretLength = 8

// Redact returns body with the secrets replaced by Redacted: in every
// object named "apiKey", at any depth, the fields "key" and
// "webhookCallbackApiKey"; and every occurrence of one of extraSecrets in
// a string value or a member name, which lets a caller remove its own
// bearer keys wherever the sender copied them, URLs included (see
// MinSubstringSecretLength for short secrets). Numbers keep their exact
// text. Object members come out in sorted order, which JSON consumers must
// not depend on anyway.
func Redact(body []byte, extraSecrets ...string) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()

	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("redact: %w", err)
	}

	doc = redactValue(doc, newSecretSet(extraSecrets))

	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("redact: %w", err)
	}

	return bytes.TrimRight(out.Bytes(), "\n"), nil
}

func redactValue(v any, secrets secretSet) any {
	switch v := v.(type) {
	case map[string]any:
		return redactObject(v, secrets)
	case []any:
		for i, item := range v {
			v[i] = redactValue(item, secrets)
		}
		return v
	case string:
		return secrets.redact(v)
	default:
		return v
	}
}

// redactObject redacts an object's members. The apiKey fields are found by
// their names as received, before extra secrets are replaced in names, so
// a secret that occurs in a field name cannot hide a key.
func redactObject(object map[string]any, secrets secretSet) map[string]any {
	out := make(map[string]any, len(object))
	for name, member := range object {
		if apiKey, ok := member.(map[string]any); ok && name == "apiKey" {
			redactAPIKey(apiKey)
		}
		out[secrets.redact(name)] = redactValue(member, secrets)
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

// secretSet finds extra secrets in strings: long ones anywhere, short ones
// only as a whole string.
type secretSet struct {
	substrings *strings.Replacer
	whole      map[string]bool
}

func newSecretSet(secrets []string) secretSet {
	set := secretSet{whole: make(map[string]bool)}
	var pairs []string
	for _, secret := range secrets {
		switch {
		case len(secret) >= MinSubstringSecretLength:
			pairs = append(pairs, secret, Redacted)
		case secret != "":
			set.whole[secret] = true
		}
	}
	set.substrings = strings.NewReplacer(pairs...)
	return set
}

func (s secretSet) redact(text string) string {
	if s.whole[text] {
		return Redacted
	}
	return s.substrings.Replace(text)
}
