package integration

import (
	"fmt"
	"net/http"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/genrelay/genrelay/pkg/leonardo/leonardotest"
)

// BenchmarkIngressAccept measures callbacks accepted per second by one
// ingress process: HTTP request, validation, redaction and a JetStream
// publish acknowledged by a file-backed stream. Moderation runs too, as it
// would in production. Run it with `make bench`.
func BenchmarkIngressAccept(b *testing.B) {
	s := startStack(b)

	var seq atomic.Int64
	latencies := make(chan time.Duration, b.N)
	b.SetParallelism(4)
	b.ResetTimer()

	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), seq.Add(1))
			body := leonardotest.WithObjectID(leonardotest.ImageSD15, id)

			start := time.Now()
			status, err := s.postBench(primaryKey, body)
			if err != nil || status != http.StatusAccepted {
				b.Errorf("post: status %d, error %v", status, err)
				return
			}
			latencies <- time.Since(start)
		}
	})

	b.StopTimer()
	close(latencies)
	reportLatencies(b, latencies)
}

// BenchmarkPipeline measures the time from the first callback sent to the
// last clean event stored, for b.N distinct callbacks: the throughput of
// ingress and moderation together.
func BenchmarkPipeline(b *testing.B) {
	s := startStack(b)
	prefix := fmt.Sprintf("pipe-%d-", time.Now().UnixNano())

	b.ResetTimer()
	for i := range b.N {
		body := leonardotest.WithObjectID(leonardotest.ImageSD15, fmt.Sprintf("%s%d", prefix, i))
		if status, err := s.postBench(primaryKey, body); err != nil || status != http.StatusAccepted {
			b.Fatalf("post %d: status %d, error %v", i, status, err)
		}
	}
	s.waitResultCount(b, b.N, 5*time.Minute)
	b.StopTimer()

	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func reportLatencies(b *testing.B, latencies <-chan time.Duration) {
	var all []time.Duration
	for d := range latencies {
		all = append(all, d)
	}
	if len(all) == 0 {
		return
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })

	b.ReportMetric(float64(len(all))/b.Elapsed().Seconds(), "callbacks/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
}
