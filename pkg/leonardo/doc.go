// Package leonardo models the webhook callbacks that Leonardo.Ai sends when
// a generation finishes: envelope validation, secret redaction, message ids
// for de-duplication and a tolerant decoder for the documented and observed
// event types.
//
// Leonardo documents one event, image_generation.complete; the shapes of
// video_generation.complete and post_processing.complete come from client
// code that handles real callbacks. Field types drift between endpoints and
// over time, so the decoder accepts a string or a number where either has
// been seen, treats null as absent, and passes unknown values through.
package leonardo
