package integration

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/genrelay/genrelay/pkg/leonardo/leonardotest"
)

// TestNoSecretLeaves runs every sample through both services, plus
// rejected requests, then scans every log line and every stored message
// for the bearer keys and the keys inside the payloads.
func TestNoSecretLeaves(t *testing.T) {
	s := startStack(t)

	secrets := []string{primaryKey, secondaryKey}
	var samples []string
	for _, name := range leonardotest.Names() {
		if name == leonardotest.ImageComplete {
			continue // its key is the masked id that every id field shares
		}
		samples = append(samples, name)
		secrets = append(secrets, leonardotest.Secrets(name)...)
	}

	for _, name := range samples {
		if status, _, text := s.post(t, primaryKey, leonardotest.Body(name)); status != http.StatusAccepted {
			t.Fatalf("%s: status %d (%s), want 202", name, status, text)
		}
	}

	// Rejected requests must not echo what they were sent either.
	body := leonardotest.Body(leonardotest.ImageNSFW)
	if status, _, text := s.post(t, primaryKey+"x", body); status != http.StatusUnauthorized {
		t.Errorf("wrong key: status %d (%s), want 401", status, text)
	}
	if status, _, text := s.post(t, primaryKey, body[:len(body)/2]); status != http.StatusBadRequest {
		t.Errorf("truncated body: status %d (%s), want 400", status, text)
	}

	s.waitResults(t, 30*time.Second, func(rs []result) bool {
		return len(rs) >= len(samples)
	})
	time.Sleep(time.Second) // let the last log lines be written

	stored := readStream(t, s.js, "GENRELAY_INBOUND", func(m jetstream.Msg) string {
		return string(m.Data()) + headerText(m)
	})
	for _, r := range s.results(t) {
		stored = append(stored, string(r.data))
	}
	logs := s.ingress.out.String() + s.moderation.out.String()

	// Failures name the secret by its position, never by its value.
	for i, secret := range secrets {
		if strings.Contains(logs, secret) {
			t.Errorf("secret #%d appears in the logs", i)
		}
		for _, msg := range stored {
			if strings.Contains(msg, secret) {
				t.Errorf("secret #%d appears in a stored message", i)
			}
		}
	}
	if !strings.Contains(logs, "primary") {
		t.Error("logs never name the key label that authenticated a request")
	}
}

func headerText(m jetstream.Msg) string {
	var b strings.Builder
	for name, values := range m.Headers() {
		b.WriteString(name + ":" + strings.Join(values, ",") + "\n")
	}
	return b.String()
}
