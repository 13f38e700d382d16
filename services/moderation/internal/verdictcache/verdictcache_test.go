package verdictcache_test

import (
	"context"
	"testing"
	"time"

	"github.com/genrelay/genrelay/pkg/natstest"
	"github.com/genrelay/genrelay/services/moderation/internal/provider"
	"github.com/genrelay/genrelay/services/moderation/internal/verdictcache"
)

func openCache(t *testing.T, cfg verdictcache.Config) *verdictcache.Cache {
	t.Helper()
	srv := natstest.Start(t)
	_, js := srv.Connect(t)
	c, err := verdictcache.Open(context.Background(), js, cfg)
	if err != nil {
		t.Fatalf("open cache: %v", err)
	}
	return c
}

func TestPutThenGet(t *testing.T) {
	c := openCache(t, verdictcache.Config{})
	ctx := context.Background()
	want := verdictcache.Entry{
		Result: provider.Result{
			Scores: map[string]float64{"sexual": 0.42}, Labels: []string{"adult:POSSIBLE"},
			ModelVersion: "7.0",
		},
		CheckedAt: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC),
	}

	if err := c.Put(ctx, "vision", "8e81973e-0bec-47b0-b898-d190f9ebdacc", want); err != nil {
		t.Fatalf("put: %v", err)
	}
	got, ok, err := c.Get(ctx, "vision", "8e81973e-0bec-47b0-b898-d190f9ebdacc")

	if err != nil || !ok {
		t.Fatalf("get = %v, %v; want a hit", ok, err)
	}
	if got.Scores["sexual"] != 0.42 || got.ModelVersion != "7.0" || len(got.Labels) != 1 {
		t.Errorf("entry = %+v, want %+v", got, want)
	}
	if !got.CheckedAt.Equal(want.CheckedAt) {
		t.Errorf("checked at = %s, want %s", got.CheckedAt, want.CheckedAt)
	}
}

func TestGetMisses(t *testing.T) {
	c := openCache(t, verdictcache.Config{})
	ctx := context.Background()
	if err := c.Put(ctx, "openai", "img-1", verdictcache.Entry{}); err != nil {
		t.Fatalf("put: %v", err)
	}

	tests := []struct{ provider, image string }{
		{"openai", "img-2"},
		{"vision", "img-1"},
	}
	for _, tt := range tests {
		t.Run(tt.provider+"/"+tt.image, func(t *testing.T) {
			_, ok, err := c.Get(ctx, tt.provider, tt.image)
			if err != nil || ok {
				t.Errorf("get = %v, %v; want a miss", ok, err)
			}
		})
	}
}

func TestEntriesExpire(t *testing.T) {
	c := openCache(t, verdictcache.Config{TTL: time.Second})
	ctx := context.Background()
	if err := c.Put(ctx, "http", "img-1", verdictcache.Entry{}); err != nil {
		t.Fatalf("put: %v", err)
	}

	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, ok, _ := c.Get(ctx, "http", "img-1"); !ok {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("entry still present 10s after its 1s TTL")
}

func TestKey(t *testing.T) {
	tests := []struct{ image, want string }{
		{"8e81973e-0bec-47b0-b898-d190f9ebdacc", "openai.8e81973e-0bec-47b0-b898-d190f9ebdacc"},
		{"a b/c", "openai._YSBiL2M"},
		{"", "openai._"},
		{"_x", "openai._X3g"},
	}
	for _, tt := range tests {
		if got := verdictcache.Key("openai", tt.image); got != tt.want {
			t.Errorf("Key(%q) = %q, want %q", tt.image, got, tt.want)
		}
	}
}

func TestOddImageIDsRoundTrip(t *testing.T) {
	c := openCache(t, verdictcache.Config{})
	ctx := context.Background()
	for _, id := range []string{"a b/c", "ünïcode", "x.y.z"} {
		if err := c.Put(ctx, "openai", id, verdictcache.Entry{}); err != nil {
			t.Errorf("put %q: %v", id, err)
		}
		if _, ok, err := c.Get(ctx, "openai", id); err != nil || !ok {
			t.Errorf("get %q = %v, %v; want a hit", id, ok, err)
		}
	}
}
