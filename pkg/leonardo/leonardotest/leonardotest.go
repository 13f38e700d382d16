// Package leonardotest provides sample Leonardo.Ai callbacks for tests of
// genrelay and of the systems that consume its events.
//
// The samples are the callback from Leonardo's webhook guide (ids masked)
// and variants for the other observed event types and NSFW cases. Each
// carries its own apiKey.key and apiKey.webhookCallbackApiKey values, so
// tests can check that those secrets never come out of genrelay.
package leonardotest

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed fixtures/*.json
var fixtures embed.FS

// Names of the samples, without the .json suffix.
const (
	// ImageComplete is the sample from Leonardo's webhook guide: one clean
	// image, sdVersion v2, seed as a string.
	ImageComplete = "image_generation_complete"
	// ImageNSFW has the generation flagged nsfw and one of two images
	// flagged, sdVersion SDXL_0_9 and fields the guide's sample lacks.
	ImageNSFW = "image_generation_complete_nsfw"
	// ImageSD15 has four clean images from an SD 1.5 model.
	ImageSD15 = "image_generation_complete_sd15"
	// ImageFailed has status FAILED and no images.
	ImageFailed = "image_generation_failed"
	// VideoComplete is a motion output with a null image URL.
	VideoComplete = "video_generation_complete"
	// PostProcessingComplete is an upscale of one image.
	PostProcessingComplete = "post_processing_complete"
)

// Names returns the names of all samples, sorted.
func Names() []string {
	entries, err := fs.ReadDir(fixtures, "fixtures")
	if err != nil {
		panic(fmt.Sprintf("read embedded fixtures: %v", err))
	}

	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".json"))
	}
	sort.Strings(names)
	return names
}

// Body returns the named sample as sent on the wire. It panics on an
// unknown name, which is a bug in the calling test.
func Body(name string) []byte {
	b, err := fixtures.ReadFile("fixtures/" + name + ".json")
	if err != nil {
		panic(fmt.Sprintf("unknown fixture %q: %v", name, err))
	}
	return b
}

// Secrets returns the apiKey.key and apiKey.webhookCallbackApiKey values of
// the named sample: the values that must never leave genrelay.
func Secrets(name string) []string {
	var doc struct {
		Data struct {
			Object struct {
				APIKey struct {
					Key     string `json:"key"`
					Webhook string `json:"webhookCallbackApiKey"`
				} `json:"apiKey"`
			} `json:"object"`
		} `json:"data"`
	}
	if err := json.Unmarshal(Body(name), &doc); err != nil {
		panic(fmt.Sprintf("decode fixture %q: %v", name, err))
	}

	k := doc.Data.Object.APIKey
	return []string{k.Key, k.Webhook}
}

// WithObjectID returns the named sample with data.object.id replaced, so
// that a test can send many distinct callbacks built from one sample.
func WithObjectID(name, id string) []byte {
	var doc map[string]any
	if err := json.Unmarshal(Body(name), &doc); err != nil {
		panic(fmt.Sprintf("decode fixture %q: %v", name, err))
	}

	doc["data"].(map[string]any)["object"].(map[string]any)["id"] = id
	b, err := json.Marshal(doc)
	if err != nil {
		panic(fmt.Sprintf("encode fixture %q: %v", name, err))
	}
	return b
}
