// Package policy decides where a moderated callback goes, from the flags
// that the generator set on it. It does no I/O: the caller looks up the
// stored verdict of a post-processing result's source image and passes it
// in, so every rule can be tested with a table.
package policy

import (
	"errors"
	"fmt"

	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
)

// ErrInvalidAction is returned when an action is neither "rejected" nor
// "review".
var ErrInvalidAction = errors.New("invalid policy action")

// Action is the outcome a rule gives an image that is not known to be
// safe. There is deliberately no "clean" action, so no setting can let an
// unchecked image through.
type Action string

// Actions.
const (
	Reject Action = "rejected"
	Review Action = "review"
)

// Set implements flag.Value, so each action can be a flag.
func (a *Action) Set(s string) error {
	switch Action(s) {
	case Reject, Review:
		*a = Action(s)
		return nil
	default:
		return fmt.Errorf("%w %q: use %q or %q", ErrInvalidAction, s, Reject, Review)
	}
}

// String implements flag.Value.
func (a *Action) String() string {
	if a == nil {
		return ""
	}
	return string(*a)
}

// Outcome returns the outcome that the action routes an image to. An
// unset or unknown action maps to review, the stricter of the two
// outcomes that still lets a person release the image.
func (a Action) Outcome() genrelayv1.Outcome {
	if a == Reject {
		return genrelayv1.Outcome_OUTCOME_REJECTED
	}
	return genrelayv1.Outcome_OUTCOME_REVIEW
}

// Config selects the action of each rule.
type Config struct {
	// FlaggedGeneration applies to every image of a generation that the
	// generator flagged nsfw or flagged. Default Reject.
	FlaggedGeneration Action
	// NSFWImage applies to an image flagged nsfw. Default Reject.
	NSFWImage Action
	// FlaggedModel applies to every image of a generation whose model is
	// flagged nsfw or flagged. Default Review.
	FlaggedModel Action
	// UnknownFlag applies when a flag is missing or not a boolean, when a
	// generation's status is neither COMPLETE nor FAILED, and when a
	// completed generation has no images. Default Review.
	UnknownFlag Action
	// UnknownSource applies to a post-processing result whose source image
	// has no stored verdict. Default Review.
	UnknownSource Action
}

// DefaultConfig returns the defaults that Config documents.
func DefaultConfig() Config {
	return Config{
		FlaggedGeneration: Reject,
		NSFWImage:         Reject,
		FlaggedModel:      Review,
		UnknownFlag:       Review,
		UnknownSource:     Review,
	}
}

// Validate returns ErrInvalidAction, naming the field, when an action is
// not set to Reject or Review.
func (c Config) Validate() error {
	fields := []struct {
		name   string
		action Action
	}{
		{"flagged generation", c.FlaggedGeneration},
		{"nsfw image", c.NSFWImage},
		{"flagged model", c.FlaggedModel},
		{"unknown flag", c.UnknownFlag},
		{"unknown source", c.UnknownSource},
	}
	for _, f := range fields {
		if f.action != Reject && f.action != Review {
			return fmt.Errorf("%s action %q: %w", f.name, f.action, ErrInvalidAction)
		}
	}
	return nil
}
