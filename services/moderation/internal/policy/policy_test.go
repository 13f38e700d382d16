package policy

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/pkg/leonardo"
)

const (
	clean    = genrelayv1.Outcome_OUTCOME_CLEAN
	rejected = genrelayv1.Outcome_OUTCOME_REJECTED
	review   = genrelayv1.Outcome_OUTCOME_REVIEW
	failed   = genrelayv1.Outcome_OUTCOME_FAILED
	unhand   = genrelayv1.Outcome_OUTCOME_UNHANDLED
)

var (
	yes     = leonardo.FlagTrue
	no      = leonardo.FlagFalse
	missing = leonardo.FlagUnknown
)

// generation builds a completed generation with clean flags and one image
// per given image flag, ids img0, img1 and so on.
func generation(imageFlags ...leonardo.Flag) *leonardo.Generation {
	g := &leonardo.Generation{
		ID:      "gen",
		Status:  leonardo.StatusComplete,
		NSFW:    no,
		Flagged: no,
		Model:   &leonardo.Model{NSFW: no, Flagged: no},
	}
	for i, f := range imageFlags {
		g.Images = append(g.Images, leonardo.Image{
			ID:   leonardo.FlexString("img" + string(rune('0'+i))),
			URL:  "https://cdn.leonardo.ai/x.jpg",
			NSFW: f,
		})
	}
	return g
}

func with(g *leonardo.Generation, change func(*leonardo.Generation)) *leonardo.Generation {
	change(g)
	return g
}

func imageOutcomes(r Result) []genrelayv1.Outcome {
	var out []genrelayv1.Outcome
	for _, iv := range r.Images {
		out = append(out, iv.Outcome)
	}
	return out
}

func TestDecideGeneration(t *testing.T) {
	reviewAll := DefaultConfig()
	reviewAll.FlaggedGeneration = Review
	reviewAll.NSFWImage = Review
	rejectAll := DefaultConfig()
	rejectAll.FlaggedModel = Reject
	rejectAll.UnknownFlag = Reject

	tests := []struct {
		name           string
		cfg            Config
		typ            string
		gen            *leonardo.Generation
		expectedImages []genrelayv1.Outcome
		expectedEvent  genrelayv1.Outcome
		expectedReason string
	}{
		{
			name:           "all flags false",
			gen:            generation(no, no),
			expectedImages: []genrelayv1.Outcome{clean, clean},
			expectedEvent:  clean,
		},
		{
			name:           "video with clean flags",
			typ:            leonardo.TypeVideoGenerationComplete,
			gen:            generation(no),
			expectedImages: []genrelayv1.Outcome{clean},
			expectedEvent:  clean,
		},
		{
			name:           "image nsfw default rejects",
			gen:            generation(no, yes),
			expectedImages: []genrelayv1.Outcome{clean, rejected},
			expectedEvent:  clean,
			expectedReason: "image flagged nsfw",
		},
		{
			name:           "image nsfw review action",
			cfg:            reviewAll,
			gen:            generation(yes, no),
			expectedImages: []genrelayv1.Outcome{review, clean},
			expectedEvent:  clean,
		},
		{
			name:           "image flag missing default review",
			gen:            generation(missing, no),
			expectedImages: []genrelayv1.Outcome{review, clean},
			expectedEvent:  clean,
			expectedReason: `image field "nsfw" is missing or not a boolean`,
		},
		{
			name:           "image flag missing reject action",
			cfg:            rejectAll,
			gen:            generation(missing),
			expectedImages: []genrelayv1.Outcome{rejected},
			expectedEvent:  clean,
		},
		{
			name: "generation nsfw default rejects all",
			gen: with(generation(no, no), func(g *leonardo.Generation) {
				g.NSFW = yes
			}),
			expectedImages: []genrelayv1.Outcome{rejected, rejected},
			expectedEvent:  rejected,
			expectedReason: "generation flagged nsfw",
		},
		{
			name: "generation flagged default rejects all",
			gen: with(generation(no), func(g *leonardo.Generation) {
				g.Flagged = yes
			}),
			expectedImages: []genrelayv1.Outcome{rejected},
			expectedEvent:  rejected,
			expectedReason: "generation flagged",
		},
		{
			name: "generation flagged review keeps nsfw image rejected",
			cfg: func() Config {
				c := DefaultConfig()
				c.FlaggedGeneration = Review
				return c
			}(),
			gen: with(generation(no, yes), func(g *leonardo.Generation) {
				g.NSFW = yes
			}),
			expectedImages: []genrelayv1.Outcome{review, rejected},
			expectedEvent:  review,
		},
		{
			name: "generation flag missing fails closed",
			gen: with(generation(no), func(g *leonardo.Generation) {
				g.Flagged = missing
			}),
			expectedImages: []genrelayv1.Outcome{review},
			expectedEvent:  review,
			expectedReason: `generation field "flagged" is missing or not a boolean`,
		},
		{
			name: "model nsfw default review",
			gen: with(generation(no), func(g *leonardo.Generation) {
				g.Model.NSFW = yes
			}),
			expectedImages: []genrelayv1.Outcome{review},
			expectedEvent:  review,
			expectedReason: "model flagged nsfw",
		},
		{
			name: "model flagged reject action",
			cfg:  rejectAll,
			gen: with(generation(no), func(g *leonardo.Generation) {
				g.Model.Flagged = yes
			}),
			expectedImages: []genrelayv1.Outcome{rejected},
			expectedEvent:  rejected,
		},
		{
			name: "model missing is no reason",
			gen: with(generation(no), func(g *leonardo.Generation) {
				g.Model = nil
			}),
			expectedImages: []genrelayv1.Outcome{clean},
			expectedEvent:  clean,
		},
		{
			name: "status failed",
			gen: with(generation(yes), func(g *leonardo.Generation) {
				g.Status = leonardo.StatusFailed
			}),
			expectedImages: []genrelayv1.Outcome{failed},
			expectedEvent:  failed,
			expectedReason: "generation failed",
		},
		{
			name: "status failed without images",
			gen: with(generation(), func(g *leonardo.Generation) {
				g.Status = leonardo.StatusFailed
			}),
			expectedEvent:  failed,
			expectedReason: "generation failed",
		},
		{
			name: "status unknown fails closed",
			gen: with(generation(no), func(g *leonardo.Generation) {
				g.Status = "PENDING"
			}),
			expectedImages: []genrelayv1.Outcome{review},
			expectedEvent:  review,
		},
		{
			name:           "complete without images",
			gen:            generation(),
			expectedEvent:  review,
			expectedReason: "completed generation has no images",
		},
		{
			name:           "nil generation fails closed",
			expectedEvent:  review,
			expectedReason: `generation status "" is neither COMPLETE nor FAILED`,
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if cfg == (Config{}) {
				cfg = DefaultConfig()
			}
			typ := tt.typ
			if typ == "" {
				typ = leonardo.TypeImageGenerationComplete
			}

			r := Decide(cfg, Input{Source: leonardo.Source, Type: typ, Generation: tt.gen})

			if got := imageOutcomes(r); !reflect.DeepEqual(got, tt.expectedImages) {
				t.Errorf("image outcomes = %v, expected %v", got, tt.expectedImages)
			}
			if r.Outcome != tt.expectedEvent {
				t.Errorf("event outcome = %v, expected %v", r.Outcome, tt.expectedEvent)
			}
			if tt.expectedReason != "" && !hasReason(r, tt.expectedReason) {
				t.Errorf("no decision with reason %q in %v", tt.expectedReason, r.Decisions)
			}
			for _, d := range r.Decisions {
				if d.GetRule() == "" || d.GetProvider() == "" {
					t.Errorf("decision without rule or provider: %v", d)
				}
			}
		})
	}
}

func hasReason(r Result, reason string) bool {
	for _, d := range r.Decisions {
		if d.GetReason() == reason {
			return true
		}
	}
	return r.Reason == reason
}

func TestDecideVariation(t *testing.T) {
	variation := &leonardo.Variation{
		ID: "var", Status: leonardo.StatusComplete,
		URL: "https://cdn.leonardo.ai/up.jpg", GeneratedImageID: "src",
	}
	rejectUnknown := DefaultConfig()
	rejectUnknown.UnknownSource = Reject

	tests := []struct {
		name            string
		cfg             Config
		variation       *leonardo.Variation
		source          SourceVerdict
		expectedOutcome genrelayv1.Outcome
		expectedReason  string
	}{
		{"source clean", DefaultConfig(), variation,
			SourceVerdict{Known: true, Outcome: clean}, clean,
			"source image src was clean"},
		{"source rejected", DefaultConfig(), variation,
			SourceVerdict{Known: true, Outcome: rejected}, rejected,
			"source image src was rejected"},
		{"source review", DefaultConfig(), variation,
			SourceVerdict{Known: true, Outcome: review}, review,
			"source image src was review"},
		{"source stored with odd outcome", DefaultConfig(), variation,
			SourceVerdict{Known: true, Outcome: failed}, review, ""},
		{"source unknown default review", DefaultConfig(), variation,
			SourceVerdict{}, review, "source image src has no stored verdict"},
		{"source unknown reject action", rejectUnknown, variation,
			SourceVerdict{}, rejected, ""},
		{"source id missing", DefaultConfig(),
			&leonardo.Variation{ID: "var", Status: leonardo.StatusComplete},
			SourceVerdict{Known: true, Outcome: clean}, review,
			`variation field "generatedImageId" is missing`},
		{"variation failed", DefaultConfig(),
			&leonardo.Variation{ID: "var", Status: leonardo.StatusFailed},
			SourceVerdict{}, failed, "generation failed"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Decide(tt.cfg, Input{
				Source: leonardo.Source, Type: leonardo.TypePostProcessingComplete,
				Variation: tt.variation, SourceImage: tt.source,
			})

			if len(r.Images) != 1 {
				t.Fatalf("images = %d, expected 1", len(r.Images))
			}
			if got := r.Images[0].Outcome; got != tt.expectedOutcome {
				t.Errorf("variation outcome = %v, expected %v", got, tt.expectedOutcome)
			}
			if r.Images[0].Image.GetId() != "var" {
				t.Errorf("image id = %q, expected the variation id", r.Images[0].Image.GetId())
			}
			if tt.expectedReason != "" && r.Images[0].Reason != tt.expectedReason {
				t.Errorf("reason = %q, expected %q", r.Images[0].Reason, tt.expectedReason)
			}
		})
	}
}

func TestDecideUnhandled(t *testing.T) {
	tests := []struct {
		name, source, typ string
	}{
		{"unknown type", leonardo.Source, "image_generation.started"},
		{"unknown source", "other", leonardo.TypeImageGenerationComplete},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Decide(DefaultConfig(), Input{Source: tt.source, Type: tt.typ,
				Generation: generation(no)})

			groups := r.Groups()
			if len(groups) != 1 {
				t.Fatalf("groups = %d, expected 1", len(groups))
			}
			if groups[0].Outcome != unhand {
				t.Errorf("outcome = %v, expected unhandled", groups[0].Outcome)
			}
			if len(groups[0].Images) != 0 {
				t.Errorf("unhandled event carries %d images", len(groups[0].Images))
			}
		})
	}
}

func TestGroupsSplitByOutcome(t *testing.T) {
	cfg := DefaultConfig()
	r := Decide(cfg, Input{Source: leonardo.Source,
		Type:       leonardo.TypeImageGenerationComplete,
		Generation: generation(no, yes, missing, no)})

	groups := r.Groups()

	var got []genrelayv1.Outcome
	for _, g := range groups {
		got = append(got, g.Outcome)
	}
	expected := []genrelayv1.Outcome{clean, rejected, review}
	if !reflect.DeepEqual(got, expected) {
		t.Fatalf("group outcomes = %v, expected %v", got, expected)
	}

	cleanGroup := groups[0]
	if len(cleanGroup.Images) != 2 {
		t.Errorf("clean images = %d, expected 2", len(cleanGroup.Images))
	}
	if len(cleanGroup.Removed) != 2 {
		t.Errorf("removed images = %d, expected 2", len(cleanGroup.Removed))
	}
	if cleanGroup.Reason != "2 of 4 images passed" {
		t.Errorf("clean reason = %q", cleanGroup.Reason)
	}
	if len(groups[1].Removed) != 0 {
		t.Errorf("rejected group lists %d removed images", len(groups[1].Removed))
	}
	if groups[1].Images[0].Image.GetId() != "img1" {
		t.Errorf("rejected image = %q, expected img1", groups[1].Images[0].Image.GetId())
	}
	for _, g := range groups {
		for _, d := range g.Decisions {
			if d.GetImageId() != "" && !inGroup(g, d.GetImageId()) {
				t.Errorf("%v group has a decision about image %s of another group",
					g.Outcome, d.GetImageId())
			}
		}
	}
}

func inGroup(g Group, id string) bool {
	for _, iv := range g.Images {
		if iv.Image.GetId() == id {
			return true
		}
	}
	return false
}

func TestApplyNeverLoosens(t *testing.T) {
	tests := []struct {
		name     string
		flags    []leonardo.Flag
		decision genrelayv1.Outcome
		expected genrelayv1.Outcome
		applied  bool
		imageID  string
	}{
		{"clean to rejected", []leonardo.Flag{no}, rejected, rejected, true, "img0"},
		{"clean to review", []leonardo.Flag{no}, review, review, true, "img0"},
		{"clean stays clean", []leonardo.Flag{no}, clean, clean, true, "img0"},
		{"rejected stays rejected", []leonardo.Flag{yes}, clean, rejected, true, "img0"},
		{"unspecified counts as review", []leonardo.Flag{no},
			genrelayv1.Outcome_OUTCOME_UNSPECIFIED, review, true, "img0"},
		{"unknown image ignored", []leonardo.Flag{no}, rejected, clean, false, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Decide(DefaultConfig(), Input{Source: leonardo.Source,
				Type: leonardo.TypeImageGenerationComplete, Generation: generation(tt.flags...)})
			before := len(r.Decisions)

			applied := r.Apply(&genrelayv1.Decision{ImageId: tt.imageID,
				Rule: "threshold", Provider: "openai", Outcome: tt.decision, Reason: "scored"})

			if applied != tt.applied {
				t.Errorf("Apply = %v, expected %v", applied, tt.applied)
			}
			if got := r.Images[0].Outcome; got != tt.expected {
				t.Errorf("image outcome = %v, expected %v", got, tt.expected)
			}
			if tt.applied && len(r.Decisions) != before+1 {
				t.Errorf("decisions = %d, expected %d", len(r.Decisions), before+1)
			}
		})
	}
}

func TestActionSet(t *testing.T) {
	tests := []struct {
		in      string
		want    Action
		wantErr bool
	}{
		{"rejected", Reject, false},
		{"review", Review, false},
		{"clean", "", true},
		{"", "", true},
		{"REJECTED", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var a Action
			err := a.Set(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Set(%q) error = %v, expected error %v", tt.in, err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalidAction) {
				t.Errorf("error %v does not wrap ErrInvalidAction", err)
			}
			if a != tt.want {
				t.Errorf("action = %q, expected %q", a, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}

	cfg := DefaultConfig()
	cfg.UnknownSource = "clean"
	err := cfg.Validate()
	if !errors.Is(err, ErrInvalidAction) {
		t.Fatalf("Validate = %v, expected ErrInvalidAction", err)
	}
	if !strings.Contains(err.Error(), "unknown source") {
		t.Errorf("error %q does not name the field", err)
	}
}
