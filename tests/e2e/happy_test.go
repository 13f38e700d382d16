package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/genrelay/genrelay/pkg/leonardo"
	"github.com/genrelay/genrelay/pkg/leonardo/leonardotest"
)

// happyCase is one callback and the subjects its outputs must reach.
type happyCase struct {
	name     string
	body     func(id string) []byte
	eventTyp string
	// expectedSubjects are the output subjects, one output each.
	expectedSubjects []string
}

// happyCases lists every sample with the outputs that moderation's
// default policy gives it, when no image moderation provider is set.
func happyCases() []happyCase {
	fixture := func(name string) func(string) []byte {
		return func(id string) []byte { return leonardotest.WithObjectID(name, id) }
	}
	image := leonardo.TypeImageGenerationComplete

	return []happyCase{
		{name: leonardotest.ImageComplete, body: fixture(leonardotest.ImageComplete),
			eventTyp: image, expectedSubjects: []string{"genrelay.clean." + image}},
		{name: leonardotest.ImageSD15, body: fixture(leonardotest.ImageSD15),
			eventTyp: image, expectedSubjects: []string{"genrelay.clean." + image}},
		// The generation itself is flagged nsfw, so all of it is rejected.
		{name: leonardotest.ImageNSFW, body: fixture(leonardotest.ImageNSFW),
			eventTyp: image, expectedSubjects: []string{"genrelay.rejected." + image}},
		{name: leonardotest.ImageFailed, body: fixture(leonardotest.ImageFailed),
			eventTyp: image, expectedSubjects: []string{"genrelay.failed." + image}},
		{name: leonardotest.VideoComplete, body: fixture(leonardotest.VideoComplete),
			eventTyp:         leonardo.TypeVideoGenerationComplete,
			expectedSubjects: []string{"genrelay.clean." + leonardo.TypeVideoGenerationComplete}},
		// An upscale of an image moderation never saw is held for review.
		{name: leonardotest.PostProcessingComplete,
			body:             fixture(leonardotest.PostProcessingComplete),
			eventTyp:         leonardo.TypePostProcessingComplete,
			expectedSubjects: []string{"genrelay.review." + leonardo.TypePostProcessingComplete}},
	}
}

// upscaleOfCleanImage is an upscale of the SD 1.5 sample's first image,
// which the happy path has moderated as clean by the time it is sent, so
// the upscale inherits that verdict.
func upscaleOfCleanImage(t *testing.T) happyCase {
	t.Helper()
	source := firstImageID(t, leonardotest.Body(leonardotest.ImageSD15))

	return happyCase{
		name: "post_processing_of_clean_image",
		body: func(id string) []byte {
			return withSourceImage(t, leonardotest.WithObjectID(
				leonardotest.PostProcessingComplete, id), source)
		},
		eventTyp:         leonardo.TypePostProcessingComplete,
		expectedSubjects: []string{"genrelay.clean." + leonardo.TypePostProcessingComplete},
	}
}

func TestHappyPathFixtures(t *testing.T) {
	s := requireStack(t)
	s.waitHealthy(t)
	prefix := "e2e-" + s.runID + "-happy"

	// The upscale goes second, after its source image has a verdict.
	rounds := [][]happyCase{happyCases(), {upscaleOfCleanImage(t)}}
	var all []result
	sent := map[string]happyCase{}
	for i, round := range rounds {
		ids := s.sendHappyRound(t, fmt.Sprintf("%s-%d", prefix, i), round, sent)
		all = s.waitOutputs(t, prefix, ids, 2*time.Minute)
	}

	checkSubjects(t, all, sent)
	s.checkSubscriberPrinted(t, sent)
	s.checkNoSecrets(t, all)
}

// sendHappyRound posts each case once and expects 202 for every one.
func (s *stack) sendHappyRound(t *testing.T, prefix string, cases []happyCase,
	sent map[string]happyCase) []string {
	t.Helper()

	var ids []string
	for _, c := range cases {
		id := prefix + "-" + c.name
		resp := s.postCallback(context.Background(), c.body(id))
		if resp.err != nil || resp.status != http.StatusAccepted {
			t.Fatalf("post %s: %s, expected HTTP 202", c.name, resp)
		}
		sent[id] = c
		ids = append(ids, id)
	}
	return ids
}

// checkSubjects checks that each callback's outputs are exactly its
// expected subjects, one output each.
func checkSubjects(t *testing.T, results []result, sent map[string]happyCase) {
	t.Helper()

	subjects := map[string][]string{}
	for _, r := range results {
		id := r.event.GetObjectId()
		subjects[id] = append(subjects[id], r.subject)
	}

	for id, c := range sent {
		got := subjects[id]
		slices.Sort(got)
		expected := slices.Clone(c.expectedSubjects)
		slices.Sort(expected)
		if !slices.Equal(got, expected) {
			t.Errorf("%s: outputs on %v, expected %v", c.name, got, expected)
		}
	}
}

// checkSubscriberPrinted waits until the example subscriber's log has a
// line for every clean output, with its object id and type.
func (s *stack) checkSubscriberPrinted(t *testing.T, sent map[string]happyCase) {
	t.Helper()

	var expected []string
	for id, c := range sent {
		if slices.ContainsFunc(c.expectedSubjects, isCleanSubject) {
			expected = append(expected, id)
		}
	}

	err := poll(context.Background(), time.Minute, time.Second, func() (bool, string) {
		out, err := s.logs(context.Background(), printclean)
		if err != nil {
			return false, err.Error()
		}
		var absent []string
		for _, id := range expected {
			if !hasLine(out, "object_id="+id, "type="+sent[id].eventTyp) {
				absent = append(absent, id)
			}
		}
		return len(absent) == 0, fmt.Sprintf("no line for %v", absent)
	})
	if err != nil {
		t.Errorf("subscriber output: %v", err)
	}
}

func isCleanSubject(subject string) bool {
	return strings.HasPrefix(subject, "genrelay.clean.")
}

// hasLine returns true when one line of out contains every part.
func hasLine(out string, parts ...string) bool {
	for line := range strings.Lines(out) {
		if containsAll(line, parts) {
			return true
		}
	}
	return false
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// checkNoSecrets checks that neither the webhook key nor a sample's API
// keys appear in an output or in any container's log.
func (s *stack) checkNoSecrets(t *testing.T, results []result) {
	t.Helper()

	secrets := []string{s.webhookKey}
	for _, name := range leonardotest.Names() {
		// The guide's sample masks its key like its ids: "XXXXXXXX-...".
		if name != leonardotest.ImageComplete {
			secrets = append(secrets, leonardotest.Secrets(name)...)
		}
	}

	for _, r := range results {
		for _, secret := range secrets {
			if secret != "" && strings.Contains(string(r.body), secret) {
				t.Errorf("output on %s for %s contains a secret",
					r.subject, r.event.GetObjectId())
			}
		}
	}
	for name := range s.nodes {
		out, err := s.logs(context.Background(), name)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		for _, secret := range secrets {
			if secret != "" && strings.Contains(out, secret) {
				t.Errorf("log of %s contains a secret", name)
			}
		}
	}
}

func firstImageID(t *testing.T, body []byte) string {
	t.Helper()

	var doc struct {
		Data struct {
			Object struct {
				Images []struct {
					ID string `json:"id"`
				} `json:"images"`
			} `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || len(doc.Data.Object.Images) == 0 {
		t.Fatalf("read the first image id of a sample: %v", err)
	}
	return doc.Data.Object.Images[0].ID
}

// withSourceImage sets data.object.generatedImageId of an upscale.
func withSourceImage(t *testing.T, body []byte, imageID string) []byte {
	t.Helper()

	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("decode upscale sample: %v", err)
	}
	object := doc["data"].(map[string]any)["object"].(map[string]any)
	object["generatedImageId"] = imageID

	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("encode upscale sample: %v", err)
	}
	return out
}
