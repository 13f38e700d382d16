package screening_test

import (
	"strings"
	"testing"

	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/services/moderation/internal/screening"
)

const (
	clean    = genrelayv1.Outcome_OUTCOME_CLEAN
	review   = genrelayv1.Outcome_OUTCOME_REVIEW
	rejected = genrelayv1.Outcome_OUTCOME_REJECTED
)

func TestClassifyDefaults(t *testing.T) {
	tests := []struct {
		name       string
		scores     map[string]float64
		want       genrelayv1.Outcome
		wantReason string
	}{
		{"no scores", nil, clean, "all scores below"},
		{"sexual below review", map[string]float64{"sexual": 0.39}, clean, "all scores below"},
		{"sexual at review", map[string]float64{"sexual": 0.4}, review, "sexual 0.40 >= review 0.4"},
		{"sexual just under block", map[string]float64{"sexual": 0.7999}, review, "sexual"},
		{"sexual at block", map[string]float64{"sexual": 0.8}, rejected, "sexual 0.80 >= block 0.8"},
		{"suggestive never blocks", map[string]float64{"suggestive": 1}, review, "suggestive"},
		{"alcohol is off", map[string]float64{"alcohol": 1}, clean, "all scores below"},
		{"unlisted uses default pair", map[string]float64{"weapons": 0.5}, review, "weapons 0.50 >= review 0.5"},
		{"unlisted blocks at default", map[string]float64{"weapons": 0.95}, rejected, "weapons"},
		{
			"worst category wins", map[string]float64{"sexual": 0.5, "violence/graphic": 0.85, "hate": 0.1},
			rejected, "violence/graphic 0.85 >= block 0.8",
		},
		{
			"all reasons at the worst level", map[string]float64{"sexual": 0.5, "violence": 0.6},
			review, "sexual 0.50 >= review 0.4, violence 0.60 >= review 0.5",
		},
	}
	th := screening.DefaultThresholds()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := th.Classify(tt.scores)
			if got != tt.want {
				t.Errorf("outcome = %v, want %v", got, tt.want)
			}
			if !strings.Contains(reason, tt.wantReason) {
				t.Errorf("reason = %q, want it to contain %q", reason, tt.wantReason)
			}
		})
	}
}

func TestThresholdsSet(t *testing.T) {
	tests := []struct {
		value   string
		wantErr bool
		check   map[string]screening.Pair
	}{
		{value: "", check: map[string]screening.Pair{"sexual": {Review: 0.4, Block: 0.8}}},
		{
			value: "sexual:0.3:0.6, violence:0.5:0.9",
			check: map[string]screening.Pair{"sexual": {Review: 0.3, Block: 0.6}, "hate": {Review: 0.4, Block: 0.8}},
		},
		{value: "default:0.2:off", check: map[string]screening.Pair{"weapons": {Review: 0.2, Block: screening.Off}}},
		{value: "Spoof:OFF:off", check: map[string]screening.Pair{"spoof": {Review: screening.Off, Block: screening.Off}}},
		{value: "sexual:0.9:0.5", wantErr: true},
		{value: "sexual:0:0.5", wantErr: true},
		{value: "sexual:0.4:1.5", wantErr: true},
		{value: "sexual:0.4", wantErr: true},
		{value: ":0.4:0.8", wantErr: true},
		{value: "sexual:high:0.8", wantErr: true},
		{value: "sexual:off:0.8", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			var th screening.Thresholds
			err := th.Set(tt.value)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Set(%q) error = %v, want error %v", tt.value, err, tt.wantErr)
			}
			for cat, want := range tt.check {
				if got := th.For(cat); got != want {
					t.Errorf("For(%s) = %+v, want %+v", cat, got, want)
				}
			}
		})
	}
}

func TestThresholdsStringRoundTrips(t *testing.T) {
	var th screening.Thresholds
	if err := th.Set(screening.DefaultThresholds().String()); err != nil {
		t.Fatalf("Set(String()): %v", err)
	}
	if th.String() != screening.DefaultThresholds().String() {
		t.Errorf("round trip changed the table:\n%s\n%s", th, screening.DefaultThresholds())
	}
}

func TestRuleMatch(t *testing.T) {
	sd15 := screening.Image{SDVersion: "v1_5", ModelID: "6bef9f1b"}
	sdxl := screening.Image{SDVersion: "SDXL_1_0", ModelID: "aa70f3b1"}
	tests := []struct {
		spec     string
		img      screening.Image
		want     bool
		wantRule string
	}{
		{"", sdxl, true, "default"},
		{"always", sdxl, true, "always"},
		{"never", sd15, false, ""},
		{"sd-versions:v1_5,v1_4", sd15, true, "sd_version=v1_5"},
		{"sd-versions:V1_5", sd15, true, "sd_version=v1_5"},
		{"sd-versions:v1_5,v1_4", sdxl, false, ""},
		{"models:aa70f3b1", sdxl, true, "model_id=aa70f3b1"},
		{"sd-versions:v1_5;models:aa70f3b1", sdxl, true, "model_id=aa70f3b1"},
		{"", screening.Image{Flagged: true}, false, ""},
		{"always", screening.Image{Flagged: true}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.spec+"/"+tt.img.SDVersion, func(t *testing.T) {
			var r screening.Rule
			if err := r.Set(tt.spec); err != nil {
				t.Fatalf("Set(%q): %v", tt.spec, err)
			}
			rule, ok := r.Match(tt.img)
			if ok != tt.want || rule != tt.wantRule {
				t.Errorf("Match = %q, %v; want %q, %v", rule, ok, tt.wantRule, tt.want)
			}
		})
	}
}

func TestRuleSetRejectsBadSpecs(t *testing.T) {
	for _, spec := range []string{"sometimes", "sd-versions:", "models", "colors:red"} {
		var r screening.Rule
		if err := r.Set(spec); err == nil {
			t.Errorf("Set(%q) accepted a bad rule", spec)
		}
	}
}

func TestZeroRuleIsDefault(t *testing.T) {
	var r screening.Rule
	if rule, ok := r.Match(screening.Image{}); !ok || rule != "default" {
		t.Errorf("zero Rule.Match = %q, %v; want default, true", rule, ok)
	}
}

func TestFailModeSet(t *testing.T) {
	tests := []struct {
		value   string
		want    genrelayv1.Outcome
		wantErr bool
	}{
		{"review", review, false},
		{"REJECTED", rejected, false},
		{"clean", clean, false},
		{"open", 0, true},
	}
	for _, tt := range tests {
		var m screening.FailMode
		err := m.Set(tt.value)
		if (err != nil) != tt.wantErr {
			t.Errorf("Set(%q) error = %v", tt.value, err)
		}
		if err == nil && m.Outcome() != tt.want {
			t.Errorf("Set(%q) = %v, want %v", tt.value, m.Outcome(), tt.want)
		}
	}
}
