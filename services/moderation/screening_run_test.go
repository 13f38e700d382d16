package main

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/genrelay/genrelay/pkg/broker"
	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/pkg/leonardo"
	"github.com/genrelay/genrelay/pkg/leonardo/leonardotest"
	"github.com/genrelay/genrelay/pkg/natstest"
	"github.com/genrelay/genrelay/services/moderation/internal/health"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/httpclassifier/httpclassifiertest"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/openai/openaitest"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/providertest"
	"github.com/genrelay/genrelay/services/moderation/internal/provider/rekognition/rekognitiontest"
	"github.com/genrelay/genrelay/services/moderation/internal/screening"
)

// The tests in this file run the service's run() against a real NATS
// server and the provider mocks, and publish callbacks as ingress does.

// openAIArgs configures the openai provider against mock, with retries,
// timeouts and breaker short enough for tests. Later flags in extra win.
func openAIArgs(mock *openaitest.Server, extra ...string) []string {
	return append([]string{
		"-moderation-providers", "openai",
		"-openai-api-key", openaitest.APIKey,
		"-openai-base-url", mock.BaseURL(),
		"-moderation-retry-attempts", "2",
		"-moderation-retry-initial-backoff", "20ms",
		"-moderation-retry-max-backoff", "50ms",
		"-moderation-provider-timeout", "2s",
		"-moderation-breaker-open-timeout", "2s",
		"-moderation-progress-interval", "200ms",
	}, extra...)
}

// startReady starts the service with args, waits until it is ready, and
// checks at cleanup that its logs contain none of secrets.
func startReady(t *testing.T, srv *natstest.Server, secrets []string,
	args ...string,
) *service {
	t.Helper()

	svc := startService(t, srv.URL(), args...)
	waitStatus(t, "http://"+svc.addr+health.ReadinessPath, http.StatusOK)
	t.Cleanup(func() {
		_ = svc.stop()
		for _, s := range secrets {
			if strings.Contains(svc.logs.String(), s) {
				t.Errorf("logs contain secret %q", s)
			}
		}
	})
	return svc
}

// startOpenAI starts NATS, the OpenAI mock and the service with
// openAIArgs, and returns them with a JetStream client.
func startOpenAI(t *testing.T, extra ...string) (*openaitest.Server,
	*service, jetstream.JetStream,
) {
	t.Helper()

	mock := openaitest.Start(t)
	srv := natstest.Start(t)
	svc := startReady(t, srv, []string{openaitest.APIKey}, openAIArgs(mock, extra...)...)
	_, js := srv.Connect(t)
	return mock, svc, js
}

// process publishes g and waits until the service has acknowledged it,
// then returns the events about it.
func process(t *testing.T, js jetstream.JetStream, g generation) []published {
	t.Helper()

	seq := publishSample(t, js, g.body(t))
	waitAcked(t, js, defaultDurable, seq)
	return eventsAbout(t, js, g.objectID)
}

// scoresByImage returns a handler that responds to each moderation
// request with a sexual score: the one listed for the image id in the
// request's URL, else 0.02.
func scoresByImage(scores map[string]float64) func(providertest.Request) providertest.Response {
	return func(r providertest.Request) providertest.Response {
		score := 0.02
		for _, u := range openaitest.ImageURLs(r) {
			for id, s := range scores {
				if strings.HasSuffix(u, "/"+id+".jpg") {
					score = s
				}
			}
		}
		in, _ := openaitest.Decode(r)
		return openaitest.Scores(in.Model, map[string]float64{"sexual": score})
	}
}

// requestedURLs returns the image URLs of every request mock received.
func requestedURLs(mock *openaitest.Server) []string {
	var urls []string
	for _, r := range mock.Requests() {
		urls = append(urls, openaitest.ImageURLs(r)...)
	}
	return urls
}

func TestScreeningOutcomesFromScores(t *testing.T) {
	mock, _, js := startOpenAI(t)
	g := newGeneration("scores", 4)
	mock.SetHandler(scoresByImage(map[string]float64{
		g.images[0].id: 0.95, g.images[1].id: 0.6,
	}))

	events := process(t, js, g)

	tests := []struct {
		name     string
		image    string
		score    float64
		expected genrelayv1.Outcome
		reason   string
	}{
		{"flagged", g.images[0].id, 0.95, genrelayv1.Outcome_OUTCOME_REJECTED,
			"sexual 0.95 >= block 0.8"},
		{"borderline", g.images[1].id, 0.6, genrelayv1.Outcome_OUTCOME_REVIEW,
			"sexual 0.60 >= review 0.4"},
		{"clean", g.images[2].id, 0.02, genrelayv1.Outcome_OUTCOME_CLEAN,
			"all scores below review thresholds"},
		{"other clean", g.images[3].id, 0.02, genrelayv1.Outcome_OUTCOME_CLEAN,
			"all scores below review thresholds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := outcomeOf(events, tt.image); got != tt.expected {
				t.Errorf("image outcome = %v, expected %v", got, tt.expected)
			}
			d := decisionOf(events, tt.image, "openai")
			if d == nil {
				t.Fatalf("no openai decision about %s in %v", tt.image, events)
			}
			checkDecision(t, d, tt.score, tt.expected, tt.reason)
		})
	}

	if p := byOutcome(events, genrelayv1.Outcome_OUTCOME_REVIEW); p != nil {
		shown := proto.Clone(p.event).(*genrelayv1.Event)
		shown.Payload = nil
		t.Logf("review event without its payload:\n%s",
			protojson.MarshalOptions{Multiline: true, Indent: "  "}.Format(shown))
	}

	t.Run("subjects", func(t *testing.T) {
		for _, p := range events {
			expected := broker.ResultSubject(p.event.GetOutcome(), p.event.GetType())
			if p.subject != expected {
				t.Errorf("event %s on %s, expected %s", p.event.GetId(), p.subject, expected)
			}
		}
		if len(events) != 3 {
			t.Errorf("%d events, expected clean, rejected and review", len(events))
		}
	})
}

// checkDecision checks the fields a provider decision records.
func checkDecision(t *testing.T, d *genrelayv1.Decision, score float64,
	outcome genrelayv1.Outcome, reason string,
) {
	t.Helper()

	if d.GetOutcome() != outcome {
		t.Errorf("decision outcome = %v, expected %v", d.GetOutcome(), outcome)
	}
	if d.GetRule() != screening.RulePrefix+"default" {
		t.Errorf("rule = %q, expected %q", d.GetRule(), screening.RulePrefix+"default")
	}
	if d.GetModelVersion() != "omni-moderation-latest" {
		t.Errorf("model version = %q, expected omni-moderation-latest", d.GetModelVersion())
	}
	if got := d.GetScores()["sexual"]; got != score {
		t.Errorf("sexual score = %g, expected %g", got, score)
	}
	if d.GetLatency().AsDuration() <= 0 {
		t.Errorf("latency = %v, expected a positive duration", d.GetLatency().AsDuration())
	}
	if d.GetReason() != reason {
		t.Errorf("reason = %q, expected %q", d.GetReason(), reason)
	}
	if d.GetCached() {
		t.Error("decision marked cached on the first call")
	}
}

func TestScreeningOutageGoesToReview(t *testing.T) {
	tests := []struct {
		name     string
		response providertest.Response
	}{
		{"server error", openaitest.ServerError()},
		{"overloaded", openaitest.Overloaded()},
		{"rate limited", openaitest.RateLimited(time.Second)},
		{"hanging", providertest.Hang(time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mock, svc, js := startOpenAI(t, "-moderation-provider-timeout", "300ms")
			times := recordTimes(mock, tt.response)
			g := newGeneration("outage", 2)

			events := process(t, js, g)

			for _, id := range g.imageIDs() {
				if got := outcomeOf(events, id); got != genrelayv1.Outcome_OUTCOME_REVIEW {
					t.Errorf("image %s outcome = %v, expected review", id, got)
				}
				d := decisionOf(events, id, "openai")
				if d == nil || !strings.Contains(d.GetReason(), "fail mode review") {
					t.Errorf("image %s decision = %v, expected a fail mode reason", id, d)
				}
				warnings := logLines(svc.logs.String(), `"level":"warn"`,
					"provider check failed", `"image_id":"`+id+`"`)
				if len(warnings) != 1 {
					t.Errorf("image %s: %d failure warnings, expected 1", id, len(warnings))
				}
			}
			if p := byOutcome(events, genrelayv1.Outcome_OUTCOME_CLEAN); p != nil {
				t.Errorf("clean event published during an outage: %v", p.event)
			}
			if got := mock.Count(); got != 4 {
				t.Errorf("provider requests = %d, expected 2 attempts for each of 2 images", got)
			}
			checkGaps(t, times(), tt.response)
		})
	}
}

// recordTimes makes mock respond to every request with resp, and returns
// a function that lists the request times per image URL.
func recordTimes(mock *openaitest.Server,
	resp providertest.Response,
) func() map[string][]time.Time {
	var mu sync.Mutex
	times := map[string][]time.Time{}
	mock.SetHandler(func(r providertest.Request) providertest.Response {
		mu.Lock()
		defer mu.Unlock()
		for _, u := range openaitest.ImageURLs(r) {
			times[u] = append(times[u], time.Now())
		}
		return resp
	})
	return func() map[string][]time.Time {
		mu.Lock()
		defer mu.Unlock()
		return times
	}
}

// checkGaps checks that the retry of a rate-limited call waited for the
// Retry-After that the response asked for.
func checkGaps(t *testing.T, times map[string][]time.Time, resp providertest.Response) {
	t.Helper()

	if resp.Status != http.StatusTooManyRequests {
		return
	}
	for u, ts := range times {
		if len(ts) == 2 && ts[1].Sub(ts[0]) < time.Second {
			t.Errorf("retry of %s after %v, expected the 1s Retry-After", u, ts[1].Sub(ts[0]))
		}
	}
}

func TestScreeningRecoversAfterOutage(t *testing.T) {
	// The retry backoff outlasts a trial call to the mock, so images
	// that find the half-open breaker busy pass on their retry.
	mock, _, js := startOpenAI(t, "-moderation-breaker-failures", "2",
		"-moderation-retry-initial-backoff", "200ms",
		"-moderation-retry-max-backoff", "400ms")
	mock.SetHandler(func(providertest.Request) providertest.Response {
		return openaitest.ServerError()
	})

	outage := process(t, js, newGeneration("during-outage", 4))
	if p := byOutcome(outage, genrelayv1.Outcome_OUTCOME_REVIEW); p == nil || len(p.event.GetImages()) != 4 {
		t.Fatalf("outage events = %v, expected 4 images in review", outage)
	}

	// The provider is healthy again, but the breaker stays open for 2s.
	mock.SetHandler(nil)
	calls := mock.Count()
	open := process(t, js, newGeneration("breaker-open", 1))
	if got := outcomeOf(open, "breaker-open-0"); got != genrelayv1.Outcome_OUTCOME_REVIEW {
		t.Errorf("outcome with the breaker open = %v, expected review", got)
	}
	if d := decisionOf(open, "breaker-open-0", "openai"); d == nil ||
		!strings.Contains(d.GetReason(), "circuit breaker is open") {
		t.Errorf("decision with the breaker open = %v, expected an open breaker", d)
	}
	if got := mock.Count(); got != calls {
		t.Errorf("provider requests with the breaker open = %d, expected 0", got-calls)
	}

	// After the open timeout, trial calls close the breaker.
	time.Sleep(2500 * time.Millisecond)
	g := newGeneration("recovered", 4)
	recovered := process(t, js, g)
	for _, id := range g.imageIDs() {
		if got := outcomeOf(recovered, id); got != genrelayv1.Outcome_OUTCOME_CLEAN {
			t.Errorf("image %s outcome after recovery = %v, expected clean", id, got)
		}
	}
	if got := mock.Count() - calls; got != 4 {
		t.Errorf("provider requests after recovery = %d, expected one per image", got)
	}
}

func TestSlowProviderOneOutputPerEvent(t *testing.T) {
	mock, _, js := startOpenAI(t,
		"-ack-wait", "1s", "-moderation-provider-timeout", "5s")
	mock.SetHandler(func(r providertest.Request) providertest.Response {
		in, _ := openaitest.Decode(r)
		resp := openaitest.Scores(in.Model, nil)
		resp.Delay = 3 * time.Second
		return resp
	})
	g := newGeneration("slow", 2)

	seq := publishSample(t, js, g.body(t))
	waitAcked(t, js, defaultDurable, seq)
	time.Sleep(3 * time.Second)

	events := eventsAbout(t, js, g.objectID)
	if len(events) != 1 {
		t.Errorf("%d events about the callback, expected 1", len(events))
	}
	if p := byOutcome(events, genrelayv1.Outcome_OUTCOME_CLEAN); p == nil || len(p.event.GetImages()) != 2 {
		t.Errorf("events = %v, expected one clean event with 2 images", events)
	}
	if got := mock.Count(); got != 2 {
		t.Errorf("provider requests = %d, expected one per image", got)
	}

	info, err := consumerInfo(t, js, defaultDurable)
	if err != nil {
		t.Fatalf("consumer info: %v", err)
	}
	if info.Delivered.Consumer != 1 {
		t.Errorf("deliveries = %d, expected 1", info.Delivered.Consumer)
	}
	if info.NumRedelivered != 0 {
		t.Errorf("redelivered messages = %d, expected 0", info.NumRedelivered)
	}
}

func TestDisallowedURLsNeverRequested(t *testing.T) {
	mock, svc, js := startOpenAI(t)
	g := newGeneration("disallowed", 4)
	g.images[0].url = "https://evil.example/x.jpg"
	g.images[1].url = "http://cdn.leonardo.ai/users/u/x.jpg"
	g.images[2].url = "https://cdn.leonardo.ai.evil.example/x.jpg"
	g.images[3].url = "https://user:pass@cdn.leonardo.ai/x.jpg"

	events := process(t, js, g)

	for _, img := range g.images {
		if got := outcomeOf(events, img.id); got != genrelayv1.Outcome_OUTCOME_REVIEW {
			t.Errorf("%s: outcome = %v, expected review", img.url, got)
		}
		d := decisionOf(events, img.id, "openai")
		if d == nil || !strings.Contains(d.GetReason(), "image url not allowed") {
			t.Errorf("%s: decision = %v, expected a url not allowed reason", img.url, d)
		}
	}
	if got := mock.Count(); got != 0 {
		t.Errorf("provider requests = %d, expected 0", got)
	}
	if lines := logLines(svc.logs.String(), "provider check failed"); len(lines) != 0 {
		t.Errorf("URLs off the allowlist logged as provider failures: %q", lines)
	}
}

func TestDownloaderConnectsOnlyToAllowedPublicHosts(t *testing.T) {
	mock := rekognitiontest.Start(t)
	images := startConnCounter(t)
	srv := natstest.Start(t)
	startReady(t, srv, []string{rekognitiontest.SecretAccessKey},
		"-moderation-providers", "rekognition",
		"-aws-region", rekognitiontest.Region,
		"-aws-access-key-id", rekognitiontest.AccessKeyID,
		"-aws-secret-access-key", rekognitiontest.SecretAccessKey,
		"-aws-base-url", mock.URL(),
		"-image-hosts", "cdn.leonardo.ai,127.0.0.1",
		"-moderation-retry-initial-backoff", "20ms")
	_, js := srv.Connect(t)

	host := "127.0.0.1:" + images.port()
	g := newGeneration("download", 3)
	tests := []struct {
		url    string
		reason string
	}{
		{"https://localhost:" + images.port() + "/a.jpg", "is not on the allowlist"},
		{"http://" + host + "/b.jpg", "is not https"},
		{"https://" + host + "/c.jpg", "resolves to a blocked address"},
	}
	for i, tt := range tests {
		g.images[i].url = tt.url
	}

	events := process(t, js, g)

	for i, tt := range tests {
		id := g.images[i].id
		if got := outcomeOf(events, id); got != genrelayv1.Outcome_OUTCOME_REVIEW {
			t.Errorf("%s: outcome = %v, expected review", tt.url, got)
		}
		d := decisionOf(events, id, "rekognition")
		if d == nil || !strings.Contains(d.GetReason(), tt.reason) {
			t.Errorf("%s: decision = %v, expected reason %q", tt.url, d, tt.reason)
		}
	}
	if got := images.accepted.Load(); got != 0 {
		t.Errorf("image server accepted %d connections, expected 0", got)
	}
	if got := mock.Count(); got != 0 {
		t.Errorf("rekognition requests = %d, expected 0", got)
	}
}

func TestFlaggedImagesNotSent(t *testing.T) {
	mock, _, js := startOpenAI(t)

	tests := []struct {
		name   string
		change func(*generation)
		// sent are the indexes of the images expected at the provider.
		sent     []int
		expected genrelayv1.Outcome
	}{
		{"generation nsfw", func(g *generation) { g.nsfw = true }, nil,
			genrelayv1.Outcome_OUTCOME_REJECTED},
		{"generation flagged", func(g *generation) { g.flagged = true }, nil,
			genrelayv1.Outcome_OUTCOME_REJECTED},
		{"model nsfw", func(g *generation) { g.modelNSFW = true }, nil,
			genrelayv1.Outcome_OUTCOME_REVIEW},
		{"one image nsfw", func(g *generation) { g.images[0].nsfw = true }, []int{1},
			genrelayv1.Outcome_OUTCOME_REJECTED},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGeneration("flagged-"+string(rune('a'+i)), 2)
			tt.change(&g)

			events := process(t, js, g)

			if got := outcomeOf(events, g.images[0].id); got != tt.expected {
				t.Errorf("flagged image outcome = %v, expected %v", got, tt.expected)
			}
			if d := decisionOf(events, g.images[0].id, "openai"); d != nil {
				t.Errorf("flagged image has a provider decision: %v", d)
			}
			for j, img := range g.images {
				sent := slices.Contains(requestedURLs(mock), img.url)
				if expected := slices.Contains(tt.sent, j); sent != expected {
					t.Errorf("image %d sent = %v, expected %v", j, sent, expected)
				}
			}
		})
	}
}

func TestVerdictCacheAcrossInstances(t *testing.T) {
	mock := openaitest.Start(t)
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	g := newGeneration("cached", 4)
	hangOnce(mock, g.images[3].url)

	// Instance a stops while the last image's call hangs, after the
	// other three results are cached, so the callback goes back unacked.
	args := openAIArgs(mock, "-moderation-provider-timeout", "1m",
		"-shutdown-timeout", "100ms")
	a := startReady(t, srv, []string{openaitest.APIKey}, args...)
	seq := publishSample(t, js, g.body(t))
	waitCached(t, js, g.objectID, 3)
	waitRequests(t, mock, 4)
	if err := a.stop(); err != nil {
		t.Fatalf("stop instance a: %v", err)
	}
	calls := mock.Count()

	// Instance b gets the redelivery and calls the provider only for the
	// image without a result.
	startReady(t, srv, []string{openaitest.APIKey}, args...)
	waitAcked(t, js, defaultDurable, seq)
	events := eventsAbout(t, js, g.objectID)
	checkCached(t, events, g.imageIDs()[:3], true)
	checkCached(t, events, g.imageIDs()[3:], false)
	if got := mock.Count() - calls; got != 1 {
		t.Errorf("provider requests on redelivery = %d, expected 1", got)
	}
	if info, err := consumerInfo(t, js, defaultDurable); err != nil || info.Delivered.Consumer != 2 {
		t.Errorf("consumer info = %+v, %v, expected 2 deliveries", info, err)
	}

	// Another callback with the same images is served from the cache.
	calls = mock.Count()
	again := g
	again.objectID = "cached-again"
	events = process(t, js, again)
	checkCached(t, events, g.imageIDs(), true)
	if got := mock.Count() - calls; got != 0 {
		t.Errorf("provider requests for known images = %d, expected 0", got)
	}
}

// hangOnce makes the first request for url hang until the client gives up,
// and returns low scores for every other request.
func hangOnce(mock *openaitest.Server, url string) {
	var once sync.Once
	mock.SetHandler(func(r providertest.Request) providertest.Response {
		in, _ := openaitest.Decode(r)
		resp := openaitest.Scores(in.Model, nil)
		if slices.Contains(openaitest.ImageURLs(r), url) {
			once.Do(func() { resp.Delay = time.Hour })
		}
		return resp
	})
}

// waitRequests waits until mock has received n requests.
func waitRequests(t *testing.T, mock *openaitest.Server, n int) {
	t.Helper()

	deadline := time.Now().Add(30 * time.Second)
	for mock.Count() < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := mock.Count(); got < n {
		t.Fatalf("provider requests = %d after 30s, expected %d", got, n)
	}
}

// waitCached waits until the provider verdict bucket contains n entries.
func waitCached(t *testing.T, js jetstream.JetStream, objectID string, n int) {
	t.Helper()

	deadline := time.Now().Add(30 * time.Second)
	got := 0
	for time.Now().Before(deadline) {
		kv, err := js.KeyValue(t.Context(), screening.DefaultConfig().Cache.Bucket)
		if err == nil {
			if status, err := kv.Status(t.Context()); err == nil {
				if got = int(status.Values()); got >= n {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: %d cached results after 30s, expected %d", objectID, got, n)
}

// checkCached checks that the openai decision about each image is marked
// cached, or not.
func checkCached(t *testing.T, events []published, ids []string, cached bool) {
	t.Helper()

	for _, id := range ids {
		d := decisionOf(events, id, "openai")
		switch {
		case d == nil:
			t.Errorf("image %s: no openai decision", id)
		case d.GetCached() != cached:
			t.Errorf("image %s: cached = %v, expected %v", id, d.GetCached(), cached)
		case d.GetOutcome() != genrelayv1.Outcome_OUTCOME_CLEAN:
			t.Errorf("image %s: outcome = %v, expected clean", id, d.GetOutcome())
		}
	}
}

func TestRuleSelectsSDVersions(t *testing.T) {
	mock, _, js := startOpenAI(t, "-moderation-rule", "sd-versions:v1_5")

	tests := []struct {
		name           string
		sdVersion      string
		modelSDVersion string
		rule           string
	}{
		{"sd 1.5", "v1_5", "v2", "sd_version=v1_5"},
		{"sd 2", "v2", "v1_5", ""},
		{"model sd 1.5", "", "v1_5", "sd_version=v1_5"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newGeneration("rule-"+string(rune('a'+i)), 1)
			g.sdVersion, g.modelSDVersion = tt.sdVersion, tt.modelSDVersion

			events := process(t, js, g)

			id := g.images[0].id
			if got := outcomeOf(events, id); got != genrelayv1.Outcome_OUTCOME_CLEAN {
				t.Errorf("outcome = %v, expected clean", got)
			}
			d := decisionOf(events, id, "openai")
			switch {
			case tt.rule == "" && d != nil:
				t.Errorf("unchecked image has a provider decision: %v", d)
			case tt.rule != "" && d == nil:
				t.Error("checked image has no provider decision")
			case tt.rule != "" && d.GetRule() != screening.RulePrefix+tt.rule:
				t.Errorf("rule = %q, expected %q", d.GetRule(), screening.RulePrefix+tt.rule)
			}
			sent := slices.Contains(requestedURLs(mock), g.images[0].url)
			if sent != (tt.rule != "") {
				t.Errorf("sent to the provider = %v, expected %v", sent, tt.rule != "")
			}
		})
	}
}

func TestFailModes(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		env      string
		expected genrelayv1.Outcome
		warns    bool
	}{
		{"default", nil, "", genrelayv1.Outcome_OUTCOME_REVIEW, false},
		{"rejected", []string{"-moderation-fail-mode", "rejected"}, "",
			genrelayv1.Outcome_OUTCOME_REJECTED, false},
		{"clean flag", []string{"-moderation-fail-mode", "clean"}, "",
			genrelayv1.Outcome_OUTCOME_CLEAN, true},
		{"clean env", nil, "clean", genrelayv1.Outcome_OUTCOME_CLEAN, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("GENRELAY_MODERATION_FAIL_MODE", tt.env)
			}
			mock, svc, js := startOpenAI(t, tt.args...)
			mock.SetHandler(func(providertest.Request) providertest.Response {
				return openaitest.ServerError()
			})
			g := newGeneration("fail-mode", 2)

			events := process(t, js, g)

			for _, id := range g.imageIDs() {
				if got := outcomeOf(events, id); got != tt.expected {
					t.Errorf("image %s outcome = %v, expected %v", id, got, tt.expected)
				}
			}
			warnings := logLines(svc.logs.String(), `"level":"warn"`, "fail mode is clean")
			if got := len(warnings) == 1; got != tt.warns {
				t.Errorf("start-up warnings %q, expected one: %v", warnings, tt.warns)
			}
			d := decisionOf(events, g.images[0].id, "openai")
			if tt.warns && (d == nil || !strings.HasPrefix(d.GetReason(), "unchecked: ")) {
				t.Errorf("decision = %v, expected an unchecked reason", d)
			}
		})
	}
}

func TestVideoWithoutImageURLGoesToReview(t *testing.T) {
	mock, _, js := startOpenAI(t)
	body := leonardotest.Body(leonardotest.VideoComplete)
	env, err := leonardo.Validate(body)
	if err != nil {
		t.Fatalf("validate sample: %v", err)
	}

	seq := publishSample(t, js, body)
	waitAcked(t, js, defaultDurable, seq)
	events := eventsAbout(t, js, env.ObjectID)

	const id = "9be4bcfc-49b6-4a08-b2e6-cc3ababced20"
	if got := outcomeOf(events, id); got != genrelayv1.Outcome_OUTCOME_REVIEW {
		t.Errorf("outcome = %v, expected review", got)
	}
	d := decisionOf(events, id, "openai")
	if d == nil || !strings.Contains(d.GetReason(), "no url") {
		t.Errorf("decision = %v, expected a reason naming the missing url", d)
	}
	if got := mock.Count(); got != 0 {
		t.Errorf("provider requests = %d, expected 0", got)
	}
}

// TestEveryProviderDecisionRecorded configures two providers and checks
// that the event records each one's decision about each image, not only
// the most severe.
func TestEveryProviderDecisionRecorded(t *testing.T) {
	classifier := httpclassifiertest.Start(t, "")
	mock, _, js := startOpenAI(t,
		"-moderation-providers", "openai,http",
		"-http-classifier-url", classifier.Endpoint(),
		"-http-classifier-score-field", httpclassifiertest.ScoreField)
	g := newGeneration("two-providers", 2)
	mock.SetHandler(scoresByImage(map[string]float64{g.images[0].id: 0.6}))

	events := process(t, js, g)

	for _, id := range g.imageIDs() {
		for _, provider := range []string{"openai", "http"} {
			if decisionOf(events, id, provider) == nil {
				t.Errorf("image %s: no %s decision in the event", id, provider)
			}
		}
	}
	if got := outcomeOf(events, g.images[0].id); got != genrelayv1.Outcome_OUTCOME_REVIEW {
		t.Errorf("borderline image outcome = %v, expected review", got)
	}
	if got := outcomeOf(events, g.images[1].id); got != genrelayv1.Outcome_OUTCOME_CLEAN {
		t.Errorf("clean image outcome = %v, expected clean", got)
	}
}
