package main

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/genrelay/genrelay/pkg/broker"
	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/pkg/leonardo/leonardotest"
)

// defaultDurable is the consumer name the service uses unless a test sets
// -consumer-name.
const defaultDurable = "genrelay-moderation"

// generation describes an image_generation.complete callback that
// body builds from the SD 1.5 sample.
type generation struct {
	objectID string
	// sdVersion is the generation's sdVersion, or null when empty.
	sdVersion string
	// modelSDVersion is the model's sdVersion. Default v2, as in the
	// sample.
	modelSDVersion string
	nsfw           bool
	flagged        bool
	modelNSFW      bool
	images         []image
}

// image is one image of a generation.
type image struct {
	id   string
	url  string
	nsfw bool
}

// newGeneration returns an unflagged SD 1.5 generation with n images on
// the Leonardo CDN, with ids "<objectID>-<i>".
func newGeneration(objectID string, n int) generation {
	g := generation{objectID: objectID, sdVersion: "v1_5", modelSDVersion: "v2"}
	for i := range n {
		id := objectID + "-" + string(rune('0'+i))
		g.images = append(g.images, image{id: id, url: cdnURL(objectID, id)})
	}
	return g
}

// cdnURL returns an image URL on the default allowlisted host.
func cdnURL(generationID, imageID string) string {
	return "https://cdn.leonardo.ai/users/0fd630f1/generations/" +
		generationID + "/" + imageID + ".jpg"
}

// imageIDs returns the ids of g's images.
func (g generation) imageIDs() []string {
	ids := make([]string, len(g.images))
	for i, img := range g.images {
		ids[i] = img.id
	}
	return ids
}

// body returns the callback as Leonardo sends it, secrets included.
func (g generation) body(t *testing.T) []byte {
	t.Helper()

	var doc map[string]any
	if err := json.Unmarshal(leonardotest.Body(leonardotest.ImageSD15), &doc); err != nil {
		t.Fatalf("decode sample: %v", err)
	}
	obj := doc["data"].(map[string]any)["object"].(map[string]any)
	obj["id"] = g.objectID
	obj["nsfw"] = g.nsfw
	obj["flagged"] = g.flagged
	obj["sdVersion"] = nullable(g.sdVersion)
	obj["quantity"] = len(g.images)

	model := obj["model"].(map[string]any)
	model["nsfw"] = g.modelNSFW
	model["sdVersion"] = nullable(g.modelSDVersion)
	obj["images"] = g.imageObjects(obj["images"].([]any)[0].(map[string]any))

	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("encode callback: %v", err)
	}
	return b
}

// imageObjects returns g's images in Leonardo's shape, copying the
// fields that g does not set from template.
func (g generation) imageObjects(template map[string]any) []any {
	out := make([]any, 0, len(g.images))
	for _, img := range g.images {
		obj := map[string]any{}
		for k, v := range template {
			obj[k] = v
		}
		obj["id"], obj["url"], obj["nsfw"] = img.id, img.url, img.nsfw
		obj["generationId"] = g.objectID
		out = append(out, obj)
	}
	return out
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// published is one event read back from the results stream.
type published struct {
	subject string
	event   *genrelayv1.Event
}

// waitAcked waits until the durable consumer has acknowledged every
// inbound message up to stream sequence seq, so that all events of those
// messages are stored.
func waitAcked(t *testing.T, js jetstream.JetStream, durable string, seq uint64) {
	t.Helper()

	deadline := time.Now().Add(30 * time.Second)
	var floor uint64
	for time.Now().Before(deadline) {
		info, err := consumerInfo(t, js, durable)
		if err == nil {
			if floor = info.AckFloor.Stream; floor >= seq {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("consumer %s ack floor %d after 30s, expected %d", durable, floor, seq)
}

func consumerInfo(t *testing.T, js jetstream.JetStream,
	durable string,
) (*jetstream.ConsumerInfo, error) {
	t.Helper()

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	cons, err := js.Consumer(ctx, broker.InboundStream, durable)
	if err != nil {
		return nil, err
	}
	return cons.Info(ctx)
}

// eventsAbout reads the whole results stream and returns the events about
// objectID, in stream order.
func eventsAbout(t *testing.T, js jetstream.JetStream, objectID string) []published {
	t.Helper()

	var out []published
	for _, p := range allEvents(t, js) {
		if p.event.GetObjectId() == objectID {
			out = append(out, p)
		}
	}
	return out
}

func allEvents(t *testing.T, js jetstream.JetStream) []published {
	t.Helper()

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, broker.ResultsStream)
	if err != nil {
		t.Fatalf("results stream: %v", err)
	}
	last := stream.CachedInfo().State.LastSeq
	if last == 0 {
		return nil
	}

	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("ordered consumer: %v", err)
	}
	var out []published
	for {
		msg, err := cons.Next(jetstream.FetchContext(ctx))
		if err != nil {
			t.Fatalf("read results up to %d: %v", last, err)
		}
		out = append(out, decodeEvent(t, msg))
		if meta, err := msg.Metadata(); err == nil && meta.Sequence.Stream >= last {
			return out
		}
	}
}

func decodeEvent(t *testing.T, msg jetstream.Msg) published {
	t.Helper()

	ev := &genrelayv1.Event{}
	if err := protojson.Unmarshal(msg.Data(), ev); err != nil {
		t.Fatalf("decode event on %s: %v", msg.Subject(), err)
	}
	return published{subject: msg.Subject(), event: ev}
}

// byOutcome returns the first event with the given outcome, or nil.
func byOutcome(events []published, outcome genrelayv1.Outcome) *published {
	for i := range events {
		if events[i].event.GetOutcome() == outcome {
			return &events[i]
		}
	}
	return nil
}

// outcomeOf returns the outcome of the event that carries imageID, or
// OUTCOME_UNSPECIFIED when no event does.
func outcomeOf(events []published, imageID string) genrelayv1.Outcome {
	for _, p := range events {
		for _, img := range p.event.GetImages() {
			if img.GetId() == imageID {
				return p.event.GetOutcome()
			}
		}
	}
	return genrelayv1.Outcome_OUTCOME_UNSPECIFIED
}

// decisionOf returns the decision of provider about imageID in the event
// that carries the image, or nil.
func decisionOf(events []published, imageID, provider string) *genrelayv1.Decision {
	for _, p := range events {
		for _, d := range p.event.GetDecisions() {
			if d.GetImageId() == imageID && d.GetProvider() == provider {
				return d
			}
		}
	}
	return nil
}

// connCounter is a loopback TCP listener that counts the connections it
// accepts and closes them, to prove that nothing connected to it.
type connCounter struct {
	ln       net.Listener
	accepted atomic.Int64
}

func startConnCounter(t *testing.T) *connCounter {
	t.Helper()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	c := &connCounter{ln: ln}
	t.Cleanup(func() { _ = ln.Close() })

	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.accepted.Add(1)
			_ = conn.Close()
		}
	}()
	return c
}

// port returns the listener's port.
func (c *connCounter) port() string {
	_, port, _ := net.SplitHostPort(c.ln.Addr().String())
	return port
}

// logLines returns the lines of logs that contain every part.
func logLines(logs string, parts ...string) []string {
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		match := line != ""
		for _, p := range parts {
			match = match && strings.Contains(line, p)
		}
		if match {
			out = append(out, line)
		}
	}
	return out
}
