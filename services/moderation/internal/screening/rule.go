package screening

import (
	"fmt"
	"strings"
)

// Rule decides which images are sent to the providers. It implements
// flag.Value. The flag syntax is one of
//
//	""                 every image the generator did not flag (the default)
//	always             the same, stated explicitly
//	never              no image
//	sd-versions:v1_5,v1_4   images whose generation used one of these
//	                        sdVersion values (case-insensitive)
//	models:<id>,<id>   images whose generation used one of these model ids
//
// and sd-versions and models clauses can be joined with ";", which
// matches when either clause does.
type Rule struct {
	spec       string
	never      bool
	sdVersions []string
	modelIDs   []string
}

// Set parses the flag syntax above.
func (r *Rule) Set(v string) error {
	spec := strings.TrimSpace(v)
	out := Rule{spec: spec}
	switch strings.ToLower(spec) {
	case "", "always":
	case "never":
		out.never = true
	default:
		if err := out.parseClauses(spec); err != nil {
			return err
		}
	}
	*r = out
	return nil
}

func (r *Rule) parseClauses(spec string) error {
	for _, clause := range strings.Split(spec, ";") {
		kind, list, ok := strings.Cut(strings.TrimSpace(clause), ":")
		values := splitList(list)
		if !ok || len(values) == 0 {
			return fmt.Errorf("invalid moderation rule clause %q: "+
				"want sd-versions:<v>,<v> or models:<id>,<id>", clause)
		}
		switch strings.ToLower(kind) {
		case "sd-versions":
			r.sdVersions = append(r.sdVersions, values...)
		case "models":
			r.modelIDs = append(r.modelIDs, values...)
		default:
			return fmt.Errorf("invalid moderation rule clause %q: unknown kind %q", clause, kind)
		}
	}
	return nil
}

// String returns the rule as given.
func (r Rule) String() string { return r.spec }

// Match reports whether img is sent to the providers, and names the rule
// that matched for the decision record: "default", "always",
// "sd_version=<v>" or "model_id=<id>". Images the generator flagged never
// match, because they are rejected without asking a provider. The zero
// Rule is the default.
func (r Rule) Match(img Image) (string, bool) {
	switch {
	case img.Flagged || r.never:
		return "", false
	case len(r.sdVersions) == 0 && len(r.modelIDs) == 0 && r.spec == "":
		return "default", true
	case len(r.sdVersions) == 0 && len(r.modelIDs) == 0:
		return "always", true
	}
	for _, v := range r.sdVersions {
		if strings.EqualFold(v, img.SDVersion) {
			return "sd_version=" + img.SDVersion, true
		}
	}
	for _, id := range r.modelIDs {
		if strings.EqualFold(id, img.ModelID) {
			return "model_id=" + img.ModelID, true
		}
	}
	return "", false
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
