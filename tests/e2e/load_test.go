package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	genrelayv1 "github.com/genrelay/genrelay/pkg/genrelay/v1"
	"github.com/genrelay/genrelay/pkg/leonardo/leonardotest"
)

// webhookClient posts callbacks like Leonardo does: one connection per
// request. The timeout leaves room for ingress's 5s publish timeout.
var webhookClient = &http.Client{
	Timeout:   15 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// response is the outcome of one POST of a callback.
type response struct {
	status     int
	err        error
	duplicate  bool
	retryAfter string
}

func (r response) ok() bool { return r.err == nil && r.status >= 200 && r.status < 300 }

func (r response) String() string {
	if r.err != nil {
		return "connection error: " + r.err.Error()
	}
	return fmt.Sprintf("HTTP %d", r.status)
}

// postCallback sends body to ingress with the stack's webhook key.
func (s *stack) postCallback(ctx context.Context, body []byte) response {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		s.ingressURL("/v1/webhooks/leonardo"), bytes.NewReader(body))
	if err != nil {
		return response{err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.webhookKey)
	req.Header.Set("User-Agent", "axios/1.4.0")

	resp, err := webhookClient.Do(req)
	if err != nil {
		return response{err: err}
	}
	defer resp.Body.Close()

	var accepted struct {
		Duplicate bool `json:"duplicate"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_ = json.Unmarshal(raw, &accepted)
	return response{
		status:     resp.StatusCode,
		duplicate:  accepted.Duplicate,
		retryAfter: resp.Header.Get("Retry-After"),
	}
}

// loadConfig shapes a sustained stream of distinct callbacks.
type loadConfig struct {
	// prefix starts every object id, so a case reads back only its own.
	prefix string
	// fixture is the leonardotest sample each callback is made from.
	fixture string
	count   int
	// rate is callbacks started per second, spread over workers.
	rate    int
	workers int
}

// delivery tracks one callback of a load.
type delivery struct {
	id      string
	first   response
	resends int
	// final is the response that accepted the callback, if any.
	final response
}

// load sends callbacks at a steady rate and records every response.
type load struct {
	cfg        loadConfig
	deliveries []delivery
	sent       atomic.Int64
}

func newLoad(cfg loadConfig) *load {
	l := &load{cfg: cfg, deliveries: make([]delivery, cfg.count)}
	for i := range l.deliveries {
		l.deliveries[i].id = fmt.Sprintf("%s-%04d", cfg.prefix, i)
	}
	return l
}

// run sends every callback once and returns when each has a response.
// It closes reached once a quarter of them have one, the moment a case
// injects its fault.
func (l *load) run(ctx context.Context, s *stack, reached chan<- struct{}) {
	jobs := make(chan int)
	go l.produce(ctx, jobs)

	var once sync.Once
	var wg sync.WaitGroup
	for range l.cfg.workers {
		wg.Go(func() {
			for i := range jobs {
				d := &l.deliveries[i]
				d.first = s.postCallback(ctx, l.body(d.id))
				d.final = d.first
				if l.sent.Add(1) >= int64(l.cfg.count/4) {
					once.Do(func() { close(reached) })
				}
			}
		})
	}
	wg.Wait()
	once.Do(func() { close(reached) })
}

// produce hands out callback indexes at the configured rate. A worker
// blocked on a slow response slows it down rather than queueing callbacks.
func (l *load) produce(ctx context.Context, jobs chan<- int) {
	defer close(jobs)

	tick := time.NewTicker(time.Second / time.Duration(l.cfg.rate))
	defer tick.Stop()
	for i := range l.cfg.count {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case <-ctx.Done():
			return
		case jobs <- i:
		}
	}
}

func (l *load) body(id string) []byte {
	return leonardotest.WithObjectID(l.cfg.fixture, id)
}

// resendRejected sends every callback whose first response was not 2xx
// again, once a second, until it is accepted or the time runs out.
func (l *load) resendRejected(ctx context.Context, s *stack, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	for i := range l.deliveries {
		d := &l.deliveries[i]
		for !d.final.ok() && ctx.Err() == nil {
			if d.resends > 0 {
				time.Sleep(time.Second)
			}
			d.resends++
			d.final = s.postCallback(ctx, l.body(d.id))
		}
	}
}

// tally is a case's accounting: how ingress responded to each callback and how
// often its object id appears on the output subjects.
type tally struct {
	sent          int
	firstAccepted int
	first5xx      int
	firstConnErr  int
	firstOther    int
	resent        int
	// resentDuplicate counts resent callbacks that ingress reported as
	// already stored: the first attempt was stored but its response lost.
	resentDuplicate int
	neverAccepted   int
	outputs         int
	missing         int
	duplicated      int
	wrongOutcome    int
}

func (t tally) String() string {
	return fmt.Sprintf("sent=%d accepted_first=%d 5xx_first=%d "+
		"connection_errors_first=%d other_first=%d resent=%d "+
		"resent_already_stored=%d never_accepted=%d outputs=%d "+
		"missing=%d duplicated=%d wrong_outcome=%d",
		t.sent, t.firstAccepted, t.first5xx, t.firstConnErr, t.firstOther,
		t.resent, t.resentDuplicate, t.neverAccepted, t.outputs,
		t.missing, t.duplicated, t.wrongOutcome)
}

// countResponses fills the response columns of the tally.
func (l *load) countResponses() tally {
	var tl tally
	for _, d := range l.deliveries {
		tl.sent++
		switch {
		case d.first.ok():
			tl.firstAccepted++
		case d.first.err != nil:
			tl.firstConnErr++
		case d.first.status >= 500:
			tl.first5xx++
		default:
			tl.firstOther++
		}
		if d.resends > 0 {
			tl.resent++
			if d.final.duplicate {
				tl.resentDuplicate++
			}
		}
		if !d.final.ok() {
			tl.neverAccepted++
		}
	}
	return tl
}

// outputKey groups results by object id and outcome.
type outputKey struct {
	objectID string
	outcome  genrelayv1.Outcome
}

func groupOutputs(results []result) map[outputKey]int {
	counts := map[outputKey]int{}
	for _, r := range results {
		counts[outputKey{r.event.GetObjectId(), r.event.GetOutcome()}]++
	}
	return counts
}

// account checks that every callback was accepted, in the end, and
// appears exactly once with the expected outcome, and that a callback
// that was not accepted at first got a 5xx or a connection error.
func (l *load) account(t *testing.T, results []result, expected genrelayv1.Outcome) tally {
	t.Helper()

	tl := l.countResponses()
	counts := groupOutputs(results)
	tl.outputs = len(results)

	for _, d := range l.deliveries {
		if !d.first.ok() && d.first.err == nil && d.first.status < 500 {
			t.Errorf("callback %s: first response %s, expected 2xx, 5xx or a connection error",
				d.id, d.first)
		}
		if !d.final.ok() {
			t.Errorf("callback %s: not accepted after %d resends, last response %s",
				d.id, d.resends, d.final)
		}
		tl = checkOutputs(t, tl, d.id, counts, expected)
	}
	t.Logf("accounting for %s: %s", l.cfg.prefix, tl)
	return tl
}

// checkOutputs checks that id appears once, with the expected outcome.
func checkOutputs(t *testing.T, tl tally, id string, counts map[outputKey]int,
	expected genrelayv1.Outcome) tally {
	t.Helper()

	var seen []string
	total := 0
	for key, n := range counts {
		if key.objectID == id {
			seen = append(seen, fmt.Sprintf("%s x%d", key.outcome, n))
			total += n
		}
	}
	sort.Strings(seen)

	switch {
	case total == 0:
		tl.missing++
		t.Errorf("callback %s: no output", id)
	case counts[outputKey{id, expected}] != total:
		tl.wrongOutcome++
		t.Errorf("callback %s: outputs %s, expected %s once", id,
			strings.Join(seen, ", "), expected)
	case total > 1:
		tl.duplicated++
		t.Errorf("callback %s: %d outputs, expected 1", id, total)
	}
	return tl
}

// waitOutputs reads the results stream until every id has an output and
// moderation has nothing left to process, then reads it once more, so
// that an output published late would still be counted.
func (s *stack) waitOutputs(t *testing.T, prefix string, ids []string, timeout time.Duration) []result {
	t.Helper()
	ctx := context.Background()

	var results []result
	err := poll(ctx, timeout, 2*time.Second, func() (bool, string) {
		var err error
		results, err = s.readResults(ctx, prefix)
		if err != nil {
			return false, err.Error()
		}
		if missing := missingIDs(results, ids); missing > 0 {
			return false, fmt.Sprintf("%d of %d callbacks have no output yet", missing, len(ids))
		}
		return s.consumersDrained(ctx)
	})
	if err != nil {
		t.Errorf("wait for outputs: %v", err)
	}

	// A read can fail while the cluster settles after a fault, for
	// example with no responders, so the last one is retried too.
	var final []result
	err = poll(ctx, time.Minute, time.Second, func() (bool, string) {
		var err error
		final, err = s.readResults(ctx, prefix)
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	if err != nil {
		t.Fatalf("read results: %v", err)
	}
	return final
}

func missingIDs(results []result, ids []string) int {
	seen := map[string]bool{}
	for _, r := range results {
		seen[r.event.GetObjectId()] = true
	}
	missing := 0
	for _, id := range ids {
		if !seen[id] {
			missing++
		}
	}
	return missing
}

func (l *load) ids() []string {
	ids := make([]string, len(l.deliveries))
	for i, d := range l.deliveries {
		ids[i] = d.id
	}
	return ids
}
