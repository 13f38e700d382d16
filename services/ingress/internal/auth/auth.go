// Package auth checks the bearer keys that Leonardo.Ai sends with each
// webhook callback.
//
// Several keys can be live at once, because rotating the webhook key in
// Leonardo leaves the old and the new key valid for a while. Each key has
// an operator-chosen label, so that logs and stored messages can name the
// key that matched without showing it.
package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
)

// Errors returned by ParseKeys and Keyring.Authenticate. None of their
// messages contains a key.
var (
	// ErrInvalidKeys is returned by ParseKeys when the key list is
	// malformed: an entry without ':', an empty or invalid label, an empty
	// key, or a repeated label or key.
	ErrInvalidKeys = errors.New("invalid webhook keys")
	// ErrMissingCredentials is returned by Authenticate when the request
	// has no Authorization header or an empty one.
	ErrMissingCredentials = errors.New("missing Authorization header")
	// ErrInvalidScheme is returned by Authenticate when the Authorization
	// header does not use the Bearer scheme or has no token.
	ErrInvalidScheme = errors.New("authorization scheme must be Bearer with a token")
	// ErrUnknownKey is returned by Authenticate when the bearer token
	// matches none of the configured keys.
	ErrUnknownKey = errors.New("bearer token does not match any webhook key")
)

// MaxLabelLength is the maximum length of a key label, in bytes.
const MaxLabelLength = 64

// Key is one webhook key and the label that names it in logs.
type Key struct {
	// Label names the key in logs and in the Genrelay-Key-Label header.
	Label string
	// Secret is the bearer token that Leonardo sends. It must never be
	// logged or stored.
	Secret string
}

// ParseKeys parses a comma-separated list of label:key pairs, such as
// "current:k1,previous:k2". Spaces around labels and keys are removed,
// and a key may itself contain ':'. Error messages name entries by
// position and label, never by key.
func ParseKeys(list string) ([]Key, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}

	entries := strings.Split(list, ",")
	keys := make([]Key, 0, len(entries))
	for i, entry := range entries {
		key, err := parseKey(entry)
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d: %w", ErrInvalidKeys, i+1, err)
		}
		keys = append(keys, key)
	}

	if err := checkUnique(keys); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidKeys, err)
	}
	return keys, nil
}

func parseKey(entry string) (Key, error) {
	label, secret, found := strings.Cut(entry, ":")
	if !found {
		if strings.TrimSpace(entry) == "" {
			return Key{}, errors.New("entry is empty")
		}
		return Key{}, errors.New("expected label:key, found no ':'")
	}

	key := Key{Label: strings.TrimSpace(label), Secret: strings.TrimSpace(secret)}
	if err := validateLabel(key.Label); err != nil {
		return Key{}, err
	}
	if key.Secret == "" {
		return Key{}, fmt.Errorf("key of label %q is empty", key.Label)
	}
	return key, nil
}

// validateLabel accepts labels that are safe in a log line and in a NATS
// header: letters, digits, '.', '_' and '-'.
func validateLabel(label string) error {
	if label == "" {
		return errors.New("label is empty")
	}
	if len(label) > MaxLabelLength {
		return fmt.Errorf("label is longer than %d bytes", MaxLabelLength)
	}

	for _, r := range label {
		if !isLabelRune(r) {
			return fmt.Errorf("label %q may contain only letters, digits, "+
				"'.', '_' and '-'", label)
		}
	}
	return nil
}

func isLabelRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' ||
		r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
}

func checkUnique(keys []Key) error {
	labels := make(map[string]bool, len(keys))
	secrets := make(map[string]string, len(keys))
	for _, k := range keys {
		if labels[k.Label] {
			return fmt.Errorf("duplicate label %q", k.Label)
		}
		labels[k.Label] = true

		if other, ok := secrets[k.Secret]; ok {
			return fmt.Errorf("labels %q and %q have the same key", other, k.Label)
		}
		secrets[k.Secret] = k.Label
	}
	return nil
}

// Keyring holds the live webhook keys. The zero value has no keys and
// rejects every request.
type Keyring struct {
	entries []entry
}

type entry struct {
	label  string
	secret string
	digest [sha256.Size]byte
}

// NewKeyring returns a keyring for keys, which ParseKeys has checked.
func NewKeyring(keys []Key) *Keyring {
	r := &Keyring{entries: make([]entry, len(keys))}
	for i, k := range keys {
		r.entries[i] = entry{
			label:  k.Label,
			secret: k.Secret,
			digest: sha256.Sum256([]byte(k.Secret)),
		}
	}
	return r
}

// Len returns the number of keys.
func (r *Keyring) Len() int {
	return len(r.entries)
}

// Labels returns the key labels in configuration order.
func (r *Keyring) Labels() []string {
	labels := make([]string, len(r.entries))
	for i, e := range r.entries {
		labels[i] = e.label
	}
	return labels
}

// Secrets returns every key, for redacting them from stored callbacks.
func (r *Keyring) Secrets() []string {
	secrets := make([]string, len(r.entries))
	for i, e := range r.entries {
		secrets[i] = e.secret
	}
	return secrets
}

// Authenticate checks an Authorization header value and returns the label
// of the key it carries. The scheme name matches in any case and spaces
// around the scheme and the token are ignored.
//
// The token is compared with every key in constant time, by SHA-256
// digest so that the key lengths do not show either, and the loop never
// stops early: the time taken does not reveal which key matched.
func (r *Keyring) Authenticate(header string) (string, error) {
	token, err := bearerToken(header)
	if err != nil {
		return "", err
	}

	digest := sha256.Sum256([]byte(token))
	label := ""
	for _, e := range r.entries {
		if subtle.ConstantTimeCompare(digest[:], e.digest[:]) == 1 {
			label = e.label
		}
	}

	if label == "" {
		return "", ErrUnknownKey
	}
	return label, nil
}

// bearerToken extracts the token of a "Bearer <token>" header value.
func bearerToken(header string) (string, error) {
	header = strings.TrimSpace(header)
	if header == "" {
		return "", ErrMissingCredentials
	}

	end := strings.IndexAny(header, " \t")
	if end < 0 || !strings.EqualFold(header[:end], "Bearer") {
		return "", ErrInvalidScheme
	}

	token := strings.TrimSpace(header[end:])
	if token == "" {
		return "", ErrInvalidScheme
	}
	return token, nil
}
