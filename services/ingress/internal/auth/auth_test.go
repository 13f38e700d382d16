package auth_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/genrelay/genrelay/services/ingress/internal/auth"
)

const (
	currentKey  = "k-current-6f1d0c2e"
	previousKey = "k-previous-93ab47f0"
)

func newKeyring(t *testing.T) *auth.Keyring {
	t.Helper()

	keys, err := auth.ParseKeys("current:" + currentKey + ",previous:" + previousKey)
	if err != nil {
		t.Fatalf("ParseKeys: %v", err)
	}
	return auth.NewKeyring(keys)
}

func TestAuthenticate(t *testing.T) {
	ring := newKeyring(t)

	tests := []struct {
		name      string
		header    string
		wantLabel string
		wantErr   error
	}{
		{name: "current key", header: "Bearer " + currentKey, wantLabel: "current"},
		{name: "previous key", header: "Bearer " + previousKey, wantLabel: "previous"},
		{name: "lower-case scheme", header: "bearer " + currentKey, wantLabel: "current"},
		{name: "upper-case scheme", header: "BEARER " + currentKey, wantLabel: "current"},
		{name: "surrounding spaces", header: "  Bearer   " + currentKey + "  ", wantLabel: "current"},
		{name: "tab separator", header: "Bearer\t" + previousKey, wantLabel: "previous"},
		{name: "wrong key", header: "Bearer not-a-key", wantErr: auth.ErrUnknownKey},
		{name: "key prefix", header: "Bearer " + currentKey[:8], wantErr: auth.ErrUnknownKey},
		{name: "key with suffix", header: "Bearer " + currentKey + "x", wantErr: auth.ErrUnknownKey},
		{name: "both keys", header: "Bearer " + currentKey + " " + previousKey, wantErr: auth.ErrUnknownKey},
		{name: "missing header", header: "", wantErr: auth.ErrMissingCredentials},
		{name: "blank header", header: "   ", wantErr: auth.ErrMissingCredentials},
		{name: "basic scheme", header: "Basic " + currentKey, wantErr: auth.ErrInvalidScheme},
		{name: "token without scheme", header: currentKey, wantErr: auth.ErrInvalidScheme},
		{name: "scheme glued to token", header: "Bearer" + currentKey, wantErr: auth.ErrInvalidScheme},
		{name: "empty token", header: "Bearer", wantErr: auth.ErrInvalidScheme},
		{name: "blank token", header: "Bearer    ", wantErr: auth.ErrInvalidScheme},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			label, err := ring.Authenticate(tt.header)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Authenticate() error = %v, want %v", err, tt.wantErr)
			}
			if label != tt.wantLabel {
				t.Errorf("Authenticate() label = %q, want %q", label, tt.wantLabel)
			}
		})
	}
}

func TestAuthenticateEmptyKeyring(t *testing.T) {
	var ring auth.Keyring

	_, err := ring.Authenticate("Bearer anything")
	if !errors.Is(err, auth.ErrUnknownKey) {
		t.Fatalf("Authenticate() error = %v, want ErrUnknownKey", err)
	}
}

func TestParseKeys(t *testing.T) {
	tests := []struct {
		name string
		list string
		want []auth.Key
	}{
		{name: "empty", list: "", want: nil},
		{name: "blank", list: "  ", want: nil},
		{name: "one", list: "prod:abc", want: []auth.Key{{Label: "prod", Secret: "abc"}}},
		{
			name: "two with spaces",
			list: " current : k1 , previous:k2 ",
			want: []auth.Key{
				{Label: "current", Secret: "k1"},
				{Label: "previous", Secret: "k2"},
			},
		},
		{
			name: "colon inside key",
			list: "prod:a:b:c",
			want: []auth.Key{{Label: "prod", Secret: "a:b:c"}},
		},
		{
			name: "label characters",
			list: "Prod_2025-03.v1:x",
			want: []auth.Key{{Label: "Prod_2025-03.v1", Secret: "x"}},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := auth.ParseKeys(tt.list)
			if err != nil {
				t.Fatalf("ParseKeys(%q) error = %v", tt.list, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseKeys(%q) = %+v, want %+v", tt.list, got, tt.want)
			}
		})
	}
}

func TestParseKeysErrors(t *testing.T) {
	const secret = "s3cr3t-value-7c1e"

	tests := []struct {
		name        string
		list        string
		wantMessage string
	}{
		{name: "no colon", list: secret, wantMessage: "entry 1: expected label:key"},
		{name: "empty label", list: ":" + secret, wantMessage: "entry 1: label is empty"},
		{name: "blank label", list: "  :" + secret, wantMessage: "entry 1: label is empty"},
		{name: "empty key", list: "a:x,prod:", wantMessage: `entry 2: key of label "prod" is empty`},
		{name: "blank key", list: "prod:   ", wantMessage: `key of label "prod" is empty`},
		{name: "empty entry", list: "a:x,,b:" + secret, wantMessage: "entry 2: entry is empty"},
		{name: "trailing comma", list: "a:" + secret + ",", wantMessage: "entry 2: entry is empty"},
		{name: "space in label", list: "my key:" + secret, wantMessage: "may contain only"},
		{
			name:        "long label",
			list:        strings.Repeat("a", auth.MaxLabelLength+1) + ":" + secret,
			wantMessage: "longer than 64 bytes",
		},
		{
			name:        "duplicate label",
			list:        "prod:" + secret + ",prod:other",
			wantMessage: `duplicate label "prod"`,
		},
		{
			name:        "duplicate key",
			list:        "a:" + secret + ",b:" + secret,
			wantMessage: `labels "a" and "b" have the same key`,
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := auth.ParseKeys(tt.list)
			if !errors.Is(err, auth.ErrInvalidKeys) {
				t.Fatalf("ParseKeys() error = %v, want ErrInvalidKeys", err)
			}
			if !strings.Contains(err.Error(), tt.wantMessage) {
				t.Errorf("error %q does not contain %q", err, tt.wantMessage)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q shows the key", err)
			}
		})
	}
}

func TestKeyringLabelsAndSecrets(t *testing.T) {
	ring := newKeyring(t)

	if got, want := ring.Len(), 2; got != want {
		t.Errorf("Len() = %d, want %d", got, want)
	}
	if got, want := ring.Labels(), []string{"current", "previous"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Labels() = %v, want %v", got, want)
	}
	if got, want := ring.Secrets(), []string{currentKey, previousKey}; !reflect.DeepEqual(got, want) {
		t.Errorf("Secrets() = %v, want %v", got, want)
	}
}
