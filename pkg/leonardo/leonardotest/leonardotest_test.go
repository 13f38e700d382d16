package leonardotest_test

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/genrelay/genrelay/pkg/leonardo"
	"github.com/genrelay/genrelay/pkg/leonardo/leonardotest"
)

func TestSamplesAreValidCallbacks(t *testing.T) {
	names := leonardotest.Names()
	for _, want := range []string{
		leonardotest.ImageComplete, leonardotest.ImageNSFW, leonardotest.ImageSD15,
		leonardotest.ImageFailed, leonardotest.VideoComplete,
		leonardotest.PostProcessingComplete,
	} {
		if !slices.Contains(names, want) {
			t.Errorf("Names() lacks %q", want)
		}
	}

	for _, name := range names {
		if _, err := leonardo.Validate(leonardotest.Body(name)); err != nil {
			t.Errorf("sample %s: Validate = %v", name, err)
		}
		for _, secret := range leonardotest.Secrets(name) {
			if secret == "" {
				t.Errorf("sample %s: empty secret", name)
			}
		}
	}
}

func TestWithObjectID(t *testing.T) {
	body := leonardotest.WithObjectID(leonardotest.ImageNSFW, "gen-42")

	env, err := leonardo.Validate(body)
	if err != nil {
		t.Fatal(err)
	}
	if env.ObjectID != "gen-42" {
		t.Errorf("object id = %q, want gen-42", env.ObjectID)
	}
	if !json.Valid(body) || !bytes.Contains(body, []byte(`"seed":"4719932205"`)) {
		t.Errorf("other fields changed: %s", body)
	}
}
