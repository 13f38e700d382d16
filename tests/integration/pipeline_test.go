package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/pkg/leonardo/leonardotest"
	"github.com/genrelay/genrelay/pkg/subscriber"
)

// TestSamplesReachTheirSubjects sends every sample callback, plus
// variants built from them, over HTTP and checks where each comes out.
func TestSamplesReachTheirSubjects(t *testing.T) {
	s := startStack(t)
	clean := subscribeClean(t, s)

	mixed := mixedGeneration(t)
	cases := []struct {
		name string
		body []byte
		// want maps each expected subject to its number of images.
		want map[string]int
	}{
		{
			name: "guide sample",
			body: leonardotest.Body(leonardotest.ImageComplete),
			want: map[string]int{"genrelay.clean.image_generation.complete": 1},
		},
		{
			name: "generation flagged nsfw",
			body: leonardotest.Body(leonardotest.ImageNSFW),
			want: map[string]int{"genrelay.rejected.image_generation.complete": 2},
		},
		{
			name: "sd 1.5 generation",
			body: leonardotest.Body(leonardotest.ImageSD15),
			want: map[string]int{"genrelay.clean.image_generation.complete": 4},
		},
		{
			name: "failed generation",
			body: leonardotest.Body(leonardotest.ImageFailed),
			want: map[string]int{"genrelay.failed.image_generation.complete": 0},
		},
		{
			name: "video",
			body: leonardotest.Body(leonardotest.VideoComplete),
			want: map[string]int{"genrelay.clean.video_generation.complete": 1},
		},
		{
			name: "upscale of an unseen image",
			body: leonardotest.Body(leonardotest.PostProcessingComplete),
			want: map[string]int{"genrelay.review.post_processing.complete": 1},
		},
		{
			name: "unknown event type",
			body: withType(t, leonardotest.WithObjectID(leonardotest.ImageComplete, "unknown-type-1"),
				"image_generation.started"),
			want: map[string]int{"genrelay.unhandled.image_generation.started": 0},
		},
		{
			name: "images flagged, unflagged and malformed",
			body: mixed,
			want: map[string]int{
				"genrelay.clean.image_generation.complete":    1,
				"genrelay.rejected.image_generation.complete": 1,
				"genrelay.review.image_generation.complete":   2,
			},
		},
		{
			name: "upscale of a clean image",
			body: upscaleOf(t, "mixed-clean", "upscale-clean"),
			want: map[string]int{"genrelay.clean.post_processing.complete": 1},
		},
		{
			name: "upscale of a rejected image",
			body: upscaleOf(t, "mixed-nsfw", "upscale-nsfw"),
			want: map[string]int{"genrelay.rejected.post_processing.complete": 1},
		},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := s.post(t, primaryKey, tc.body)
			if status != http.StatusAccepted {
				t.Fatalf("status %d (%s), want 202", status, body)
			}
			id := objectID(t, tc.body)

			got := s.waitResults(t, 20*time.Second, func(rs []result) bool {
				return len(forObject(rs, id)) >= len(tc.want)
			})
			mine := forObject(got, id)
			if len(mine) != len(tc.want) {
				t.Fatalf("object %s: outputs %v, want %v", id, subjects(mine), tc.want)
			}
			for _, r := range mine {
				n, ok := tc.want[r.subject]
				if !ok {
					t.Errorf("object %s: unexpected output on %s", id, r.subject)
					continue
				}
				if len(r.event.GetImages()) != n {
					t.Errorf("%s: %d images, want %d", r.subject, len(r.event.GetImages()), n)
				}
				assertPayloadKept(t, r, tc.body)
			}
		})
	}

	t.Run("subscriber receives clean events", func(t *testing.T) {
		want := []string{
			objectID(t, leonardotest.Body(leonardotest.ImageComplete)),
			objectID(t, leonardotest.Body(leonardotest.ImageSD15)),
			objectID(t, leonardotest.Body(leonardotest.VideoComplete)),
			objectID(t, mixed),
			"upscale-clean",
		}
		got := clean.waitFor(t, len(want), 20*time.Second)
		sort.Strings(want)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("subscriber got %v, want %v", got, want)
		}
	})
}

// TestCleanEventListsRemovedImages checks the clean event of a generation
// whose images were partly removed.
func TestCleanEventListsRemovedImages(t *testing.T) {
	s := startStack(t)
	body := mixedGeneration(t)

	if status, _, text := s.post(t, secondaryKey, body); status != http.StatusAccepted {
		t.Fatalf("status %d (%s), want 202", status, text)
	}
	id := objectID(t, body)
	got := s.waitResults(t, 20*time.Second, func(rs []result) bool {
		return len(forObject(rs, id)) >= 3
	})

	for _, r := range forObject(got, id) {
		if r.event.GetOutcome() != genrelayv1.Outcome_OUTCOME_CLEAN {
			continue
		}
		if imgs := r.event.GetImages(); len(imgs) != 1 || imgs[0].GetId() != "mixed-clean" {
			t.Errorf("clean images = %v, want only mixed-clean", imgs)
		}
		if r.event.GetRemovedCount() != 3 {
			t.Errorf("removed_count = %d, want 3", r.event.GetRemovedCount())
		}
		if len(r.event.GetRemovedImages()) != 3 {
			t.Errorf("removed_images = %v, want 3 entries", r.event.GetRemovedImages())
		}
		for _, removed := range r.event.GetRemovedImages() {
			if removed.GetReason() == "" {
				t.Errorf("removed image %s has no reason", removed.GetId())
			}
		}
		return
	}
	t.Fatalf("no clean event for %s in %v", id, subjects(got))
}

// TestRepeatedCallbacksStoredOnce sends one callback 50 times at once and
// again afterwards: every request succeeds and one event comes out.
func TestRepeatedCallbacksStoredOnce(t *testing.T) {
	s := startStack(t)
	body := leonardotest.WithObjectID(leonardotest.ImageSD15, "repeated-1")

	var wg sync.WaitGroup
	statuses := make(chan int, 50)
	for range 50 {
		wg.Go(func() {
			status, _, _ := s.post(t, primaryKey, body)
			statuses <- status
		})
	}
	wg.Wait()
	close(statuses)
	for status := range statuses {
		if status != http.StatusAccepted {
			t.Errorf("concurrent repeat: status %d, want 202", status)
		}
	}

	if status, _, text := s.post(t, secondaryKey, body); status != http.StatusAccepted {
		t.Errorf("later repeat: status %d (%s), want 202", status, text)
	}

	inbound := readStream(t, s.js, "GENRELAY_INBOUND", func(m jetstream.Msg) string { return m.Subject() })
	if len(inbound) != 1 {
		t.Errorf("inbound stream holds %d messages, want 1", len(inbound))
	}

	s.waitResults(t, 20*time.Second, func(rs []result) bool { return len(rs) >= 1 })
	time.Sleep(2 * time.Second) // room for a wrong second output to appear
	if got := forObject(s.results(t), "repeated-1"); len(got) != 1 {
		t.Errorf("outputs %v, want one clean event", subjects(got))
	}
}

// cleanCollector gathers the object ids that a pkg/subscriber consumer
// receives.
type cleanCollector struct {
	mu  sync.Mutex
	ids []string
}

func subscribeClean(t *testing.T, s *stack) *cleanCollector {
	t.Helper()

	c := &cleanCollector{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- subscriber.Run(ctx, s.js, subscriber.Config{Durable: "integration"},
			func(_ context.Context, e *genrelayv1.Event) error {
				c.mu.Lock()
				defer c.mu.Unlock()
				c.ids = append(c.ids, e.GetObjectId())
				return nil
			})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("subscriber: %v", err)
		}
	})
	return c
}

func (c *cleanCollector) waitFor(t *testing.T, n int, within time.Duration) []string {
	t.Helper()

	deadline := time.Now().Add(within)
	for {
		c.mu.Lock()
		got := append([]string(nil), c.ids...)
		c.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			sort.Strings(got)
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mixedGeneration returns an unflagged generation with four images: one
// clean, one flagged nsfw, one without a flag and one whose flag is a
// string.
func mixedGeneration(t *testing.T) []byte {
	t.Helper()

	return editJSON(t, leonardotest.WithObjectID(leonardotest.ImageSD15, "mixed-gen"),
		func(doc map[string]any) {
			images := object(doc)["images"].([]any)
			ids := []string{"mixed-clean", "mixed-nsfw", "mixed-missing", "mixed-string"}
			for i, img := range images {
				img.(map[string]any)["id"] = ids[i]
			}
			images[1].(map[string]any)["nsfw"] = true
			delete(images[2].(map[string]any), "nsfw")
			images[3].(map[string]any)["nsfw"] = "false"
		})
}

// upscaleOf returns a post-processing callback for the given source image.
func upscaleOf(t *testing.T, sourceImageID, id string) []byte {
	t.Helper()

	return editJSON(t, leonardotest.Body(leonardotest.PostProcessingComplete), func(doc map[string]any) {
		object(doc)["id"] = id
		object(doc)["generatedImageId"] = sourceImageID
	})
}

func withType(t *testing.T, body []byte, eventType string) []byte {
	t.Helper()

	return editJSON(t, body, func(doc map[string]any) { doc["type"] = eventType })
}

func editJSON(t *testing.T, body []byte, edit func(map[string]any)) []byte {
	t.Helper()

	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	edit(doc)
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func object(doc map[string]any) map[string]any {
	return doc["data"].(map[string]any)["object"].(map[string]any)
}

func objectID(t *testing.T, body []byte) string {
	t.Helper()

	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	return object(doc)["id"].(string)
}

func forObject(rs []result, id string) []result {
	var out []result
	for _, r := range rs {
		if r.event.GetObjectId() == id {
			out = append(out, r)
		}
	}
	return out
}

// assertPayloadKept checks that the event carries the original payload,
// every field of it, with the secrets replaced.
func assertPayloadKept(t *testing.T, r result, sent []byte) {
	t.Helper()

	payload, err := r.event.GetPayload().MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var got, want map[string]any
	if err := json.Unmarshal(payload, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(sent, &want); err != nil {
		t.Fatal(err)
	}

	gotObject, wantObject := object(got), object(want)
	for field := range wantObject {
		if _, ok := gotObject[field]; !ok {
			t.Errorf("%s: payload lost data.object.%s", r.subject, field)
		}
	}
	apiKey := gotObject["apiKey"].(map[string]any)
	if apiKey["key"] != "REDACTED" || apiKey["webhookCallbackApiKey"] != "REDACTED" {
		t.Errorf("%s: apiKey secrets not redacted: %v", r.subject, apiKey)
	}
}
