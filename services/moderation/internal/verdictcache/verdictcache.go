// Package verdictcache stores successful provider results in a JetStream
// key-value bucket, keyed by provider and image id, so that a redelivered
// or repeated event is not sent to a paid provider twice. All replicas of
// the moderation service share the bucket. Entries expire after the
// bucket's TTL.
//
// Only provider results are stored, never outcomes: the outcome is
// recomputed from the cached scores with the thresholds in force, and a
// fail-mode outcome never reaches the cache.
package verdictcache

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/genrelay/genrelay/services/moderation/internal/provider"
)

// DefaultBucket is the bucket name.
const DefaultBucket = "genrelay_provider_verdicts"

// Config configures the bucket.
type Config struct {
	// Bucket is the bucket name. Default DefaultBucket.
	Bucket string
	// Replicas of the bucket: 1 on a single server, 3 on a cluster.
	// Default 1.
	Replicas int
	// TTL is how long an entry is kept. Default 24h.
	TTL time.Duration
}

// Entry is one cached provider result.
type Entry struct {
	provider.Result
	// CheckedAt is when the provider returned the result.
	CheckedAt time.Time `json:"checked_at"`
}

// Cache reads and writes entries. It is safe for concurrent use.
type Cache struct {
	kv jetstream.KeyValue
}

// Open creates the bucket or updates it to cfg, and returns the cache.
// Several processes may call it at once.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Cache, error) {
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultBucket
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.TTL == 0 {
		cfg.TTL = 24 * time.Hour
	}
	if cfg.TTL < 0 || cfg.Replicas < 1 || cfg.Replicas > 5 {
		return nil, fmt.Errorf("invalid verdict cache config: ttl %s, replicas %d",
			cfg.TTL, cfg.Replicas)
	}

	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "genrelay provider results per provider and image id",
		TTL:         cfg.TTL,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		History:     1,
	})
	if err != nil {
		return nil, fmt.Errorf("create or update bucket %s: %w", cfg.Bucket, err)
	}
	return &Cache{kv: kv}, nil
}

// Get returns the entry for the provider and image, and false when there
// is none or it has expired.
func (c *Cache) Get(ctx context.Context, providerName, imageID string) (*Entry, bool, error) {
	kve, err := c.kv.Get(ctx, Key(providerName, imageID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("get cached verdict for image %s: %w", imageID, err)
	}

	var e Entry
	if err := json.Unmarshal(kve.Value(), &e); err != nil {
		return nil, false, fmt.Errorf("decode cached verdict for image %s: %w", imageID, err)
	}
	return &e, true, nil
}

// Put stores the entry for the provider and image, replacing any other.
func (c *Cache) Put(ctx context.Context, providerName, imageID string, e Entry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode verdict for image %s: %w", imageID, err)
	}
	if _, err := c.kv.Put(ctx, Key(providerName, imageID), b); err != nil {
		return fmt.Errorf("put cached verdict for image %s: %w", imageID, err)
	}
	return nil
}

var plainID = regexp.MustCompile(`^[A-Za-z0-9-]+$`)

// Key returns the bucket key "<provider>.<image id>". An empty image id,
// or one with characters that keys do not allow, is written as "_"
// followed by its unpadded base64url form. A plain id never starts with
// "_", so the two forms cannot collide.
func Key(providerName, imageID string) string {
	if plainID.MatchString(imageID) {
		return providerName + "." + imageID
	}
	return providerName + "._" + base64.RawURLEncoding.EncodeToString([]byte(imageID))
}
