// Package verdicts stores the outcome that moderation gave each image in
// the JetStream key-value bucket broker.ImageVerdictBucket, so that a
// post-processing result made from the image later inherits it.
package verdicts

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
)

// Errors returned by the store.
var (
	// ErrEmptyImageID is returned for an empty image id, which cannot be
	// a key.
	ErrEmptyImageID = errors.New("empty image id")
	// ErrStore is returned when the bucket cannot be read or written. The
	// caller may retry.
	ErrStore = errors.New("image verdict store unavailable")
)

// Verdict is the stored outcome of one image.
type Verdict struct {
	// Outcome is clean, review or rejected.
	Outcome genrelayv1.Outcome
	// Reason explains Outcome.
	Reason string
	// EventID is the id of the event that carried the image.
	EventID string
	// DecidedAt is when moderation decided.
	DecidedAt time.Time
}

// Store reads and writes image verdicts.
type Store struct {
	kv jetstream.KeyValue
}

// New returns a store on kv, the bucket that broker.EnsureVerdictBucket
// returns.
func New(kv jetstream.KeyValue) *Store {
	return &Store{kv: kv}
}

// Put stores v for the image, replacing any earlier verdict.
func (s *Store) Put(ctx context.Context, imageID string, v Verdict) error {
	key, err := Key(imageID)
	if err != nil {
		return err
	}

	value, err := json.Marshal(storedVerdict{
		Outcome: v.Outcome.String(), Reason: v.Reason,
		EventID: v.EventID, DecidedAt: v.DecidedAt,
	})
	if err != nil {
		return fmt.Errorf("encode verdict of image %s: %w", imageID, err)
	}

	if _, err := s.kv.Put(ctx, key, value); err != nil {
		return fmt.Errorf("put verdict of image %s: %w: %w", imageID, ErrStore, err)
	}
	return nil
}

// Get returns the stored verdict of the image and true, or false when
// none is stored. A stored value that cannot be read counts as none, so
// that the caller fails closed rather than retrying forever.
func (s *Store) Get(ctx context.Context, imageID string) (Verdict, bool, error) {
	key, err := Key(imageID)
	if err != nil {
		return Verdict{}, false, err
	}

	entry, err := s.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return Verdict{}, false, nil
	case err != nil:
		return Verdict{}, false, fmt.Errorf("get verdict of image %s: %w: %w", imageID, ErrStore, err)
	}

	return decode(entry.Value())
}

// storedVerdict is the JSON form in the bucket. The outcome is stored by
// enum name, which stays readable and stable if numbers are reordered.
type storedVerdict struct {
	Outcome   string    `json:"outcome"`
	Reason    string    `json:"reason,omitempty"`
	EventID   string    `json:"event_id,omitempty"`
	DecidedAt time.Time `json:"decided_at"`
}

func decode(value []byte) (Verdict, bool, error) {
	var sv storedVerdict
	if err := json.Unmarshal(value, &sv); err != nil {
		return Verdict{}, false, nil
	}

	outcome, ok := genrelayv1.Outcome_value[sv.Outcome]
	if !ok {
		return Verdict{}, false, nil
	}
	return Verdict{
		Outcome: genrelayv1.Outcome(outcome), Reason: sv.Reason,
		EventID: sv.EventID, DecidedAt: sv.DecidedAt,
	}, true, nil
}

// plainKey matches ids made of letters, digits and "-_=.", starting with
// neither "=" (the mark of an encoded key) nor ".".
var plainKey = regexp.MustCompile(`^[-_a-zA-Z0-9][-_=.a-zA-Z0-9]*$`)

// encodedPrefix starts every encoded key. No plain key starts with it, so
// two different ids never share a key.
const encodedPrefix = "="

// Key returns the bucket key of an image id: the id itself when it is a
// valid key, otherwise "=" and the id in unpadded base64url. Ids ending
// in "." or holding ".." are encoded too, because NATS subjects, which
// keys become, reject empty tokens.
func Key(imageID string) (string, error) {
	if imageID == "" {
		return "", ErrEmptyImageID
	}

	if plainKey.MatchString(imageID) &&
		!strings.HasSuffix(imageID, ".") && !strings.Contains(imageID, "..") {
		return imageID, nil
	}
	return encodedPrefix + base64.RawURLEncoding.EncodeToString([]byte(imageID)), nil
}
