package broker

import genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"

// outcomePrefixes maps each outcome to its subject prefix.
var outcomePrefixes = map[genrelayv1.Outcome]string{
	genrelayv1.Outcome_OUTCOME_CLEAN:       CleanPrefix,
	genrelayv1.Outcome_OUTCOME_REJECTED:    RejectedPrefix,
	genrelayv1.Outcome_OUTCOME_REVIEW:      ReviewPrefix,
	genrelayv1.Outcome_OUTCOME_FAILED:      FailedPrefix,
	genrelayv1.Outcome_OUTCOME_UNHANDLED:   UnhandledPrefix,
	genrelayv1.Outcome_OUTCOME_DEAD_LETTER: DeadLetterPrefix,
}

// ResultSubject returns the subject of an event with the given outcome and
// type, for example genrelay.clean.image_generation.complete. An
// unspecified outcome maps to the dead-letter prefix, so that a bug never
// routes an event to the clean subject.
func ResultSubject(outcome genrelayv1.Outcome, eventType string) string {
	prefix, ok := outcomePrefixes[outcome]
	if !ok {
		prefix = DeadLetterPrefix
	}
	return prefix + "." + eventType
}

// OutcomeFilter returns the subject filter that matches every event with
// the given outcome, for example genrelay.clean.>.
func OutcomeFilter(outcome genrelayv1.Outcome) string {
	return ResultSubject(outcome, ">")
}
