package screening

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
)

// Off is a threshold that no score reaches; "off" in flags.
var Off = math.Inf(1)

// Pair holds the thresholds of one category. A score at or above Block is
// rejected; from Review up to Block it goes to review; below Review it is
// clean.
type Pair struct {
	Review float64
	Block  float64
}

// DefaultCategory is the key of the pair that applies to categories
// without their own entry.
const DefaultCategory = "default"

// Thresholds maps categories to pairs. It implements flag.Value: the flag
// value is a comma-separated list of category:review:block entries, each
// threshold a number from 0 to 1 or "off", applied on top of
// DefaultThresholds.
type Thresholds map[string]Pair

// DefaultThresholds returns the defaults. The sexual categories that
// Leonardo's own flags target block at the lowest scores. Suggestive
// images, drugs and rude gestures only go to review. Alcohol, gambling,
// medical and spoof never count, because they are common in legitimate
// generated art. Every other category uses the default pair.
//
//	sexual 0.4/0.8    sexual/minors 0.1/0.3   suggestive 0.7/off
//	violence 0.5/0.9  violence/graphic 0.4/0.8
//	self-harm, self-harm/intent, self-harm/instructions 0.3/0.7
//	hate 0.4/0.8      drugs 0.6/off           rude-gestures 0.7/off
//	alcohol, gambling, medical, spoof off/off
//	default 0.5/0.9
//
// NOTE: these values are judgment calls, not measured against labelled
// Leonardo output; tune them per deployment with moderation-thresholds.
func DefaultThresholds() Thresholds {
	selfHarm := Pair{0.3, 0.7}
	return Thresholds{
		"sexual": {0.4, 0.8}, "sexual/minors": {0.1, 0.3},
		"suggestive": {0.7, Off}, "violence": {0.5, 0.9},
		"violence/graphic": {0.4, 0.8}, "self-harm": selfHarm,
		"self-harm/intent": selfHarm, "self-harm/instructions": selfHarm,
		"hate": {0.4, 0.8}, "drugs": {0.6, Off}, "rude-gestures": {0.7, Off},
		"alcohol": {Off, Off}, "gambling": {Off, Off},
		"medical": {Off, Off}, "spoof": {Off, Off},
		DefaultCategory: {0.5, 0.9},
	}
}

// Validate reports a missing default pair and pairs out of range.
func (t Thresholds) Validate() error {
	if _, ok := t[DefaultCategory]; !ok {
		return errors.New("thresholds lack the default pair")
	}
	for cat, p := range t {
		if !inRange(p.Review) || !inRange(p.Block) || p.Review > p.Block {
			return fmt.Errorf("invalid thresholds for %s: review %s, block %s",
				cat, formatThreshold(p.Review), formatThreshold(p.Block))
		}
	}
	return nil
}

func inRange(v float64) bool { return v == Off || (v > 0 && v <= 1) }

// For returns the pair for category, or the default pair.
func (t Thresholds) For(category string) Pair {
	if p, ok := t[category]; ok {
		return p
	}
	return t[DefaultCategory]
}

// Set parses a flag value onto DefaultThresholds.
func (t *Thresholds) Set(v string) error {
	out := DefaultThresholds()
	for _, entry := range strings.Split(v, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		cat, pair, err := parseEntry(entry)
		if err != nil {
			return err
		}
		out[cat] = pair
	}
	*t = out
	return nil
}

func parseEntry(entry string) (string, Pair, error) {
	parts := strings.Split(entry, ":")
	if len(parts) != 3 || parts[0] == "" {
		return "", Pair{}, fmt.Errorf("invalid threshold %q: want category:review:block", entry)
	}

	review, err1 := parseThreshold(parts[1])
	block, err2 := parseThreshold(parts[2])
	switch {
	case err1 != nil || err2 != nil:
		return "", Pair{}, fmt.Errorf("invalid threshold %q: each value must be "+
			"a number above 0 and at most 1, or off", entry)
	case review > block:
		return "", Pair{}, fmt.Errorf("invalid threshold %q: review must not exceed block", entry)
	}
	return strings.ToLower(parts[0]), Pair{review, block}, nil
}

func parseThreshold(s string) (float64, error) {
	if strings.EqualFold(s, "off") {
		return Off, nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 || v > 1 {
		return 0, fmt.Errorf("threshold %q out of range", s)
	}
	return v, nil
}

// String formats the table in flag syntax, sorted by category.
func (t Thresholds) String() string {
	cats := make([]string, 0, len(t))
	for c := range t {
		cats = append(cats, c)
	}
	sort.Strings(cats)

	entries := make([]string, 0, len(cats))
	for _, c := range cats {
		p := t[c]
		entries = append(entries, c+":"+formatThreshold(p.Review)+":"+formatThreshold(p.Block))
	}
	return strings.Join(entries, ",")
}

func formatThreshold(v float64) string {
	if math.IsInf(v, 1) {
		return "off"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// Classify returns the outcome that scores call for under t, and a reason
// naming the categories that decided it.
func (t Thresholds) Classify(scores map[string]float64) (genrelayv1.Outcome, string) {
	cats := make([]string, 0, len(scores))
	for c := range scores {
		cats = append(cats, c)
	}
	sort.Strings(cats)

	outcome := genrelayv1.Outcome_OUTCOME_CLEAN
	var reasons []string
	for _, c := range cats {
		o, because := t.classifyOne(c, scores[c])
		switch {
		case severity(o) > severity(outcome):
			outcome, reasons = o, []string{because}
		case o == outcome && o != genrelayv1.Outcome_OUTCOME_CLEAN:
			reasons = append(reasons, because)
		}
	}
	if outcome == genrelayv1.Outcome_OUTCOME_CLEAN {
		return outcome, "all scores below review thresholds"
	}
	return outcome, strings.Join(reasons, ", ")
}

func (t Thresholds) classifyOne(cat string, score float64) (genrelayv1.Outcome, string) {
	p := t.For(cat)
	switch {
	case score >= p.Block:
		return genrelayv1.Outcome_OUTCOME_REJECTED,
			fmt.Sprintf("%s %.2f >= block %s", cat, score, formatThreshold(p.Block))
	case score >= p.Review:
		return genrelayv1.Outcome_OUTCOME_REVIEW,
			fmt.Sprintf("%s %.2f >= review %s", cat, score, formatThreshold(p.Review))
	}
	return genrelayv1.Outcome_OUTCOME_CLEAN, ""
}

// severity orders the outcomes a screening can produce.
func severity(o genrelayv1.Outcome) int {
	switch o {
	case genrelayv1.Outcome_OUTCOME_REJECTED:
		return 2
	case genrelayv1.Outcome_OUTCOME_REVIEW:
		return 1
	}
	return 0
}

// FailMode is the outcome given to an image whose provider could not be
// asked. It implements flag.Value with the names review, rejected and
// clean.
type FailMode genrelayv1.Outcome

// Fail modes.
const (
	FailReview   = FailMode(genrelayv1.Outcome_OUTCOME_REVIEW)
	FailRejected = FailMode(genrelayv1.Outcome_OUTCOME_REJECTED)
	FailClean    = FailMode(genrelayv1.Outcome_OUTCOME_CLEAN)
)

// Set parses review, rejected or clean.
func (m *FailMode) Set(v string) error {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "review":
		*m = FailReview
	case "rejected":
		*m = FailRejected
	case "clean":
		*m = FailClean
	default:
		return fmt.Errorf("invalid fail mode %q: want review, rejected or clean", v)
	}
	return nil
}

// String returns the flag name of the mode.
func (m FailMode) String() string {
	switch m {
	case FailRejected:
		return "rejected"
	case FailClean:
		return "clean"
	default:
		return "review"
	}
}

// Outcome returns the mode as an outcome.
func (m FailMode) Outcome() genrelayv1.Outcome { return genrelayv1.Outcome(m) }
