package broker

import "flag"

// RegisterFlags binds the stream settings to flags on fs, with c's current
// values as defaults. Services share these names, so the same environment
// variables (GENRELAY_STREAM_REPLICAS and so on) size the streams whichever
// service creates them first.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.IntVar(&c.Replicas, "stream-replicas", c.Replicas,
		"replicas of each stream and bucket: 1 on one server, 3 on a cluster")
	fs.DurationVar(&c.DuplicateWindow, "duplicate-window", c.DuplicateWindow,
		"how long a message id is remembered to drop repeated callbacks (duration)")
	fs.DurationVar(&c.InboundMaxAge, "inbound-max-age", c.InboundMaxAge,
		"how long inbound callbacks are kept (duration, 0 = no limit)")
	fs.Int64Var(&c.InboundMaxBytes, "inbound-max-bytes", c.InboundMaxBytes,
		"size limit of the inbound stream in bytes; when full, ingress answers 503 (0 = no limit)")
	fs.Int64Var(&c.InboundMaxMsgs, "inbound-max-msgs", c.InboundMaxMsgs,
		"message limit of the inbound stream; when full, ingress answers 503 (0 = no limit)")
	fs.DurationVar(&c.ResultsMaxAge, "results-max-age", c.ResultsMaxAge,
		"how long moderation results are kept (duration, 0 = no limit)")
	fs.Int64Var(&c.ResultsMaxBytes, "results-max-bytes", c.ResultsMaxBytes,
		"size limit of the results stream in bytes; the oldest results go first (0 = no limit)")
	fs.DurationVar(&c.VerdictTTL, "verdict-ttl", c.VerdictTTL,
		"how long an image's verdict is kept for post-processing results (duration)")
}
